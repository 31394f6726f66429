package convert

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	containertypes "github.com/moby/moby/api/types/container"
	mounttypes "github.com/moby/moby/api/types/mount"
	networktypes "github.com/moby/moby/api/types/network"
)

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

// VolumeName is the name of the volume whose data directory
// (volDir/NAME/_data) source is; false for any other path or an empty
// volDir.
func VolumeName(source, volDir string) (string, bool) {
	if volDir == "" || !strings.HasPrefix(source, volDir+"/") || !strings.HasSuffix(source, "/_data") {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(source, volDir+"/"), "/_data"), true
}

// mountPoints lists c's mounts; binds of a volume under volDir are
// reported as that volume.
func mountPoints(c engine.Container, volDir string) []containertypes.MountPoint {
	out := []containertypes.MountPoint{}
	for _, m := range c.Run.Mounts {
		mp := containertypes.MountPoint{Type: mounttypes.Type(m.Type), Source: m.Source, Destination: m.Destination, RW: true}
		for _, o := range m.Options {
			if o == "ro" {
				mp.RW = false
			}
		}
		if name, ok := VolumeName(m.Source, volDir); ok {
			mp.Type, mp.Name, mp.Driver = mounttypes.TypeVolume, name, "local"
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
		Command: c.Command(), Created: c.Created.Unix(), Ports: ports(c),
		Labels: c.Labels, State: containertypes.ContainerState(c.DisplayStatus()), Status: c.StatusText(),
		NetworkSettings: &containertypes.NetworkSettingsSummary{Networks: eps},
		Mounts:          mountPoints(c, volDir),
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = c.Net.Mode
	return sum
}

// Endpoints is c's NetworkSettings.Networks of GET /containers/json: eps
// (its endpoints, read while it runs) by network name, else its network
// mode with empty settings (none for container:REF).
func Endpoints(c engine.Container, eps []network.Endpoint) map[string]*networktypes.EndpointSettings {
	out := map[string]*networktypes.EndpointSettings{}
	for _, ep := range eps {
		out[ep.NetworkName] = &networktypes.EndpointSettings{
			NetworkID: ep.NetworkID, EndpointID: ep.ContainerID + "/" + ep.NetworkID,
			Gateway: ep.Gateway, IPAddress: ep.Address.Addr(), IPPrefixLen: ep.Address.Bits(),
			MacAddress: hwAddr(ep.MAC), Aliases: ep.Aliases,
		}
	}
	mode := c.Net.Mode
	if mode == "" {
		mode = "bridge"
	}
	if len(out) == 0 && !strings.HasPrefix(mode, "container:") {
		out[mode] = &networktypes.EndpointSettings{}
	}
	return out
}

// InspectForVersion adapts the engine's container inspect (the newest
// API's shape) to the API version the client asked for, as dockerd does:
// before 1.45 the endpoints of user-defined networks list the short ID
// and the hostname among their aliases; before 1.48 there is no
// ImageManifestDescriptor.
func InspectForVersion(resp *containertypes.InspectResponse, version string) {
	if CompareVersions(version, "1.45") < 0 && resp.NetworkSettings != nil {
		short := resp.ID[:min(12, len(resp.ID))]
		for name, ep := range resp.NetworkSettings.Networks {
			if ep == nil || !containertypes.NetworkMode(name).IsUserDefined() {
				continue
			}
			for _, a := range []string{short, hostname(resp)} {
				if a != "" && !slices.Contains(ep.Aliases, a) {
					ep.Aliases = append(ep.Aliases, a)
				}
			}
		}
	}
	if CompareVersions(version, "1.48") < 0 {
		resp.ImageManifestDescriptor = nil
	}
}

func hostname(resp *containertypes.InspectResponse) string {
	if resp.Config == nil {
		return ""
	}
	return resp.Config.Hostname
}
