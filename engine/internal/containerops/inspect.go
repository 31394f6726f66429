package containerops

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	bmount "github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/volume"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InspectInput is what Inspect reports on: the record and what the
// engine found about it.
type InspectInput struct {
	C record.Container
	// Image is the config of the container's image (zero if it is gone);
	// Manifest the image's manifest descriptor, nil when no stored name
	// has that image.
	Image    ocispec.Image
	Manifest *ocispec.Descriptor
	// Paths on the host: the generated /etc files, the log, the network
	// namespace and the bundle's rootfs mount point.
	ResolvConfPath, HostnamePath, HostsPath, LogPath, SandboxKey, MergedDir string
	// Snapshotter and Runtime name the storage driver and OCI runtime.
	Snapshotter, Runtime string
	// Mounts are the snapshot's mounts; HasSnapshot is false when it has
	// none (no GraphDriver is reported then).
	Mounts      []bmount.Mount
	HasSnapshot bool
	// Endpoints are the running container's network endpoints.
	Endpoints []network.Endpoint
	// SizeRw and SizeRootFs are the writable layer's bytes and those plus
	// the image's unpacked layers; nil unless asked for.
	SizeRw, SizeRootFs *int64
	// VolumeName names the volume whose data directory a bind mount's
	// source is (false: a plain bind); nil for none.
	VolumeName func(source string) (string, bool)
}

// Inspect describes a container in the shape of Docker's GET
// /containers/{id}/json (`docker container inspect`). Config holds the
// container's settings merged with its image's (env, cmd, entrypoint,
// user, working dir, labels), as Docker stores them.
func Inspect(in InspectInput) container.InspectResponse {
	c := in.C
	st := c.State
	resp := container.InspectResponse{
		ID:      c.ID,
		Created: c.Created.Format(time.RFC3339Nano),
		Path:    c.Path,
		Args:    nonNil(c.Args),
		State: &container.State{
			Status:     container.ContainerState(c.DisplayStatus()),
			Running:    st.Status == record.StatusRunning,
			Paused:     st.Status == record.StatusRunning && st.Paused,
			Dead:       false,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  st.StartedAt.UTC().Format(time.RFC3339Nano),
			FinishedAt: st.FinishedAt.UTC().Format(time.RFC3339Nano),
		},
		Image:                   c.ImageID.String(),
		ResolvConfPath:          in.ResolvConfPath,
		HostnamePath:            in.HostnamePath,
		HostsPath:               in.HostsPath,
		LogPath:                 in.LogPath,
		Name:                    "/" + c.Name,
		RestartCount:            st.RestartCount,
		Driver:                  in.Snapshotter,
		Platform:                "linux",
		HostConfig:              hostConfig(c, in.Runtime, in.VolumeName),
		Mounts:                  mountPoints(c, in.VolumeName),
		Config:                  containerConfig(c, in.Image.Config),
		ImageManifestDescriptor: in.Manifest,
		SizeRw:                  in.SizeRw,
		SizeRootFs:              in.SizeRootFs,
	}
	if in.HasSnapshot {
		data := map[string]string{"MergedDir": in.MergedDir}
		for _, m := range in.Mounts {
			for _, o := range m.Options {
				if k, v, ok := strings.Cut(o, "="); ok {
					switch k {
					case "upperdir":
						data["UpperDir"] = v
					case "lowerdir":
						data["LowerDir"] = v
					case "workdir":
						data["WorkDir"] = v
					}
				}
			}
			if m.Type == "bind" {
				data["UpperDir"] = m.Source
			}
		}
		resp.GraphDriver = &storage.DriverData{Name: in.Snapshotter, Data: data}
	}
	resp.NetworkSettings = networkSettings(c, in.Image.Config, in.SandboxKey, in.Endpoints)
	return resp
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// containerConfig merges the container's settings over its image's, as
// Docker's create does.
func containerConfig(c record.Container, img ocispec.ImageConfig) *container.Config {
	r := c.Run
	cfg := &container.Config{
		Hostname:    r.Hostname,
		User:        img.User,
		Tty:         r.Tty,
		OpenStdin:   r.OpenStdin,
		StdinOnce:   r.StdinOnce,
		Image:       c.Image,
		WorkingDir:  img.WorkingDir,
		Entrypoint:  img.Entrypoint,
		Cmd:         img.Cmd,
		Labels:      map[string]string{},
		StopSignal:  c.StopSignal,
		StopTimeout: c.StopTimeout,
	}
	if r.User != "" {
		cfg.User = r.User
	}
	if r.WorkingDir != "" {
		cfg.WorkingDir = r.WorkingDir
	}
	if r.EntrypointSet {
		cfg.Entrypoint, cfg.Cmd = r.Entrypoint, nil
		if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
			cfg.Entrypoint = nil
		}
	}
	if len(r.Cmd) > 0 {
		cfg.Cmd = r.Cmd
	}
	// The run's entries first, then the image's that the run does not set.
	env := []string{}
	seen := map[string]bool{}
	for _, kv := range r.Env {
		k, _, ok := strings.Cut(kv, "=")
		if ok && !seen[k] {
			env = append(env, kv)
		}
		seen[k] = true
	}
	for _, kv := range img.Env {
		if k, _, _ := strings.Cut(kv, "="); !seen[k] {
			env = append(env, kv)
		}
	}
	cfg.Env = env
	for k, v := range img.Labels {
		cfg.Labels[k] = v
	}
	for k, v := range c.Labels {
		cfg.Labels[k] = v
	}
	if len(img.ExposedPorts) > 0 {
		cfg.ExposedPorts = mobynet.PortSet{}
		for p := range img.ExposedPorts {
			if port, err := mobynet.ParsePort(p); err == nil {
				cfg.ExposedPorts[port] = struct{}{}
			}
		}
	}
	return cfg
}

// volumeOf is the volume name of mount m ("" for none).
func volumeOf(m specs.Mount, names func(string) (string, bool)) string {
	if m.Type != "bind" || names == nil {
		return ""
	}
	n, _ := names(m.Source)
	return n
}

func readOnly(m specs.Mount) bool { return slices.Contains(m.Options, "ro") }

// mountPoints is inspect's top-level Mounts: binds, volumes (Type
// "volume", Name, Driver "local") and tmpfs mounts, in the order given.
func mountPoints(c record.Container, names func(string) (string, bool)) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range c.Run.Mounts {
		mp := container.MountPoint{Type: mount.Type(m.Type), Source: m.Source, Destination: m.Destination, RW: !readOnly(m)}
		switch {
		case volumeOf(m, names) != "":
			mp.Type, mp.Name, mp.Driver = "volume", volumeOf(m, names), "local"
		case m.Type == "bind":
			mp.Propagation = "rprivate"
			for _, o := range m.Options {
				if strings.HasSuffix(o, "shared") || strings.HasSuffix(o, "slave") || strings.HasSuffix(o, "private") {
					mp.Propagation = mount.Propagation(o)
				}
			}
		case m.Type == "tmpfs":
			mp.Source = ""
		}
		out = append(out, mp)
	}
	return out
}

// binds is HostConfig.Binds as Docker keeps -v: "SRC:DST[:ro]" with the
// volume's name as SRC for a named volume; anonymous volumes are not
// binds (Docker lists them in Config.Volumes).
func binds(c record.Container, names func(string) (string, bool)) []string {
	var out []string
	for _, m := range c.Run.Mounts {
		if m.Type != "bind" {
			continue
		}
		src := m.Source
		if n := volumeOf(m, names); n != "" {
			if volume.IsAnonymousName(n) {
				continue
			}
			src = n
		}
		b := src + ":" + m.Destination
		if readOnly(m) {
			b += ":ro"
		}
		out = append(out, b)
	}
	return out
}

func hostConfig(c record.Container, runtimeName string, names func(string) (string, bool)) *container.HostConfig {
	policy := c.Restart.Name
	if policy == "" {
		policy = "no"
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(c.Net.Mode),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(policy), MaximumRetryCount: c.Restart.MaximumRetryCount},
		AutoRemove:     c.AutoRemove,
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{}},
		Binds:          binds(c, names),
		PortBindings:   mobynet.PortMap{},
		DNS:            []netip.Addr{},
		DNSOptions:     nonNil(c.Net.DNSOptions),
		DNSSearch:      nonNil(c.Net.DNSSearch),
		ExtraHosts:     c.Net.ExtraHosts,
		CapAdd:         c.Run.CapAdd,
		CapDrop:        c.Run.CapDrop,
		Privileged:     c.Run.Privileged,
		ReadonlyRootfs: c.Run.ReadOnlyRootfs,
		ShmSize:        c.Run.ShmSize,
		Sysctls:        c.Run.Sysctls,
		Runtime:        strings.TrimSuffix(runtimeName, "/"),
		CgroupnsMode:   "host",
		IpcMode:        "private",
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
	}
	r := c.Run
	hc.Memory, hc.NanoCPUs, hc.MemorySwap = r.Memory, r.NanoCPUs, r.MemorySwap
	if r.Memory > 0 && r.MemorySwap == 0 {
		hc.MemorySwap = 2 * r.Memory // Docker's default
	}
	if r.PidsLimit != 0 {
		n := r.PidsLimit
		hc.PidsLimit = &n
	}
	for _, u := range r.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: int64(u.Soft), Hard: int64(u.Hard)})
	}
	if r.Init {
		t := true
		hc.Init = &t
	}
	if r.NoNewPrivileges {
		hc.SecurityOpt = []string{"no-new-privileges"}
	}
	for _, m := range r.Mounts {
		if m.Type == "tmpfs" {
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[m.Destination] = strings.Join(m.Options, ",")
		}
	}
	if c.LogMaxSize > 0 {
		hc.LogConfig.Config["max-size"] = strconv.FormatInt(c.LogMaxSize, 10)
	}
	for _, d := range c.Net.DNS {
		if a, err := netip.ParseAddr(d); err == nil {
			hc.DNS = append(hc.DNS, a)
		}
	}
	for _, b := range c.Net.Ports {
		port, ok := mobynet.PortFrom(b.ContainerPort, mobynet.IPProtocol(b.Proto))
		if !ok {
			continue
		}
		hp := ""
		if b.HostPort != 0 {
			hp = strconv.Itoa(int(b.HostPort))
			if b.HostPortEnd > b.HostPort {
				hp += "-" + strconv.Itoa(int(b.HostPortEnd))
			}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], mobynet.PortBinding{HostIP: b.HostIP, HostPort: hp})
	}
	return hc
}

// networkSettings reports the container's endpoints (while it runs) and
// published ports; a stopped container on a bridge network lists the
// network with empty addresses, as Docker.
func networkSettings(c record.Container, img ocispec.ImageConfig, sandboxKey string, eps []network.Endpoint) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: mobynet.PortMap{}, Networks: map[string]*mobynet.EndpointSettings{}}
	mode := c.Net.Mode
	switch {
	case mode == "none" || mode == "host":
		ns.Networks[mode] = &mobynet.EndpointSettings{}
		return ns
	case strings.HasPrefix(mode, "container:"):
		return ns
	}
	running := c.State.Status == record.StatusRunning
	if running {
		ns.SandboxKey = sandboxKey
		for p := range img.ExposedPorts {
			if port, err := mobynet.ParsePort(p); err == nil {
				ns.Ports[port] = nil
			}
		}
	}
	ns.Networks[mode] = &mobynet.EndpointSettings{Aliases: c.Net.Aliases}
	if !running {
		return ns
	}
	for _, ep := range eps {
		es := &mobynet.EndpointSettings{
			Aliases:     ep.Aliases,
			NetworkID:   ep.NetworkID,
			EndpointID:  endpointID(ep.NetworkID, c.ID),
			Gateway:     ep.Gateway,
			IPAddress:   ep.Address.Addr(),
			IPPrefixLen: ep.Address.Bits(),
			DNSNames:    []string{c.Name, c.ShortID()},
		}
		if hw, err := net.ParseMAC(ep.MAC); err == nil {
			es.MacAddress = mobynet.HardwareAddr(hw)
		}
		if !slices.Contains(ep.Aliases, c.Name) && ep.NetworkName != "bridge" {
			es.DNSNames = append(es.DNSNames, ep.Aliases...)
		} else if ep.NetworkName == "bridge" {
			es.DNSNames = nil
		}
		ns.Networks[ep.NetworkName] = es
		for _, b := range ep.Ports {
			port, ok := mobynet.PortFrom(b.ContainerPort, mobynet.IPProtocol(b.Proto))
			if !ok {
				continue
			}
			hostIP := b.HostIP
			if !hostIP.IsValid() {
				hostIP = netip.IPv4Unspecified()
			}
			ns.Ports[port] = append(ns.Ports[port], mobynet.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(b.HostPort))})
		}
	}
	return ns
}

// endpointID is a stable 64-hex-digit ID for the container's endpoint on
// a network (Berth's endpoints have no ID of their own).
func endpointID(networkID, containerID string) string {
	h := sha256.Sum256([]byte(networkID + "/" + containerID))
	return hex.EncodeToString(h[:])
}
