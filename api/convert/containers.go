package convert

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/engine"
	units "github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
	networktypes "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// statusText is the Status column of `docker ps`: "Up 3 seconds",
// "Exited (0) 2 minutes ago", "Created".
func statusText(c engine.Container) string {
	switch c.State.Status {
	case engine.StatusRunning:
		if c.State.Paused {
			return "Up " + units.HumanDuration(time.Since(c.State.StartedAt)) + " (Paused)"
		}
		return "Up " + units.HumanDuration(time.Since(c.State.StartedAt))
	case engine.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(time.Since(c.State.FinishedAt)))
	case engine.StatusRemoving:
		return "Removal In Progress"
	}
	return "Created"
}

func command(c engine.Container) string {
	return strings.Join(append([]string{c.Path}, c.Args...), " ")
}

// ImageName is the image as the user named it.
func ImageName(c engine.Container) string {
	if c.Image != "" {
		return c.Image
	}
	return c.ImageName
}

// livePorts are c's port bindings as they are now: while it runs, the
// host ports its last start resolved (random ones from -P or -p 80
// filled in), else as requested (0 for a random one), as Docker's
// NetworkSettings.Ports and `docker ps` show them.
func livePorts(c engine.Container) []engine.PortBinding {
	if c.State.Status == engine.StatusRunning && len(c.Net.Published) > 0 {
		return c.Net.Published
	}
	return c.Net.Ports
}

func ports(c engine.Container) []containertypes.PortSummary {
	out := []containertypes.PortSummary{}
	for _, p := range livePorts(c) {
		ps := containertypes.PortSummary{PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Proto}
		if p.HostPort != 0 {
			ps.IP = p.HostIP
			if !ps.IP.IsValid() {
				ps.IP = netip.IPv4Unspecified()
			}
		}
		out = append(out, ps)
	}
	return out
}

// MountPoints lists c's mounts; binds of a volume under volDir are
// reported as that volume.
func MountPoints(c engine.Container, volDir string) []containertypes.MountPoint {
	out := []containertypes.MountPoint{}
	for _, m := range c.Run.Mounts {
		mp := containertypes.MountPoint{Type: mounttypes.Type(m.Type), Source: m.Source, Destination: m.Destination, RW: true}
		for _, o := range m.Options {
			if o == "ro" {
				mp.RW = false
			}
		}
		if volDir != "" && strings.HasPrefix(m.Source, volDir+"/") && strings.HasSuffix(m.Source, "/_data") {
			mp.Type = mounttypes.TypeVolume
			mp.Name = strings.TrimSuffix(strings.TrimPrefix(m.Source, volDir+"/"), "/_data")
			mp.Driver = "local"
		}
		if m.Type == "bind" && mp.Type == mounttypes.TypeBind {
			mp.Propagation = mounttypes.PropagationRPrivate
		}
		out = append(out, mp)
	}
	return out
}

// Summary is c as one entry of GET /containers/json; eps are its
// endpoints by network name.
func Summary(c engine.Container, eps map[string]*networktypes.EndpointSettings, volDir string) containertypes.Summary {
	sum := containertypes.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: ImageName(c), ImageID: c.ImageID.String(),
		Command: command(c), Created: c.Created.Unix(), Ports: ports(c),
		Labels: c.Labels, State: containertypes.ContainerState(c.DisplayStatus()), Status: statusText(c),
		NetworkSettings: &containertypes.NetworkSettingsSummary{Networks: eps},
		Mounts:          MountPoints(c, volDir),
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = c.Net.Mode
	return sum
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect is c as GET /containers/{id}/json returns it: eps are its
// endpoints, logPath its log, driver the snapshotter.
func Inspect(c engine.Container, eps map[string]*networktypes.EndpointSettings, volDir, logPath, driver string) containertypes.InspectResponse {
	st := c.State
	cmd := c.Run.Cmd
	if len(cmd) == 0 && !c.Run.EntrypointSet {
		cmd = append([]string{c.Path}, c.Args...)
	}
	pm, exposed := portMap(c.Net.Ports)
	live, _ := portMap(livePorts(c))
	restart := containertypes.RestartPolicy{Name: containertypes.RestartPolicyMode(c.Restart.Name), MaximumRetryCount: c.Restart.MaximumRetryCount}
	if restart.Name == "" {
		restart.Name = containertypes.RestartPolicyDisabled
	}
	logCfg := map[string]string{}
	if c.LogMaxSize > 0 {
		logCfg["max-size"] = strconv.FormatInt(c.LogMaxSize, 10)
	}
	var binds []string
	for _, m := range c.Run.Mounts {
		if m.Type == "bind" {
			binds = append(binds, m.Source+":"+m.Destination)
		}
	}
	return containertypes.InspectResponse{
		ID: c.ID, Created: timeText(c.Created), Path: c.Path, Args: c.Args,
		State: &containertypes.State{
			Status: containertypes.ContainerState(c.DisplayStatus()), Running: st.Status == engine.StatusRunning, Paused: st.Paused,
			Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: timeText(st.StartedAt), FinishedAt: timeText(st.FinishedAt),
		},
		Image: c.ImageID.String(), Name: "/" + c.Name, RestartCount: st.RestartCount,
		LogPath: logPath, Driver: driver, Platform: "linux",
		ExecIDs: nil,
		HostConfig: &containertypes.HostConfig{
			Binds: binds, NetworkMode: containertypes.NetworkMode(c.Net.Mode), PortBindings: pm,
			RestartPolicy: restart, AutoRemove: c.AutoRemove,
			// Clients (docker-py) read logs through the API only for the
			// drivers they know; the monitor's k8s-file log serves them alike.
			LogConfig:  containertypes.LogConfig{Type: "json-file", Config: logCfg},
			Privileged: c.Run.Privileged, ReadonlyRootfs: c.Run.ReadOnlyRootfs,
			CapAdd: c.Run.CapAdd, CapDrop: c.Run.CapDrop, ShmSize: c.Run.ShmSize,
			ExtraHosts: c.Net.ExtraHosts, DNSSearch: c.Net.DNSSearch, DNSOptions: c.Net.DNSOptions,
		},
		GraphDriver: &storage.DriverData{Name: driver, Data: map[string]string{}},
		Mounts:      MountPoints(c, volDir),
		Config: &containertypes.Config{
			Hostname: c.Run.Hostname, User: c.Run.User, Tty: c.Run.Tty, OpenStdin: c.Run.OpenStdin,
			AttachStdout: true, AttachStderr: true, ExposedPorts: exposed,
			Env: c.Run.Env, Cmd: cmd, Image: ImageName(c), WorkingDir: c.Run.WorkingDir,
			Entrypoint: c.Run.Entrypoint, Labels: c.Labels, StopSignal: c.StopSignal, StopTimeout: c.StopTimeout,
		},
		NetworkSettings: &containertypes.NetworkSettings{Ports: live, Networks: eps},
	}
}

// portMap is Docker's PortMap of bindings, and the ports they expose.
func portMap(bindings []engine.PortBinding) (networktypes.PortMap, networktypes.PortSet) {
	pm := networktypes.PortMap{}
	exposed := networktypes.PortSet{}
	for _, p := range bindings {
		port, err := networktypes.ParsePort(strconv.Itoa(int(p.ContainerPort)) + "/" + p.Proto)
		if err != nil {
			continue
		}
		exposed[port] = struct{}{}
		b := networktypes.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))}
		if !b.HostIP.IsValid() {
			b.HostIP = netip.IPv4Unspecified()
		}
		pm[port] = append(pm[port], b)
	}
	return pm, exposed
}
