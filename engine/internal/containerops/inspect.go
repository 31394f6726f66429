package containerops

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	bmount "github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/volume"
	"github.com/moby/moby/api/types/blkiodev"
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
	// the image's unpacked layers; nil unless asked for. When the
	// snapshot's writable directory is known (Mounts), Inspect counts
	// SizeRw itself as Docker does (see WritableSize), and SizeRootFs is
	// that plus ImageSize when ImageSize is set.
	SizeRw, SizeRootFs *int64
	// ImageSize is the image's unpacked size in bytes (its record's
	// Size); 0 when unknown.
	ImageSize int64
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
			Running:    c.Live(), // Docker counts a restarting container as running
			Paused:     st.Status == record.StatusRunning && st.Paused,
			Restarting: c.DisplayStatus() == record.StatusRestarting,
			OOMKilled:  st.OOMKilled,
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
		HostConfig:              hostConfig(c, in.Runtime, in.VolumeName, bundleSpec(in.MergedDir)),
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
		resp.SizeRw, resp.SizeRootFs = layerSizes(in, data["UpperDir"])
	}
	resp.Config.Volumes = configVolumes(c, in.Image.Config, in.VolumeName)
	resp.NetworkSettings = networkSettings(c, in.Image.Config, in.SandboxKey, in.Endpoints)
	return resp
}

// layerSizes are inspect's SizeRw and SizeRootFs (see InspectInput)
// given the writable directory upper.
func layerSizes(in InspectInput, upper string) (*int64, *int64) {
	if in.SizeRw == nil || in.SizeRootFs == nil || upper == "" {
		return in.SizeRw, in.SizeRootFs
	}
	rw, err := WritableSize(upper)
	if err != nil {
		return in.SizeRw, in.SizeRootFs
	}
	rootfs := rw + *in.SizeRootFs - *in.SizeRw
	if in.ImageSize > 0 {
		rootfs = rw + in.ImageSize
	}
	return &rw, &rootfs
}

// WritableSize is the size in bytes of a container's writable layer
// directory dir as Docker counts it (SizeRw, `docker ps -s`): the
// lengths of the files, symlinks and devices in it, a hard-linked file
// once, directories not at all; so an untouched container's layer is 0
// bytes. Errors are the walk's (errors.Is os.ErrNotExist for a missing
// dir).
func WritableSize(dir string) (int64, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += fi.Size()
		return nil
	})
	return total, err
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
		AttachStdin: r.AttachStdin, AttachStdout: r.AttachStdout, AttachStderr: r.AttachStderr,
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
	cfg.ExposedPorts = exposedPorts(c, img)
	return cfg
}

// exposedPorts is Config.ExposedPorts as Docker keeps it: the image's
// exposed ports, --expose's and the container port of every -p/-P
// binding; nil when there are none.
func exposedPorts(c record.Container, img ocispec.ImageConfig) mobynet.PortSet {
	var set mobynet.PortSet
	add := func(port mobynet.Port) {
		if set == nil {
			set = mobynet.PortSet{}
		}
		set[port] = struct{}{}
	}
	for _, p := range slices.Concat(slices.Collect(maps.Keys(img.ExposedPorts)), c.Net.Exposed) {
		if port, err := mobynet.ParsePort(p); err == nil {
			add(port)
		}
	}
	for _, b := range c.Net.Ports {
		if port, ok := mobynet.PortFrom(b.ContainerPort, mobynet.IPProtocol(b.Proto)); ok {
			add(port)
		}
	}
	return set
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
		if _, ok := tmpfsFlag(m); ok {
			continue // Docker keeps --tmpfs in HostConfig.Tmpfs only
		}
		mp := container.MountPoint{Type: mount.Type(m.Type), Source: m.Source, Destination: m.Destination, RW: !readOnly(m)}
		if !mp.RW && m.Type == "bind" {
			mp.Mode = "ro" // -v's mode field; a read-write -v has none
		}
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

// tmpfsDefaults are the options --tmpfs (and the API's HostConfig.Tmpfs)
// mounts get before the user's; a --mount type=tmpfs has no noexec.
var tmpfsDefaults = []string{"nosuid", "nodev", "noexec"}

// tmpfsFlag reports whether m came from --tmpfs (HostConfig.Tmpfs) and
// gives the options the user wrote, as Docker keeps them ("" for none).
func tmpfsFlag(m specs.Mount) (string, bool) {
	if m.Type != "tmpfs" || len(m.Options) < len(tmpfsDefaults) || !slices.Equal(m.Options[:len(tmpfsDefaults)], tmpfsDefaults) {
		return "", false
	}
	return strings.Join(m.Options[len(tmpfsDefaults):], ","), true
}

// capNames are --cap-add/--cap-drop values as Docker stores them:
// upper case with the CAP_ prefix, "ALL" as is.
func capNames(caps []string) []string {
	var out []string
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// configVolumes is Config.Volumes: the image's volumes and the
// container's anonymous ones (-v /path), nil when there are none.
func configVolumes(c record.Container, img ocispec.ImageConfig, names func(string) (string, bool)) map[string]struct{} {
	var out map[string]struct{}
	add := func(dst string) {
		if out == nil {
			out = map[string]struct{}{}
		}
		out[dst] = struct{}{}
	}
	for dst := range img.Volumes {
		add(dst)
	}
	for _, m := range c.Run.Mounts {
		if volume.IsAnonymousName(volumeOf(m, names)) {
			add(m.Destination)
		}
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

// logDriver is the log driver inspect reports: "json-file", Docker's
// default. Berth's own monitor and foreground runs write that format
// (package monitor); a container run under conmon has a CRI k8s-file
// log instead, which `logs` reads back the same way, so what clients
// learn from this field (the logs can be read; docker-py's
// containers.run() returns the output only for json-file, local and
// journald) holds either way.
const logDriver = "json-file"

func hostConfig(c record.Container, runtimeName string, names func(string) (string, bool), spec *specs.Spec) *container.HostConfig {
	policy := c.Restart.Name
	if policy == "" {
		policy = "no"
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(c.Net.Mode),
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(policy), MaximumRetryCount: c.Restart.MaximumRetryCount},
		AutoRemove:     c.AutoRemove,
		LogConfig:      container.LogConfig{Type: logDriver, Config: map[string]string{}},
		Binds:          binds(c, names),
		PortBindings:   mobynet.PortMap{},
		DNS:            []netip.Addr{},
		DNSOptions:     nonNil(c.Net.DNSOptions),
		DNSSearch:      nonNil(c.Net.DNSSearch),
		ExtraHosts:     c.Net.ExtraHosts,
		CapAdd:         capNames(c.Run.CapAdd),
		CapDrop:        capNames(c.Run.CapDrop),
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
	// The lists docker's CLI sends empty ([]) rather than absent (null),
	// as `docker inspect` then shows them.
	hc.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	hc.BlkioDeviceReadBps, hc.BlkioDeviceWriteBps = []*blkiodev.ThrottleDevice{}, []*blkiodev.ThrottleDevice{}
	hc.BlkioDeviceReadIOps, hc.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{}, []*blkiodev.ThrottleDevice{}
	hc.Devices, hc.Ulimits = []container.DeviceMapping{}, []*container.Ulimit{}
	hc.MaskedPaths, hc.ReadonlyPaths = maskedPaths(c, spec)
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
	for _, d := range r.Devices {
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	if r.Init {
		t := true
		hc.Init = &t
	}
	if r.NoNewPrivileges {
		hc.SecurityOpt = []string{"no-new-privileges"}
	}
	for _, m := range r.Mounts {
		if opts, ok := tmpfsFlag(m); ok {
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[m.Destination] = opts
		}
	}
	oomKillDisable := false // berth has no --oom-kill-disable; Docker's CLI sends false
	hc.OomKillDisable = &oomKillDisable
	maps.Copy(hc.LogConfig.Config, c.LogOpts)
	if c.LogMaxSize > 0 && c.LogOpts == nil { // a record older than LogOpts
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
		for port := range exposedPorts(c, img) {
			ns.Ports[port] = nil
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
			EndpointID:  ep.EndpointID(),
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

// bundleSpec reads the OCI spec the container last ran with from its
// bundle (the parent of its rootfs mount point mergedDir); nil if it
// never ran or the bundle is gone.
func bundleSpec(mergedDir string) *specs.Spec {
	if mergedDir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(mergedDir), "config.json"))
	if err != nil {
		return nil
	}
	var s specs.Spec
	if json.Unmarshal(data, &s) != nil {
		return nil
	}
	return &s
}

// maskedPaths are HostConfig.MaskedPaths and ReadonlyPaths: none for a
// privileged container (Docker's null), else those of the spec it last
// ran with, or Berth's defaults before its first start.
func maskedPaths(c record.Container, spec *specs.Spec) (masked, readonly []string) {
	if c.Run.Privileged {
		return nil, nil
	}
	if spec != nil && spec.Linux != nil {
		return nonNil(spec.Linux.MaskedPaths), nonNil(spec.Linux.ReadonlyPaths)
	}
	return runtime.DefaultMaskedPaths(), runtime.DefaultReadonlyPaths()
}

// InspectJSON is a container's inspect object as Docker 28 (API 1.50)
// serialises it: the API module's InspectResponse plus the legacy
// top-level NetworkSettings fields that module no longer carries
// (Bridge, HairpinMode, LinkLocalIPv6*, SecondaryIP*, EndpointID,
// Gateway, GlobalIPv6*, IPAddress, IPPrefixLen, IPv6Gateway, MacAddress),
// in Docker's order. As dockerd, the address fields are those of the
// endpoint on the default "bridge" network and empty strings (zeros)
// when the container has none; the never-set ones are empty or null.
// Only marshalling differs: the value is the embedded InspectResponse.
type InspectJSON struct {
	container.InspectResponse
}

// legacyNetworkSettings is NetworkSettings in Docker 28's shape.
type legacyNetworkSettings struct {
	Bridge                 string
	SandboxID              string
	SandboxKey             string
	Ports                  mobynet.PortMap
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []struct {
		Addr      string
		PrefixLen int
	}
	SecondaryIPv6Addresses []struct {
		Addr      string
		PrefixLen int
	}
	EndpointID          string
	Gateway             string
	GlobalIPv6Address   string
	GlobalIPv6PrefixLen int
	IPAddress           string
	IPPrefixLen         int
	IPv6Gateway         string
	MacAddress          string
	Networks            map[string]*mobynet.EndpointSettings
}

// MarshalJSON writes j with the legacy NetworkSettings fields, HTML
// characters unescaped (as docker inspect prints them).
func (j InspectJSON) MarshalJSON() ([]byte, error) {
	out := struct {
		container.InspectResponse
		NetworkSettings *legacyNetworkSettings
	}{InspectResponse: j.InspectResponse}
	if ns := j.InspectResponse.NetworkSettings; ns != nil {
		l := &legacyNetworkSettings{SandboxID: ns.SandboxID, SandboxKey: ns.SandboxKey, Ports: ns.Ports, Networks: ns.Networks}
		if ep := ns.Networks[network.DefaultNetworkName]; ep != nil {
			l.EndpointID, l.IPPrefixLen, l.GlobalIPv6PrefixLen = ep.EndpointID, ep.IPPrefixLen, ep.GlobalIPv6PrefixLen
			l.Gateway, l.IPAddress = addrString(ep.Gateway), addrString(ep.IPAddress)
			l.GlobalIPv6Address, l.IPv6Gateway = addrString(ep.GlobalIPv6Address), addrString(ep.IPv6Gateway)
			if len(ep.MacAddress) > 0 {
				l.MacAddress = ep.MacAddress.String()
			}
		}
		out.NetworkSettings = l
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// addrString is a's text, "" for the zero address (Docker's empty field).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
