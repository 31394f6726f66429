package convert

import (
	"github.com/berthproject/berth/network"
	networktypes "github.com/moby/moby/api/types/network"
)

// Network is Docker's network object for n (endpoints as Containers).
func Network(n network.Network) networktypes.Inspect {
	name := n.Name
	out := networktypes.Inspect{
		Network: networktypes.Network{
			Name: name, ID: n.ID, Created: n.Created, Scope: "local", Driver: "bridge",
			EnableIPv4: true, Internal: n.Internal, Options: n.Options, Labels: n.Labels,
			IPAM: networktypes.IPAM{Driver: "default", Options: map[string]string{},
				Config: []networktypes.IPAMConfig{{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway}}},
		},
		Containers: map[string]networktypes.EndpointResource{},
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	for _, ep := range n.Endpoints {
		mac := HWAddr(ep.MAC)
		out.Containers[ep.ContainerID] = networktypes.EndpointResource{
			Name: ep.ContainerName, EndpointID: ep.ContainerID + "/" + ep.NetworkID, MacAddress: mac, IPv4Address: ep.Address,
		}
	}
	return out
}

// BuiltinNetworks are Docker's predefined "host" and "none", which Berth
// handles as network modes rather than stored networks.
func BuiltinNetworks() []networktypes.Inspect {
	var out []networktypes.Inspect
	for _, name := range []string{"host", "none"} {
		out = append(out, networktypes.Inspect{
			Network:    networktypes.Network{Name: name, ID: name, Scope: "local", Driver: name, Options: map[string]string{}, Labels: map[string]string{}, IPAM: networktypes.IPAM{Driver: "default", Config: []networktypes.IPAMConfig{}}},
			Containers: map[string]networktypes.EndpointResource{},
		})
	}
	return out
}

// HWAddr parses a MAC address; "" or a malformed one gives nil.
func HWAddr(s string) networktypes.HardwareAddr {
	var m networktypes.HardwareAddr
	if s != "" {
		m.UnmarshalText([]byte(s))
	}
	return m
}
