package network

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/berthproject/berth/network/firewall"
)

// Network is a bridge network as stored and as returned by Inspect and List.
type Network struct {
	ID      string            `json:"id"`     // 64 hex digits
	Name    string            `json:"name"`   // unique; "bridge" is the default network
	Driver  string            `json:"driver"` // "bridge", or the name of an Options.Drivers driver
	Bridge  string            `json:"bridge"` // Linux bridge name, e.g. berth0, br-<id[:12]>
	Subnet  netip.Prefix      `json:"subnet"`
	Gateway netip.Addr        `json:"gateway"`
	IPRange netip.Prefix      `json:"ipRange,omitzero"` // allocation sub-range; zero = all of Subnet
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"` // driver options (-o), kept verbatim
	// Internal networks get no masquerading and no forwarding to or from
	// outside the bridge (Docker's --internal).
	Internal bool `json:"internal,omitempty"`
	// Default is true for the predefined "bridge" network, which cannot be
	// removed and, like Docker's, offers no name resolution between
	// containers.
	Default bool      `json:"default,omitempty"`
	Created time.Time `json:"created"`
	// Endpoints lists the network's containers (filled by Inspect and List,
	// ordered by container ID).
	Endpoints []Endpoint `json:"-"`
}

// Endpoint is one container's attachment to one network.
type Endpoint struct {
	NetworkID     string `json:"networkId"`
	NetworkName   string `json:"networkName"`
	ContainerID   string `json:"containerId"`
	ContainerName string `json:"containerName,omitempty"`
	// NetnsPath is the network namespace the endpoint was attached in.
	NetnsPath string `json:"netnsPath"`
	// IfName is the interface inside the container (eth0, eth1, ...);
	// HostIfName the host end of the veth pair.
	IfName     string       `json:"ifName"`
	HostIfName string       `json:"hostIfName"`
	Address    netip.Prefix `json:"address"` // e.g. 10.77.0.2/16
	Gateway    netip.Addr   `json:"gateway"`
	MAC        string       `json:"mac"`
	Aliases    []string     `json:"aliases,omitempty"`
	// Ports are the published ports with host ports resolved.
	Ports []PortBinding `json:"ports,omitempty"`
	// Ready is false while Attach is in progress (or crashed mid-way).
	Ready bool `json:"ready"`
}

// EndpointID is the endpoint's ID as Docker shows it (EndpointID in
// container and network inspect): 64 hex digits, stable for the pair of
// network and container, the same wherever it is shown.
func (e Endpoint) EndpointID() string {
	h := sha256.Sum256([]byte(e.NetworkID + "/" + e.ContainerID))
	return hex.EncodeToString(h[:])
}

// PortBinding publishes one container port on the host (Docker's -p).
type PortBinding struct {
	// HostIP restricts the binding to one host address; the zero value means
	// every address (0.0.0.0).
	HostIP netip.Addr `json:"hostIp,omitzero"`
	// HostPort is the host port; 0 asks Attach to pick a free one from the
	// ephemeral range (or from HostPort..HostPortEnd when HostPortEnd is set).
	HostPort    uint16 `json:"hostPort"`
	HostPortEnd uint16 `json:"hostPortEnd,omitempty"`
	// ContainerPort is the port inside the container.
	ContainerPort uint16 `json:"containerPort"`
	// Proto is "tcp", "udp" or "sctp".
	Proto string `json:"proto"`
}

// CreateOptions are the arguments of `network create`.
type CreateOptions struct {
	Name string
	// Subnet zero picks a free /24 from the manager's address pool that
	// overlaps no other network and no host route.
	Subnet netip.Prefix
	// Gateway zero means the first address of Subnet.
	Gateway  netip.Addr
	IPRange  netip.Prefix
	Internal bool
	Labels   map[string]string
	// Options are driver options. Recognised:
	//   com.docker.network.bridge.name  the Linux bridge name (default br-<id[:12]>)
	//   com.docker.network.driver.mtu   MTU of bridge and veths
	// Others are kept and returned by Inspect.
	Options map[string]string
	// Driver is "" or "bridge" for a berth bridge network, or the name
	// of one of Options.Drivers (see Driver).
	Driver string
}

// AttachOptions are the per-endpoint arguments of run/connect.
type AttachOptions struct {
	ContainerName string
	// IP requests a fixed address (--ip); zero allocates one.
	IP netip.Addr
	// Aliases are extra DNS names on this network (--network-alias).
	Aliases []string
	// MAC overrides the generated MAC address ("02:b7:" + IPv4 bytes).
	MAC string
	// Ports to publish through this endpoint (from ParsePortSpecs).
	Ports []PortBinding
}

type state struct {
	Networks map[string]*netRecord `json:"networks"` // by ID
	// Endpoints by containerID + "/" + networkID: kept in endpoints.json
	// (see loadState); a state.json of an older berth may still hold them.
	Endpoints map[string]*epRecord `json:"endpoints,omitempty"`
}

type netRecord struct {
	Network
	Rules []firewall.Rule `json:"rules"`
	// DriverConfig is what the driver's Validate returned (driver
	// networks only).
	DriverConfig []byte `json:"driverConfig,omitempty"`
}

type epRecord struct {
	Endpoint
	Rules []firewall.Rule `json:"rules"`
}

// Predefined is Docker's predefined network name ("host" or "none") as a
// Network. Berth handles them as network modes, not stored networks; the
// ID (64 hex digits, as Docker's) is derived from the name, so it is
// stable; the driver is "host" or "null", as Docker's.
func Predefined(name string) Network {
	sum := sha256.Sum256([]byte("berth predefined network " + name))
	driver := "host"
	if name == "none" {
		driver = "null"
	}
	return Network{ID: hex.EncodeToString(sum[:]), Name: name, Driver: driver}
}
