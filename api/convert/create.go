// Package convert maps between Docker Engine API types (github.com/moby/moby/api)
// and Berth's engine types: create requests to engine.CreateOptions;
// containers, images, networks and events to Docker's list shapes; the
// engine's container inspect to the shape of older API versions; the
// filters of the list endpoints; /version and /info. It holds no state and
// does no I/O beyond reading the host's description for /info and
// /version.
package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// VolumeRef asks for a named volume (created on first use) mounted at
// Destination; the handler passes it to the engine (engine.VolumeMount).
type VolumeRef struct {
	Name        string // "" for an anonymous volume
	Destination string
	ReadOnly    bool
	NoCopy      bool // Docker's nocopy / VolumeOptions.NoCopy
}

// Plan is a decoded create request: the engine options plus what the
// handler must resolve (volumes) and the warnings to return.
type Plan struct {
	Opts     engine.CreateOptions
	Volumes  []VolumeRef
	Warnings []string
}

// Create reads a POST /containers/create body (Docker's
// container.CreateRequest) and maps it onto engine.CreateOptions. Bad JSON
// and unsupported settings give ErrInvalidArgument, so the client gets 400.
// It touches no state: it is the fuzzing target of the request decoder.
func Create(name string, body []byte) (Plan, error) {
	var req containertypes.CreateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return Plan{}, invalid("invalid JSON: " + err.Error())
	}
	if req.Config == nil {
		return Plan{}, invalid("config cannot be empty in order to create a container")
	}
	c := req.Config
	if c.Image == "" {
		return Plan{}, invalid("no image specified")
	}
	hc := req.HostConfig
	if hc == nil {
		hc = &containertypes.HostConfig{}
	}
	p := Plan{}
	o := &p.Opts
	o.Name = strings.TrimPrefix(name, "/")
	o.Image = c.Image
	o.Pull = "never" // the CLI pulls through POST /images/create on a 404
	o.Labels = c.Labels
	o.StopSignal = c.StopSignal
	o.StopTimeout = c.StopTimeout
	o.AutoRemove = hc.AutoRemove
	if hc.Runtime != "" && !slices.Contains(engine.APIRuntimes, hc.Runtime) {
		return Plan{}, invalid("unknown or invalid runtime name: " + hc.Runtime)
	}
	o.Runtime = hc.Runtime
	o.Run = runtime.RunOptions{
		Cmd: c.Cmd, Entrypoint: c.Entrypoint, EntrypointSet: c.Entrypoint != nil,
		Env: c.Env, WorkingDir: c.WorkingDir, User: c.User, Hostname: c.Hostname,
		Tty: c.Tty, OpenStdin: c.OpenStdin, StdinOnce: c.OpenStdin && c.StdinOnce,
		AttachStdin: c.AttachStdin, AttachStdout: c.AttachStdout, AttachStderr: c.AttachStderr,
		ReadOnlyRootfs: hc.ReadonlyRootfs, Privileged: hc.Privileged,
		CapAdd: hc.CapAdd, CapDrop: hc.CapDrop, Sysctls: hc.Sysctls, ShmSize: hc.ShmSize,
		Memory: hc.Memory, MemorySwap: hc.MemorySwap, NanoCPUs: hc.NanoCPUs,
	}
	if hc.PidsLimit != nil {
		o.Run.PidsLimit = *hc.PidsLimit
	}
	if hc.Init != nil && *hc.Init {
		o.Run.Init = true
	}
	for _, so := range hc.SecurityOpt {
		switch so {
		case "no-new-privileges", "no-new-privileges=true", "no-new-privileges:true":
			o.Run.NoNewPrivileges = true
		case "no-new-privileges=false", "no-new-privileges:false":
		default:
			p.Warnings = append(p.Warnings, "security option "+so+" is ignored")
		}
	}
	for _, d := range hc.Devices {
		o.Run.Devices = append(o.Run.Devices, runtime.DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	for _, u := range hc.Ulimits {
		if u == nil || u.Soft < 0 || u.Hard < 0 {
			return Plan{}, invalid("invalid ulimit")
		}
		o.Run.Ulimits = append(o.Run.Ulimits, runtime.Ulimit{Name: u.Name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	if rp := hc.RestartPolicy; rp.Name != "" {
		spec := string(rp.Name)
		if rp.MaximumRetryCount != 0 {
			spec = fmt.Sprintf("%s:%d", rp.Name, rp.MaximumRetryCount)
		}
		pol, err := engine.ParseRestartPolicy(spec)
		if err != nil {
			return Plan{}, err
		}
		o.Restart = pol
	}
	o.LogDriver = hc.LogConfig.Type // checked by engine.Create
	if len(hc.LogConfig.Config) > 0 {
		o.LogOpts = hc.LogConfig.Config
	}
	if err := decodeNetwork(&p, c, hc, req); err != nil {
		return Plan{}, err
	}
	if err := decodeMounts(&p, c, hc); err != nil {
		return Plan{}, err
	}
	return p, nil
}

func decodeNetwork(p *Plan, c *containertypes.Config, hc *containertypes.HostConfig, req containertypes.CreateRequest) error {
	n := &p.Opts.Network
	n.Mode = string(hc.NetworkMode)
	if c.NetworkDisabled {
		n.Mode = "none"
	}
	for _, d := range hc.DNS {
		n.DNS = append(n.DNS, d.String())
	}
	n.DNSSearch, n.DNSOptions, n.ExtraHosts = hc.DNSSearch, hc.DNSOptions, hc.ExtraHosts
	n.PublishAll = hc.PublishAllPorts
	for port := range c.ExposedPorts {
		n.Expose = append(n.Expose, port.String())
	}
	slices.Sort(n.Expose)
	for port, bindings := range hc.PortBindings {
		if len(bindings) == 0 {
			n.Publish = append(n.Publish, port.String())
		}
		for _, b := range bindings {
			spec := port.String()
			ip := ""
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				ip = b.HostIP.String()
			}
			switch {
			case ip != "":
				spec = ip + ":" + b.HostPort + ":" + spec
			case b.HostPort != "":
				spec = b.HostPort + ":" + spec
			}
			n.Publish = append(n.Publish, spec)
		}
	}
	slices.Sort(n.Publish)
	if req.NetworkingConfig != nil {
		for netName, ep := range req.NetworkingConfig.EndpointsConfig {
			if ep == nil {
				continue
			}
			if n.Mode == "" || n.Mode == "default" {
				n.Mode = netName
			}
			if netName != n.Mode {
				return invalid("Container cannot be connected to network endpoints: " + netName)
			}
			if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
				n.IP = ep.IPAMConfig.IPv4Address.String()
			}
			n.Aliases = ep.Aliases
		}
	}
	return nil
}

// decodeMounts maps Binds ("SRC:DST[:OPTS]"), Mounts (bind, volume,
// tmpfs), Tmpfs and anonymous Config.Volumes onto bind mounts and volume
// references.
func decodeMounts(p *Plan, c *containertypes.Config, hc *containertypes.HostConfig) error {
	run := &p.Opts.Run
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !path.IsAbs(parts[1]) {
			return invalid("invalid volume specification: '" + b + "'")
		}
		ro, noCopy := false, false
		var opts []string
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					ro = true
				case "nocopy":
					noCopy = true
				case "rw", "z", "Z", "":
				case "shared", "rshared", "slave", "rslave", "private", "rprivate":
					opts = append(opts, o)
				default:
					return invalid("invalid mode: " + o)
				}
			}
		}
		if path.IsAbs(parts[0]) {
			run.Mounts = append(run.Mounts, BindMount(parts[0], parts[1], ro, opts...))
			p.Opts.MakeBindSources = append(p.Opts.MakeBindSources, parts[0])
		} else {
			p.Volumes = append(p.Volumes, VolumeRef{Name: parts[0], Destination: parts[1], ReadOnly: ro, NoCopy: noCopy})
		}
	}
	for _, m := range hc.Mounts {
		if !path.IsAbs(m.Target) {
			return invalid("invalid mount target: " + m.Target)
		}
		switch m.Type {
		case mounttypes.TypeBind:
			if !path.IsAbs(m.Source) {
				return invalid("invalid mount config for type \"bind\": invalid mount path: '" + m.Source + "' mount path must be absolute")
			}
			run.Mounts = append(run.Mounts, BindMount(m.Source, m.Target, m.ReadOnly))
		case mounttypes.TypeVolume:
			noCopy := m.VolumeOptions != nil && m.VolumeOptions.NoCopy
			p.Volumes = append(p.Volumes, VolumeRef{Name: m.Source, Destination: m.Target, ReadOnly: m.ReadOnly, NoCopy: noCopy})
		case mounttypes.TypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.TmpfsOptions != nil && m.TmpfsOptions.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", m.TmpfsOptions.SizeBytes))
			}
			run.Mounts = append(run.Mounts, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: opts})
		default:
			return invalid("mount type " + string(m.Type) + " is not supported")
		}
	}
	for dst, o := range hc.Tmpfs {
		if !path.IsAbs(dst) {
			return invalid("invalid tmpfs destination: " + dst)
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		run.Mounts = append(run.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	dests := map[string]bool{}
	for _, m := range run.Mounts {
		dests[path.Clean(m.Destination)] = true
	}
	for _, v := range p.Volumes {
		dests[path.Clean(v.Destination)] = true
	}
	anon := make([]string, 0, len(c.Volumes))
	for dst := range c.Volumes {
		if !path.IsAbs(dst) {
			return invalid("invalid volume destination: " + dst)
		}
		if !dests[path.Clean(dst)] {
			anon = append(anon, dst)
		}
	}
	slices.Sort(anon)
	for _, dst := range anon {
		p.Volumes = append(p.Volumes, VolumeRef{Destination: dst})
	}
	return nil
}

// BindMount is a bind mount of src at dst, read-only if ro.
func BindMount(src, dst string, ro bool, extra ...string) specs.Mount {
	opts := []string{"rbind"}
	if ro {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append(opts, extra...)}
}

func invalid(msg string) error { return fmt.Errorf("%s: %w", msg, errdefs.ErrInvalidArgument) }
