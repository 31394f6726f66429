package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
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
		mac := hwAddr(ep.MAC)
		out.Containers[ep.ContainerID] = networktypes.EndpointResource{
			Name: ep.ContainerName, EndpointID: ep.EndpointID(), MacAddress: mac, IPv4Address: ep.Address,
		}
	}
	return out
}

// BuiltinNetworks are Docker's predefined "host" and "none", which Berth
// handles as network modes rather than stored networks.
func BuiltinNetworks() []networktypes.Inspect {
	var out []networktypes.Inspect
	for _, name := range []string{"host", "none"} {
		n := network.Predefined(name)
		out = append(out, networktypes.Inspect{
			Network:    networktypes.Network{Name: name, ID: n.ID, Scope: "local", Driver: n.Driver, Options: map[string]string{}, Labels: map[string]string{}, IPAM: networktypes.IPAM{Driver: "default", Config: []networktypes.IPAMConfig{}}},
			Containers: map[string]networktypes.EndpointResource{},
		})
	}
	return out
}

// BuiltinNetwork is the predefined network named name ("host" or "none")
// or whose ID starts with name (12 or more characters); false otherwise.
func BuiltinNetwork(name string) (networktypes.Inspect, bool) {
	for _, n := range BuiltinNetworks() {
		if n.Name == name || len(name) >= 12 && strings.HasPrefix(n.ID, name) {
			return n, true
		}
	}
	return networktypes.Inspect{}, false
}

// hwAddr parses a MAC address; "" or a malformed one gives nil.
func hwAddr(s string) networktypes.HardwareAddr {
	var m networktypes.HardwareAddr
	if s != "" {
		m.UnmarshalText([]byte(s))
	}
	return m
}

// NetworkCreate reads POST /networks/create's body (Docker's
// CreateRequest) into the options of a bridge network. Errors:
// errdefs.ErrInvalidArgument for malformed JSON, a missing name or more
// than one IPAM config; errdefs.ErrNotImplemented for IPv6.
func NetworkCreate(body []byte) (network.CreateOptions, error) {
	var req networktypes.CreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return network.CreateOptions{}, invalid("invalid JSON: " + err.Error())
	}
	if req.Name == "" {
		return network.CreateOptions{}, invalid("network name is required")
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return network.CreateOptions{}, fmt.Errorf("IPv6 networks are not implemented: %w", errdefs.ErrNotImplemented)
	}
	o := network.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		if len(req.IPAM.Config) > 1 {
			return network.CreateOptions{}, invalid("only one IPAM config is supported")
		}
		c := req.IPAM.Config[0]
		o.Subnet, o.Gateway, o.IPRange = c.Subnet, c.Gateway, c.IPRange
	}
	return o, nil
}
