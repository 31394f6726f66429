package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// InspectContainer describes container ref in the shape of Docker's GET
// /containers/{id}/json (`docker container inspect`). Config holds the
// container's settings merged with its image's (env, cmd, entrypoint,
// user, working dir, labels), as Docker stores them. With size, SizeRw
// (bytes in the writable layer) and SizeRootFs (that plus the image's
// unpacked layers) are filled in. Unknown ref: errdefs.ErrNotFound.
func (e *Engine) InspectContainer(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	var img ocispec.Image
	var rec image.Record
	if data, err := e.content.ReadAll(c.ImageID); err == nil {
		json.Unmarshal(data, &img)
	}
	e.db.View(ctx, func(tx *state.Tx) error {
		all, _ := image.List(tx)
		for _, r := range all {
			if r.Config == c.ImageID {
				rec = r
				break
			}
		}
		return nil
	})
	st := c.State
	resp := container.InspectResponse{
		ID:      c.ID,
		Created: c.Created.Format(time.RFC3339Nano),
		Path:    c.Path,
		Args:    nonNil(c.Args),
		State: &container.State{
			Status:     container.ContainerState(c.DisplayStatus()),
			Running:    st.Status == StatusRunning,
			Paused:     st.Status == StatusRunning && st.Paused,
			Dead:       false,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  st.StartedAt.UTC().Format(time.RFC3339Nano),
			FinishedAt: st.FinishedAt.UTC().Format(time.RFC3339Nano),
		},
		Image:          c.ImageID.String(),
		ResolvConfPath: e.etcFile(c.ID, "resolv.conf"),
		HostnamePath:   e.etcFile(c.ID, "hostname"),
		HostsPath:      e.etcFile(c.ID, "hosts"),
		LogPath:        e.LogPath(c.ID),
		Name:           "/" + c.Name,
		RestartCount:   st.RestartCount,
		Driver:         e.opts.Snapshotter,
		Platform:       "linux",
		HostConfig:     e.hostConfig(c),
		Mounts:         []container.MountPoint{},
		Config:         containerConfig(c, img.Config),
	}
	if rec.Name != "" {
		t := rec.Target
		resp.ImageManifestDescriptor = &t
	}
	if ms, err := e.snaps.Mounts(ctx, c.ID); err == nil {
		data := map[string]string{"MergedDir": e.bundleDir(c.ID) + "/rootfs"}
		for _, m := range ms {
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
		resp.GraphDriver = &storage.DriverData{Name: e.opts.Snapshotter, Data: data}
	}
	resp.NetworkSettings = e.networkSettings(ctx, c, img.Config)
	if size {
		u, _ := e.snaps.Usage(ctx, c.ID)
		rw, rootfs := u.Size, u.Size
		for _, ch := range chainIDs(img.RootFS.DiffIDs) {
			if lu, err := e.snaps.Usage(ctx, ch.String()); err == nil {
				rootfs += lu.Size
			}
		}
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// containerConfig merges the container's settings over its image's, as
// Docker's create does.
func containerConfig(c Container, img ocispec.ImageConfig) *container.Config {
	r := c.Run
	cfg := &container.Config{
		Hostname:    r.Hostname,
		User:        img.User,
		Tty:         r.Tty,
		OpenStdin:   r.OpenStdin,
		StdinOnce:   false,
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

func (e *Engine) hostConfig(c Container) *container.HostConfig {
	policy := c.Restart.Name
	if policy == "" {
		policy = "no"
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(c.Net.Mode),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(policy), MaximumRetryCount: c.Restart.MaximumRetryCount},
		AutoRemove:     c.AutoRemove,
		LogConfig:      container.LogConfig{Type: "k8s-file", Config: map[string]string{}},
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
		Runtime:        strings.TrimSuffix(e.opts.Runtime, "/"),
		CgroupnsMode:   "host",
		IpcMode:        "private",
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = 64 << 20
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
func (e *Engine) networkSettings(ctx context.Context, c Container, img ocispec.ImageConfig) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: mobynet.PortMap{}, Networks: map[string]*mobynet.EndpointSettings{}}
	mode := c.Net.Mode
	switch {
	case mode == "none" || mode == "host":
		ns.Networks[mode] = &mobynet.EndpointSettings{}
		return ns
	case strings.HasPrefix(mode, "container:"):
		return ns
	}
	running := c.State.Status == StatusRunning
	if running {
		ns.SandboxKey = e.netnsPath(c.ID)
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
	m, err := e.Networks()
	if err != nil {
		return ns
	}
	eps, err := m.Endpoints(ctx, c.ID)
	if err != nil {
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
