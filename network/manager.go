package network

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/network/bridge"
	"github.com/berthproject/berth/network/firewall"
	"github.com/berthproject/berth/network/internal/filelock"
	"github.com/berthproject/berth/network/ipam"
	"github.com/berthproject/berth/network/netns"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

// Defaults. See the package documentation for why these ranges.
var (
	// DefaultSubnet is the subnet of the predefined "bridge" network.
	DefaultSubnet = netip.MustParsePrefix("10.77.0.0/16")
	// DefaultAddressPool is carved into /24s for networks created without
	// --subnet.
	DefaultAddressPool = netip.MustParsePrefix("10.78.0.0/15")
)

const (
	// DefaultNetworkName is the name of the predefined network `berth run`
	// uses when no --network is given.
	DefaultNetworkName = "bridge"
	// DefaultBridgeName is the Linux bridge of the default network.
	DefaultBridgeName = "berth0"

	optBridgeName = "com.docker.network.bridge.name"
	optMTU        = "com.docker.network.driver.mtu"
)

// Options configure a Manager. The zero value gives the defaults.
type Options struct {
	// ChainPrefix names berth's iptables chains (default "BERTH").
	ChainPrefix string
	// DefaultBridge is the Linux bridge of the "bridge" network
	// (default DefaultBridgeName).
	DefaultBridge string
	// DefaultSubnet of the "bridge" network (default DefaultSubnet).
	DefaultSubnet netip.Prefix
	// AutoDefaultSubnet, with DefaultSubnet unset, gives the "bridge"
	// network a free /24 from AddressPool (skipping other networks and
	// host routes, so another engine's bridge) instead of DefaultSubnet:
	// for engines that share a machine with the default one.
	AutoDefaultSubnet bool
	// AddressPool for networks created without a subnet (default
	// DefaultAddressPool), split into /24s.
	AddressPool netip.Prefix
	// PortRange is the inclusive range random host ports are taken from
	// (default: the kernel's net.ipv4.ip_local_port_range).
	PortRange [2]uint16
	// Drivers plumb networks created with another driver than "bridge",
	// by driver name (e.g. "cni"); see Driver.
	Drivers map[string]Driver
}

// Manager manages bridge networks and their endpoints. It keeps all state
// in files under its state directory, guarded by an flock, and holds
// nothing in memory between calls, so any number of Managers in any number
// of processes may share one directory. Methods are safe for concurrent use.
// All methods need root (CAP_NET_ADMIN) except List and Inspect.
type Manager struct {
	dir  string
	opts Options
	ipam *ipam.Store
	fw   *firewall.Firewall
}

// Open returns a Manager whose state lives in stateDir (created if missing),
// e.g. <root>/network.
func Open(stateDir string, opts Options) (*Manager, error) {
	if opts.DefaultBridge == "" {
		opts.DefaultBridge = DefaultBridgeName
	}
	if !opts.DefaultSubnet.IsValid() && !opts.AutoDefaultSubnet {
		opts.DefaultSubnet = DefaultSubnet
	}
	if !opts.AddressPool.IsValid() {
		opts.AddressPool = DefaultAddressPool
	}
	if opts.PortRange[0] == 0 {
		opts.PortRange = localPortRange()
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	st, err := ipam.Open(filepath.Join(stateDir, "ipam"))
	if err != nil {
		return nil, err
	}
	return &Manager{dir: stateDir, opts: opts, ipam: st, fw: firewall.New(opts.ChainPrefix)}, nil
}

func localPortRange() [2]uint16 {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, e1 := strconv.Atoi(f[0])
			hi, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil && lo > 0 && hi <= 65535 && lo <= hi {
				return [2]uint16{uint16(lo), uint16(hi)}
			}
		}
	}
	return [2]uint16{32768, 60999}
}

// testHook, when set (by tests), is called at named steps of Attach.
var testHook func(step string)

// crashAt is $BERTH_TEST_CRASH_AT, read once: when it is "network:STEP",
// the process SIGKILLs itself at that step of Attach, so that end-to-end
// tests can check what a kill -9 leaves behind.
var crashAt = os.Getenv("BERTH_TEST_CRASH_AT")

func hook(step string) {
	if testHook != nil {
		testHook(step)
	}
	if crashAt != "" && crashAt == "network:"+step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

// txn runs fn with the state loaded under the exclusive lock and saves the
// state afterwards if fn returns nil or asks for a save on error by calling
// save. Every intermediate save inside fn must go through the passed save.
func (m *Manager) txnMode(ctx context.Context, readOnly bool, fn func(st *state, save func() error) error) error {
	l, err := filelock.Acquire(ctx, filepath.Join(m.dir, "lock"))
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	defer l.Unlock()
	st, legacy, err := m.loadState()
	if err != nil {
		return err
	}
	// Saves that would not change a file are skipped, and teardown paths
	// often find nothing to do. Networks (state.json) must survive a power
	// loss: written with fsyncs. Endpoints (endpoints.json) belong to
	// running containers, which no power loss outlives: written without
	// any, which saves two per attach (an endpoints.json that comes back
	// older, empty or torn after one holds endpoints of dead containers
	// only, and is read as empty when torn; Reclaim tears down the rest).
	lastNets, _ := json.Marshal(st.Networks)
	lastEps, _ := json.Marshal(st.Endpoints)
	save := func() error {
		nets, err := json.Marshal(st.Networks)
		if err != nil {
			return err
		}
		eps, err := json.Marshal(st.Endpoints)
		if err != nil {
			return err
		}
		if !bytes.Equal(eps, lastEps) || legacy {
			if err := filelock.WriteJSONUnsynced(filepath.Join(m.dir, endpointsFile), st.Endpoints); err != nil {
				return fmt.Errorf("network: save endpoints: %w", err)
			}
			lastEps = eps
		}
		if !bytes.Equal(nets, lastNets) || legacy {
			if err := filelock.WriteJSON(filepath.Join(m.dir, stateFile), &state{Networks: st.Networks}); err != nil {
				return fmt.Errorf("network: save state: %w", err)
			}
			lastNets, legacy = nets, false
		}
		return nil
	}
	if err := fn(st, save); err != nil {
		return err
	}
	if readOnly {
		return nil
	}
	return save()
}

// read runs fn with the current state, saving nothing.
//
// It takes no lock: state.json is only ever replaced by an atomic rename,
// so a read sees one committed version, never a torn one; it may see an
// endpoint that an Attach in progress recorded (Ready false). Readers thus
// never queue behind an Attach, which holds the lock for its whole length.
func (m *Manager) read(ctx context.Context, fn func(st *state) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, _, err := m.loadState()
	if err != nil {
		return err
	}
	return fn(st)
}

// The state directory's files (see doc.go).
const (
	stateFile     = "state.json"
	endpointsFile = "endpoints.json"
)

// loadState reads the networks from state.json and the endpoints from
// endpoints.json. An endpoints.json that cannot be parsed (torn by a
// power loss: it is written without fsync) holds no endpoint; while none
// exists, the endpoints a state.json of an older berth carries are used,
// and legacy is true so that the next save moves them out.
func (m *Manager) loadState() (st *state, legacy bool, err error) {
	st = &state{}
	if err := filelock.ReadJSON(filepath.Join(m.dir, stateFile), st); err != nil {
		return nil, false, fmt.Errorf("network: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(m.dir, endpointsFile))
	switch {
	case err == nil:
		eps := map[string]*epRecord{}
		if json.Unmarshal(b, &eps) != nil {
			eps = map[string]*epRecord{}
		}
		st.Endpoints = eps
	case errors.Is(err, os.ErrNotExist):
		legacy = len(st.Endpoints) > 0
	default:
		return nil, false, fmt.Errorf("network: %w", err)
	}
	if st.Networks == nil {
		st.Networks = map[string]*netRecord{}
	}
	if st.Endpoints == nil {
		st.Endpoints = map[string]*epRecord{}
	}
	return st, legacy, nil
}

func (m *Manager) txn(ctx context.Context, fn func(st *state, save func() error) error) error {
	return m.txnMode(ctx, false, fn)
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// find resolves a name, full ID or unique ID prefix.
func (st *state) find(nameOrID string) (*netRecord, error) {
	if nameOrID == "" {
		return nil, fmt.Errorf("network name is empty: %w", errdefs.ErrInvalidArgument)
	}
	if n, ok := st.Networks[nameOrID]; ok {
		return n, nil
	}
	for _, n := range st.Networks {
		if n.Name == nameOrID {
			return n, nil
		}
	}
	var match *netRecord
	for id, n := range st.Networks {
		if strings.HasPrefix(id, nameOrID) {
			if match != nil {
				return nil, fmt.Errorf("network %s is ambiguous: %w", nameOrID, errdefs.ErrInvalidArgument)
			}
			match = n
		}
	}
	if match == nil {
		return nil, fmt.Errorf("network %s not found: %w", nameOrID, errdefs.ErrNotFound)
	}
	return match, nil
}

func (st *state) endpointsOf(networkID string) []*epRecord {
	var out []*epRecord
	for _, e := range st.Endpoints {
		if e.NetworkID == networkID {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *epRecord) int { return strings.Compare(a.ContainerID, b.ContainerID) })
	return out
}

func (st *state) view(n *netRecord) Network {
	out := n.Network
	for _, e := range st.endpointsOf(n.ID) {
		out.Endpoints = append(out.Endpoints, e.Endpoint)
	}
	return out
}

// Create creates a bridge network: it records it, creates the Linux
// bridge with the gateway address and adds the network's firewall rules.
// Errors: errdefs.ErrInvalidArgument for a bad name, driver, subnet,
// gateway, ip-range or option, or for the reserved names "host", "none"
// and "bridge"; errdefs.ErrConflict when the name or bridge name is taken
// or the subnet overlaps another network's; errdefs.ErrUnavailable when no
// subnet is left in the pool. Nothing is left behind on error.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (Network, error) {
	if o.Name == DefaultNetworkName || o.Name == "host" || o.Name == "none" {
		return Network{}, fmt.Errorf("network name %q is reserved for a predefined network: %w", o.Name, errdefs.ErrInvalidArgument)
	}
	var out Network
	err := m.txn(ctx, func(st *state, save func() error) error {
		n, err := m.create(ctx, st, o, false, save)
		out = n
		return err
	})
	return out, err
}

// EnsureDefault creates the predefined "bridge" network (bridge
// Options.DefaultBridge, subnet Options.DefaultSubnet) if it does not exist,
// and re-creates its bridge and rules if the bridge was lost (e.g. after a
// reboot). As in Attach, a present bridge is taken to mean the network is
// plumbed: that fast path runs no iptables and writes nothing.
// Idempotent; call it before attaching to DefaultNetworkName.
func (m *Manager) EnsureDefault(ctx context.Context) (Network, error) {
	var out Network
	found := false
	err := m.read(ctx, func(st *state) error {
		if n, err := st.find(DefaultNetworkName); err == nil && bridge.Exists(n.Bridge) {
			out, found = st.view(n), true
		}
		return nil
	})
	if err != nil || found {
		return out, err // no write: the common case costs no fsync
	}
	err = m.txn(ctx, func(st *state, save func() error) error {
		if n, err := st.find(DefaultNetworkName); err == nil {
			out = st.view(n)
			return m.plumb(ctx, n)
		}
		n, err := m.create(ctx, st, CreateOptions{
			Name:    DefaultNetworkName,
			Subnet:  m.opts.DefaultSubnet,
			Options: map[string]string{optBridgeName: m.opts.DefaultBridge},
		}, true, save)
		out = n
		return err
	})
	return out, err
}

// DefaultGateway returns the gateway address of the predefined "bridge"
// network: what Docker writes for --add-host NAME:host-gateway in a
// container that has no network of its own (host, none). When the network
// does not exist yet, it is the first address of Options.DefaultSubnet;
// with AutoDefaultSubnet the network is created (EnsureDefault) to learn it.
func (m *Manager) DefaultGateway(ctx context.Context) (netip.Addr, error) {
	var gw netip.Addr
	err := m.read(ctx, func(st *state) error {
		if n, err := st.find(DefaultNetworkName); err == nil {
			gw = n.Gateway
		}
		return nil
	})
	switch {
	case err != nil || gw.IsValid():
		return gw, err
	case m.opts.DefaultSubnet.IsValid():
		return m.opts.DefaultSubnet.Masked().Addr().Next(), nil
	}
	n, err := m.EnsureDefault(ctx)
	return n.Gateway, err
}

func (m *Manager) create(ctx context.Context, st *state, o CreateOptions, isDefault bool, save func() error) (Network, error) {
	if !validName.MatchString(o.Name) {
		return Network{}, fmt.Errorf("invalid network name %q: %w", o.Name, errdefs.ErrInvalidArgument)
	}
	drv, isDriver := m.driver(o.Driver)
	if o.Driver != "" && o.Driver != "bridge" && !isDriver {
		return Network{}, fmt.Errorf("network driver %q is not supported (supported: %s): %w", o.Driver, strings.Join(m.supportedDrivers(), ", "), errdefs.ErrInvalidArgument)
	}
	for _, n := range st.Networks {
		if n.Name == o.Name {
			return Network{}, fmt.Errorf("network with name %s already exists: %w", o.Name, errdefs.ErrConflict)
		}
	}
	if isDriver {
		return m.createWithDriver(ctx, st, o, drv)
	}
	id := newID()
	brName := o.Options[optBridgeName]
	if brName == "" {
		brName = "br-" + id[:12]
	}
	if len(brName) > 15 || !validName.MatchString(brName) {
		return Network{}, fmt.Errorf("invalid bridge name %q: %w", brName, errdefs.ErrInvalidArgument)
	}
	for _, n := range st.Networks {
		if n.Bridge == brName {
			return Network{}, fmt.Errorf("bridge %s is already used by network %s: %w", brName, n.Name, errdefs.ErrConflict)
		}
	}
	if mtu, ok := o.Options[optMTU]; ok {
		if v, err := strconv.Atoi(mtu); err != nil || v < 68 || v > 65535 {
			return Network{}, fmt.Errorf("invalid %s %q: %w", optMTU, mtu, errdefs.ErrInvalidArgument)
		}
	}
	subnet := o.Subnet
	if subnet.IsValid() {
		if err := (ipam.Range{Subnet: subnet}).Validate(); err != nil {
			return Network{}, err
		}
		for _, n := range st.Networks {
			if n.Subnet.Overlaps(subnet) {
				return Network{}, fmt.Errorf("subnet %s overlaps network %s (%s): %w", subnet, n.Name, n.Subnet, errdefs.ErrConflict)
			}
		}
	} else {
		if o.Gateway.IsValid() || o.IPRange.IsValid() {
			return Network{}, fmt.Errorf("--gateway and --ip-range need --subnet: %w", errdefs.ErrInvalidArgument)
		}
		var err error
		if subnet, err = m.pickSubnet(st); err != nil {
			return Network{}, err
		}
	}
	gw := o.Gateway
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	r := ipam.Range{Subnet: subnet, IPRange: o.IPRange, Gateway: gw}
	if err := r.Validate(); err != nil {
		return Network{}, err
	}
	if Exists := bridge.Exists(brName); Exists {
		return Network{}, fmt.Errorf("a network interface named %s already exists on the host: %w", brName, errdefs.ErrConflict)
	}
	n := &netRecord{Network: Network{
		ID: id, Name: o.Name, Driver: "bridge", Bridge: brName, Subnet: subnet, Gateway: gw,
		IPRange: o.IPRange, Internal: o.Internal, Labels: maps.Clone(o.Labels), Options: maps.Clone(o.Options),
		Default: isDefault, Created: time.Now().UTC(),
	}}
	n.Rules = m.fw.NetworkRules(brName, subnet, o.Internal)
	// Record first: a crash from here on leaves a record whose Remove
	// (or next EnsureDefault/Attach) finishes or undoes the plumbing.
	st.Networks[id] = n
	if err := save(); err != nil {
		delete(st.Networks, id)
		return Network{}, err
	}
	if err := m.plumb(ctx, n); err != nil {
		m.unplumb(ctx, n)
		delete(st.Networks, id)
		if serr := save(); serr != nil {
			return Network{}, errors.Join(err, serr)
		}
		return Network{}, err
	}
	return st.view(n), nil
}

// plumb makes the kernel match a network record: bridge, forwarding
// sysctls, base chains and the network's rules. Idempotent.
func (m *Manager) plumb(ctx context.Context, n *netRecord) error {
	mtu, _ := strconv.Atoi(n.Options[optMTU])
	if err := bridge.Ensure(n.Bridge, netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), mtu); err != nil {
		return err
	}
	if err := firewall.EnableForwarding(n.Bridge); err != nil {
		return err
	}
	if err := m.fw.EnsureBase(ctx); err != nil {
		return err
	}
	for _, r := range n.Rules {
		if err := m.fw.Add(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) unplumb(ctx context.Context, n *netRecord) error {
	var errs []error
	for _, r := range n.Rules {
		errs = append(errs, m.fw.Delete(ctx, r))
	}
	errs = append(errs, bridge.Delete(n.Bridge))
	errs = append(errs, m.fw.RemoveBaseIfUnused(ctx))
	return errors.Join(errs...)
}

// pickSubnet returns the first /24 of the address pool that overlaps no
// network and no route of the host.
func (m *Manager) pickSubnet(st *state) (netip.Prefix, error) {
	var taken []netip.Prefix
	for _, n := range st.Networks {
		taken = append(taken, n.Subnet)
	}
	if routes, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			if a, ok := netip.AddrFromSlice(r.Dst.IP.To4()); ok && ones > 0 {
				taken = append(taken, netip.PrefixFrom(a, ones))
			}
		}
	}
	pool := m.opts.AddressPool.Masked()
	for c := netip.PrefixFrom(pool.Addr(), 24); pool.Contains(c.Addr()); {
		if !slices.ContainsFunc(taken, c.Overlaps) {
			return c, nil
		}
		next := ipam.Broadcast(c).Next()
		if !next.IsValid() {
			break
		}
		c = netip.PrefixFrom(next, 24)
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 subnet left in address pool %s: %w", pool, errdefs.ErrUnavailable)
}

// Remove deletes a network: its firewall rules, its bridge and its address
// pool. Errors: errdefs.ErrNotFound for an unknown network;
// errdefs.ErrPermissionDenied for the predefined "bridge" network and,
// as Docker's 403, when containers are still attached ("error while
// removing network: network NAME has active endpoints").
func (m *Manager) Remove(ctx context.Context, nameOrID string) error {
	return m.txn(ctx, func(st *state, save func() error) error {
		n, err := st.find(nameOrID)
		if err != nil {
			return err
		}
		if n.Default {
			return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrPermissionDenied)
		}
		return m.remove(ctx, st, n)
	})
}

func (m *Manager) remove(ctx context.Context, st *state, n *netRecord) error {
	if eps := st.endpointsOf(n.ID); len(eps) > 0 {
		return fmt.Errorf("error while removing network: network %s has active endpoints: %w", n.Name, errdefs.ErrPermissionDenied)
	}
	if n.usesDriver() {
		// The driver's own state is the driver's; Detach may have left
		// an empty berth IPAM pool file.
		if err := m.ipam.Delete(ctx, n.ID); err != nil {
			return err
		}
		delete(st.Networks, n.ID)
		return nil
	}
	if err := m.unplumb(ctx, n); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if err := m.ipam.Delete(ctx, n.ID); err != nil {
		return err
	}
	delete(st.Networks, n.ID)
	return nil
}

// List returns all networks, sorted by name, each with its endpoints.
func (m *Manager) List(ctx context.Context) ([]Network, error) {
	var out []Network
	err := m.read(ctx, func(st *state) error {
		for _, n := range st.Networks {
			out = append(out, st.view(n))
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// Inspect returns one network by name, full ID or unique ID prefix:
// errdefs.ErrNotFound if none matches, errdefs.ErrInvalidArgument if a
// prefix is ambiguous.
func (m *Manager) Inspect(ctx context.Context, nameOrID string) (Network, error) {
	var out Network
	err := m.read(ctx, func(st *state) error {
		n, err := st.find(nameOrID)
		if err == nil {
			out = st.view(n)
		}
		return err
	})
	return out, err
}

// Prune removes every network that has no endpoints, except the predefined
// one, and returns the removed names, sorted.
func (m *Manager) Prune(ctx context.Context) ([]string, error) {
	var removed []string
	err := m.txn(ctx, func(st *state, save func() error) error {
		for _, n := range st.Networks {
			if n.Default || len(st.endpointsOf(n.ID)) > 0 {
				continue
			}
			if err := m.remove(ctx, st, n); err != nil {
				return errors.Join(err, save())
			}
			removed = append(removed, n.Name)
		}
		return nil
	})
	slices.Sort(removed)
	return removed, err
}

func epKey(containerID, networkID string) string { return containerID + "/" + networkID }

// Attach connects a container, whose network namespace is at netnsPath,
// to a network: it allocates an address (o.IP or the next free one),
// creates a veth pair with its container end (eth0, eth1, ... in attach
// order) in the namespace, adds the default route when the namespace has
// none, and publishes o.Ports, resolving host port 0 to a free port.
//
// Everything is recorded on disk under the lock before it is created, so a
// crash at any point is undone by Detach, ReleaseAll or Reclaim.
//
// Errors: errdefs.ErrNotFound for an unknown network or a missing netns;
// errdefs.ErrInvalidArgument for an IP outside the subnet or a bad port;
// errdefs.ErrConflict when the IP or a host port is taken or the container
// is already attached; errdefs.ErrUnavailable when the subnet or the port
// range is exhausted. On error nothing is left behind.
func (m *Manager) Attach(ctx context.Context, network, containerID, netnsPath string, o AttachOptions) (Endpoint, error) {
	if containerID == "" || strings.Contains(containerID, "/") {
		return Endpoint{}, fmt.Errorf("invalid container ID %q: %w", containerID, errdefs.ErrInvalidArgument)
	}
	var out Endpoint
	err := m.txn(ctx, func(st *state, save func() error) error {
		n, err := st.find(network)
		if err != nil {
			return err
		}
		key := epKey(containerID, n.ID)
		if e, ok := st.Endpoints[key]; ok {
			if e.Ready {
				return fmt.Errorf("container %.12s is already connected to network %s: %w", containerID, n.Name, errdefs.ErrConflict)
			}
			// Leftover of a crashed Attach: undo it first.
			if err := m.teardown(ctx, st, e); err != nil {
				return err
			}
		}
		if _, err := os.Stat(netnsPath); err != nil {
			return fmt.Errorf("netns %s: %w", netnsPath, errdefs.ErrNotFound)
		}
		if n.usesDriver() {
			out, err = m.attachWithDriver(ctx, st, save, n, containerID, netnsPath, o)
			return err
		}
		var mac net.HardwareAddr
		if o.MAC != "" {
			if mac, err = net.ParseMAC(o.MAC); err != nil || len(mac) != 6 {
				return fmt.Errorf("invalid MAC address %q: %w", o.MAC, errdefs.ErrInvalidArgument)
			}
		}
		for _, p := range o.Ports {
			if err := p.validate(); err != nil {
				return err
			}
		}
		r := ipam.Range{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway}
		if o.IP.IsValid() && !n.Subnet.Contains(o.IP) {
			return fmt.Errorf("requested IP %s is not in subnet %s of network %s: %w", o.IP, n.Subnet, n.Name, errdefs.ErrInvalidArgument)
		}
		// The allocation is keyed by container ID; a crash before the
		// endpoint record is saved is healed by Reclaim/ReleaseAll, which
		// release allocations that have no record.
		ip, err := m.ipam.Allocate(ctx, n.ID, r, containerID, o.IP)
		if err != nil {
			return fmt.Errorf("network %s: %w", n.Name, err)
		}
		hook("allocated")
		ports, err := m.resolvePorts(st, o.Ports, ip)
		if err != nil {
			return errors.Join(err, m.ipam.Release(ctx, n.ID, containerID))
		}
		if mac == nil {
			mac = bridge.MACFromIP(ip)
		}
		e := &epRecord{Endpoint: Endpoint{
			NetworkID: n.ID, NetworkName: n.Name, ContainerID: containerID, ContainerName: o.ContainerName,
			NetnsPath: netnsPath, IfName: st.nextIfName(containerID), HostIfName: bridge.HostVethName(containerID, n.ID),
			Address: netip.PrefixFrom(ip, n.Subnet.Bits()), Gateway: n.Gateway, MAC: mac.String(),
			Aliases: slices.Clone(o.Aliases), Ports: ports,
		}}
		for _, p := range ports {
			e.Rules = append(e.Rules, m.fw.PortRules(n.Bridge, p.HostIP, p.HostPort, p.Proto, ip, p.ContainerPort)...)
		}
		st.Endpoints[key] = e
		if err := save(); err != nil {
			delete(st.Endpoints, key)
			return errors.Join(err, m.ipam.Release(ctx, n.ID, containerID))
		}
		hook("recorded")
		veth := bridge.Veth{
			HostName: e.HostIfName, Bridge: n.Bridge, NetnsPath: netnsPath, IfName: e.IfName,
			Address: e.Address, Gateway: n.Gateway, MAC: mac, DefaultRoute: !n.Internal,
			MTU: atoi(n.Options[optMTU]),
		}
		// Fast path: a present bridge means the network was plumbed; a
		// missing one (reboot, manual deletion) gets bridge and rules
		// again. bridge.Attach looks the bridge up anyway, so its
		// absence is learnt from Attach's error, not from a lookup more.
		err = bridge.Attach(veth)
		if errdefs.IsNotFound(err) && !bridge.Exists(n.Bridge) {
			if err = m.plumb(ctx, n); err == nil {
				err = bridge.Attach(veth)
			}
		}
		hook("veth")
		for _, r := range e.Rules {
			if err != nil {
				break
			}
			err = m.fw.Add(ctx, r)
		}
		hook("rules")
		if err != nil {
			return errors.Join(fmt.Errorf("attach %.12s to %s: %w", containerID, n.Name, err), m.teardown(ctx, st, e), save())
		}
		e.Ready = true
		out = e.Endpoint
		return nil
	})
	return out, err
}

func atoi(s string) int { v, _ := strconv.Atoi(s); return v }

// nextIfName returns the lowest ethN not used by the container's endpoints.
func (st *state) nextIfName(containerID string) string {
	used := map[string]bool{}
	for _, e := range st.Endpoints {
		if e.ContainerID == containerID {
			used[e.IfName] = true
		}
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// teardown undoes an endpoint in reverse order and forgets it. Every step
// is idempotent, so teardown of a half-created endpoint is safe.
func (m *Manager) teardown(ctx context.Context, st *state, e *epRecord) error {
	return m.teardownMode(ctx, st, e, "")
}

// teardownMode is teardown; when e lives in the namespace droppedNS,
// which the caller unmounts right afterwards, its veth is only taken off
// the bridge: the kernel deletes the pair with the namespace (see
// ReleaseNamespace).
func (m *Manager) teardownMode(ctx context.Context, st *state, e *epRecord, droppedNS string) error {
	if n := st.Networks[e.NetworkID]; n != nil && n.usesDriver() {
		return m.teardownWithDriver(ctx, st, n, e)
	}
	var errs []error
	for _, r := range slices.Backward(e.Rules) {
		errs = append(errs, m.fw.Delete(ctx, r))
	}
	if droppedNS != "" && e.NetnsPath == droppedNS {
		errs = append(errs, bridge.Unbridge(e.HostIfName))
	} else {
		errs = append(errs, bridge.Detach(e.HostIfName))
	}
	errs = append(errs, m.ipam.Release(ctx, e.NetworkID, e.ContainerID))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("detach %.12s from %s: %w", e.ContainerID, e.NetworkName, err)
	}
	delete(st.Endpoints, epKey(e.ContainerID, e.NetworkID))
	return nil
}

// Detach disconnects a container from one network: it removes the
// endpoint's port rules and veth pair and frees its address and host ports.
// Idempotent: detaching a container that is not attached returns nil.
// errdefs.ErrNotFound only for an unknown network.
func (m *Manager) Detach(ctx context.Context, network, containerID string) error {
	return m.txn(ctx, func(st *state, save func() error) error {
		n, err := st.find(network)
		if err != nil {
			return err
		}
		if e, ok := st.Endpoints[epKey(containerID, n.ID)]; ok {
			if err := m.teardown(ctx, st, e); err != nil {
				return errors.Join(err, save())
			}
		}
		return m.ipam.Release(ctx, n.ID, containerID)
	})
}

// ReleaseAll detaches a container from every network and frees any address
// it still holds (also one allocated by a crashed Attach). Idempotent; this
// is what crash recovery calls. It deletes each veth pair, which takes the
// kernel some 20 ms per pair (unregistering a device waits for RCU grace
// periods); ReleaseNamespace avoids that when the namespace goes too.
func (m *Manager) ReleaseAll(ctx context.Context, containerID string) error {
	return m.txn(ctx, func(st *state, save func() error) error {
		return m.releaseAll(ctx, st, save, func(id string) bool { return id == containerID }, "")
	})
}

// ReleaseNamespace is ReleaseAll for a container that is done with its
// network namespace, bound at netnsPath (see netns.New), followed by
// netns.Remove(netnsPath): what stopping or removing a container calls.
//
// The veth pairs of the container's endpoints in that namespace are not
// deleted one by one but only taken off their bridges (so the endpoint
// carries no traffic and the address can be handed out again at once);
// unmounting the namespace then drops its last reference, and the kernel
// deletes the pairs with it, in the background, without the caller
// waiting for the RCU grace periods a synchronous delete waits for. Should
// something else still hold the namespace (a process joined to it), the
// pair goes when that holder does; a later Attach of the same container
// deletes a pair still there (see bridge.Attach). Rules, addresses and
// records go exactly as in ReleaseAll, before the namespace is unmounted,
// so a crash in between leaves the namespace for the next call to drop.
// Idempotent; a missing or unmounted netnsPath is not an error.
func (m *Manager) ReleaseNamespace(ctx context.Context, containerID, netnsPath string) error {
	err := m.txn(ctx, func(st *state, save func() error) error {
		return m.releaseAll(ctx, st, save, func(id string) bool { return id == containerID }, netnsPath)
	})
	if err != nil {
		return err
	}
	return netns.Remove(netnsPath)
}

// Reclaim releases everything held by containers not in live (container
// IDs of containers that exist and may be running), and every endpoint left
// half-created by a crashed Attach. It also re-creates lost bridges/rules of
// networks that still have endpoints. Idempotent; call it at engine start
// or whenever a crash is suspected.
func (m *Manager) Reclaim(ctx context.Context, live []string) error {
	alive := map[string]bool{}
	for _, id := range live {
		alive[id] = true
	}
	return m.txn(ctx, func(st *state, save func() error) error {
		for _, e := range st.Endpoints {
			if !e.Ready && alive[e.ContainerID] {
				if err := m.teardown(ctx, st, e); err != nil {
					return errors.Join(err, save())
				}
			}
		}
		return m.releaseAll(ctx, st, save, func(id string) bool { return !alive[id] }, "")
	})
}

// releaseAll tears down the endpoints of dead containers (see teardownMode
// for droppedNS) and releases addresses nobody live owns.
func (m *Manager) releaseAll(ctx context.Context, st *state, save func() error, dead func(string) bool, droppedNS string) error {
	for _, e := range st.Endpoints {
		if dead(e.ContainerID) {
			if err := m.teardownMode(ctx, st, e, droppedNS); err != nil {
				return errors.Join(err, save())
			}
		}
	}
	// Addresses without an endpoint record (crash between allocation and
	// record) are owned by nobody live.
	for id, n := range st.Networks {
		if n.usesDriver() {
			continue // no berth IPAM
		}
		allocs, err := m.ipam.Allocations(ctx, id)
		if err != nil {
			return err
		}
		for _, owner := range allocs {
			if _, ok := st.Endpoints[epKey(owner, id)]; !ok && dead(owner) {
				if err := m.ipam.Release(ctx, id, owner); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Endpoints returns the container's endpoints, ordered by interface name.
func (m *Manager) Endpoints(ctx context.Context, containerID string) ([]Endpoint, error) {
	var out []Endpoint
	err := m.read(ctx, func(st *state) error {
		for _, e := range st.Endpoints {
			if e.ContainerID == containerID {
				out = append(out, e.Endpoint)
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.IfName, b.IfName) })
	return out, err
}

// RenameContainer records a container's new name on its endpoints
// (Docker's rename: its peers then resolve the new name, not the old)
// and returns the names of the networks it is on; none is not an error.
func (m *Manager) RenameContainer(ctx context.Context, containerID, name string) ([]string, error) {
	var nets []string
	err := m.txn(ctx, func(st *state, save func() error) error {
		for _, e := range st.Endpoints {
			if e.ContainerID == containerID {
				e.ContainerName = name
				nets = append(nets, e.NetworkName)
			}
		}
		if len(nets) == 0 {
			return nil
		}
		return save()
	})
	return nets, err
}
