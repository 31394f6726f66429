// Package netops is the engine's container networking: the network a
// container asks for at create, its namespace, endpoints and /etc files
// at start and their release at stop, and the `network` verbs (create,
// ls, inspect, rm, prune, connect, disconnect) with `port`. Package
// network does the plumbing (bridges, IPAM, firewall); this package ties
// it to container records. It does not import package engine: the engine
// hands it what it needs in a Networking value.
package netops

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/internal/flock"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/network/netns"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Networking is what the network operations need of the engine. Every
// field must be set.
type Networking struct {
	// Root and RunRoot are the engine's directories: the generated /etc
	// files live in ROOT/containers/ID, the network state in
	// ROOT/network, namespaces in RUNROOT/netns.
	Root, RunRoot string
	// DB holds the container records.
	DB *state.DB
	// Manager returns the network manager (opened once by the engine).
	Manager func() (*network.Manager, error)
	// Container returns the record of container ref (ID, name or unique
	// prefix) reconciled with the runtime; errdefs.ErrNotFound if none.
	Container func(ctx context.Context, ref string) (record.Container, error)
	// Reconcile reconciles every container record, which tears down the
	// network of each container that crashed.
	Reconcile func(ctx context.Context) error
}

// NetnsPath is where the network namespace of container id is bound.
func (nw *Networking) NetnsPath(id string) string {
	return filepath.Join(nw.RunRoot, "netns", id)
}

// EtcFile is where the container's generated /etc/NAME lives on the host.
func (nw *Networking) EtcFile(id, name string) string {
	return filepath.Join(nw.Root, "containers", id, name)
}

// IsBridgeMode reports whether mode attaches to a bridge network.
func IsBridgeMode(mode string) bool {
	return mode != "none" && mode != "host" && !strings.HasPrefix(mode, "container:")
}

// Resolve validates req at create time and returns the settings to
// store. Unknown networks give errdefs.ErrNotFound; bad ports, IPs or
// options errdefs.ErrInvalidArgument.
func (nw *Networking) Resolve(ctx context.Context, req record.NetworkRequest, exposed map[string]struct{}) (record.NetworkSettings, error) {
	s := req.NetworkSettings
	if s.Mode == "" || s.Mode == "default" {
		s.Mode = "bridge"
	}
	s.Exposed = nil
	for _, p := range req.Expose {
		exposed[p] = struct{}{}
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		if !slices.Contains(s.Exposed, p) {
			s.Exposed = append(s.Exposed, p)
		}
	}
	if !IsBridgeMode(s.Mode) {
		if strings.HasPrefix(s.Mode, "container:") {
			if err := containerModeConflicts(req); err != nil {
				return s, err
			}
		}
		if s.IP != "" {
			return s, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
		}
		if len(s.Aliases) > 0 {
			return s, fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
		}
		if strings.HasPrefix(s.Mode, "container:") {
			if _, err := nw.Container(ctx, strings.TrimPrefix(s.Mode, "container:")); err != nil {
				return s, err
			}
		}
		return s, nil // host and none: published ports are discarded, as Docker does
	}
	if s.IP != "" {
		if _, err := netip.ParseAddr(s.IP); err != nil {
			return s, fmt.Errorf("invalid IPv4 address: %s: %w", s.IP, errdefs.ErrInvalidArgument)
		}
		if s.Mode == "bridge" {
			return s, fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
		}
	}
	if len(s.Aliases) > 0 && s.Mode == "bridge" {
		return s, fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	}
	ports, err := network.ParsePortSpecs(req.Publish, exposed, req.PublishAll)
	if err != nil {
		return s, err
	}
	s.Ports = ports
	if s.Mode != "bridge" {
		m, err := nw.Manager()
		if err != nil {
			return s, err
		}
		n, err := m.Inspect(ctx, s.Mode)
		if err != nil {
			return s, err
		}
		if n.Default {
			return s, fmt.Errorf("--network %s names the default network: use --network bridge: %w", s.Mode, errdefs.ErrInvalidArgument)
		}
		s.Mode = n.Name
		if n.Driver != "bridge" && len(s.Ports) > 0 {
			// Ports would need the driver's cooperation (CNI's
			// portMappings capability); its configuration chooses addresses.
			return s, fmt.Errorf("publishing ports is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
		}
		if err := checkRequestedIP(n, s.IP, ""); err != nil {
			return s, err
		}
	}
	return s, nil
}

// containerModeConflicts refuses, for --network container:X, the options
// that would configure the network X owns, with Docker's messages
// (moby's runconfig.validateNetContainerMode, in its order; Docker's
// reference documents --dns-search and --dns-option as invalid there too).
// --hostname is checked by Hostname. errdefs.ErrInvalidArgument.
func containerModeConflicts(req record.NetworkRequest) error {
	msg := ""
	switch {
	case strings.TrimPrefix(req.Mode, "container:") == "":
		msg = "Invalid network mode: invalid container format container:<name|id>"
	case len(req.DNS) > 0 || len(req.DNSSearch) > 0 || len(req.DNSOptions) > 0:
		msg = "conflicting options: dns and the network mode"
	case len(req.ExtraHosts) > 0:
		msg = "conflicting options: custom host-to-IP mapping and the network mode"
	case len(req.Publish) > 0 || req.PublishAll || len(req.Ports) > 0:
		msg = "conflicting options: port publishing and the container type network mode"
	case len(req.Expose) > 0:
		msg = "conflicting options: port exposing and the container type network mode"
	default:
		return nil
	}
	return fmt.Errorf("%s: %w", msg, errdefs.ErrInvalidArgument)
}

// Hostname returns the hostname of a container being created with
// network mode `mode`, -h value `requested` and short ID shortID, by
// Docker's rules: with --network container:X, X's hostname (and a
// requested one is refused: "conflicting options: hostname and the
// network mode", errdefs.ErrInvalidArgument; an unknown X is
// errdefs.ErrNotFound); else the requested one; else with --network host
// the host's hostname; else shortID.
func (nw *Networking) Hostname(ctx context.Context, mode, requested, shortID string) (string, error) {
	if ref, ok := strings.CutPrefix(mode, "container:"); ok {
		if requested != "" {
			return "", fmt.Errorf("conflicting options: hostname and the network mode: %w", errdefs.ErrInvalidArgument)
		}
		other, err := nw.Container(ctx, ref)
		if err != nil {
			return "", err
		}
		return other.Run.Hostname, nil
	}
	if requested != "" {
		return requested, nil
	}
	if mode == "host" {
		if h, err := os.Hostname(); err == nil && h != "" {
			return h, nil
		}
	}
	return shortID, nil
}

// checkRequestedIP validates --ip on network n before anything is made:
// errdefs.ErrInvalidArgument when it is not an IPv4 address of n's subnet
// usable by a container, errdefs.ErrConflict when another container (not
// self) holds it now. Allocation at start re-checks under the lock.
func checkRequestedIP(n network.Network, ip, self string) error {
	if ip == "" {
		return nil
	}
	if n.Driver != "bridge" {
		return fmt.Errorf("--ip is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return fmt.Errorf("invalid IPv4 address: %s: %w", ip, errdefs.ErrInvalidArgument)
	}
	if !n.Subnet.Contains(a) {
		return fmt.Errorf("invalid address %s: it does not belong to any of network %s's subnets (%s): %w", ip, n.Name, n.Subnet, errdefs.ErrInvalidArgument)
	}
	if a == n.Subnet.Masked().Addr() || a == n.Gateway || !n.Subnet.Contains(a.Next()) {
		return fmt.Errorf("address %s is the network, gateway or broadcast address of network %s: %w", ip, n.Name, errdefs.ErrInvalidArgument)
	}
	for _, ep := range n.Endpoints {
		if ep.Address.Addr() == a && ep.ContainerID != self {
			return fmt.Errorf("address %s is already in use on network %s (by %s): %w", ip, n.Name, ep.ContainerName, errdefs.ErrConflict)
		}
	}
	return nil
}

// Setup prepares the container's network before the OCI runtime
// runs: its namespace (joined by path), endpoints (Mode's network, then
// the networks joined with `network connect` while it was stopped, as
// eth1, eth2, ...) and published ports, and the /etc/hosts,
// /etc/resolv.conf and /etc/hostname files bound into it (with
// --network container:X, X's own files, as Docker). It returns the
// runtime's NetworkNamespace value and the extra mounts. On error the
// caller's Teardown undoes whatever was made.
func (nw *Networking) Setup(ctx context.Context, c record.Container) (string, []specs.Mount, error) {
	mode := c.Net.Mode
	nsSpec := ""
	var addrs []netip.Addr
	var userNets []string
	var gateway netip.Addr // of the first network, for host-gateway
	switch {
	case mode == "host":
		nsSpec = "host"
	case mode == "none":
		// The OCI runtime makes a fresh namespace (its loopback up) when
		// the spec names no path: nothing to make or tear down here.
		nsSpec = ""
	case strings.HasPrefix(mode, "container:"):
		other, err := nw.Container(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", nil, err
		}
		if other.State.Status != record.StatusRunning {
			return "", nil, fmt.Errorf("cannot join network of a non running container: %s: %w", other.ShortID(), errdefs.ErrConflict)
		}
		nsSpec = nw.NetnsPath(other.ID)
		if _, err := os.Stat(nsSpec); err != nil {
			nsSpec = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
		}
		mounts, err := nw.sharedEtcFiles(ctx, other)
		return nsSpec, mounts, err
	default:
		nsSpec = nw.NetnsPath(c.ID)
		netns.Remove(nsSpec) // left by a crash
		if err := netns.New(nsSpec); err != nil {
			return "", nil, err
		}
		probe.Crash("after-netns")
		m, err := nw.Manager()
		if err != nil {
			return "", nil, err
		}
		atts := c.Net.Extra
		if !c.Net.PrimaryDetached {
			atts = append([]record.Attachment{{Network: mode, IP: c.Net.IP, Aliases: c.Net.Aliases}}, atts...)
		}
		for i, a := range atts {
			if a.Network == network.DefaultNetworkName {
				if _, err := m.EnsureDefault(ctx); err != nil {
					return "", nil, err
				}
			}
			// The published ports are the container's, not an endpoint's
			// (HostConfig.PortBindings): they go on its first network,
			// whichever that is after connects and disconnects.
			var ports []network.PortBinding
			if i == 0 {
				ports = c.Net.Ports
			}
			endAttach := probe.Trace("network attach " + a.Network)
			ep, err := nw.attach(ctx, m, c, nsSpec, a, ports)
			endAttach()
			if err != nil {
				return "", nil, err
			}
			if i == 0 {
				nw.recordPublished(ctx, c, ep.Ports)
			}
			addrs = append(addrs, ep.Address.Addr())
			if i == 0 {
				gateway = ep.Gateway
			}
			if ep.NetworkName != network.DefaultNetworkName {
				userNets = append(userNets, ep.NetworkName)
			}
		}
		probe.Crash("after-attach")
	}
	mounts, err := nw.writeEtcFiles(ctx, c, addrs, gateway)
	if err != nil {
		return "", nil, err
	}
	probe.Crash("after-etc")
	if len(userNets) > 0 {
		endRefresh := probe.Trace("network refresh hosts")
		nw.refreshHosts(ctx, userNets...)
		endRefresh()
	}
	return nsSpec, mounts, nil
}

// attach connects c (its namespace at nsPath) to a.Network. When the
// network has no address left, it reclaims what crashed or exited
// containers still hold and tries once more.
func (nw *Networking) attach(ctx context.Context, m *network.Manager, c record.Container, nsPath string, a record.Attachment, ports []network.PortBinding) (network.Endpoint, error) {
	opts := network.AttachOptions{ContainerName: c.Name, Aliases: a.Aliases, Ports: ports}
	if a.IP != "" {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			return network.Endpoint{}, fmt.Errorf("invalid IPv4 address: %s: %w", a.IP, errdefs.ErrInvalidArgument)
		}
		opts.IP = ip
	}
	ep, err := m.Attach(ctx, a.Network, c.ID, nsPath, opts)
	if errdefs.IsUnavailable(err) && strings.Contains(err.Error(), "no available IPv4 addresses") {
		if nw.reclaim(ctx) == nil {
			ep, err = m.Attach(ctx, a.Network, c.ID, nsPath, opts)
		}
	}
	return ep, err
}

// recordPublished stores the host ports Attach resolved (random ones from
// -P or -p 80) in the record, for ps; nothing is written when every port
// was fixed.
func (nw *Networking) recordPublished(ctx context.Context, c record.Container, resolved []network.PortBinding) {
	want := resolved
	if slices.Equal(resolved, c.Net.Ports) {
		want = nil
	}
	if slices.Equal(want, c.Net.Published) {
		return
	}
	record.Update(ctx, nw.DB, c.ID, func(cur *record.Container) error {
		cur.Net.Published = want
		return nil
	})
}

// writeEtcFiles renders /etc/hosts (own addresses and --add-host; on a
// user-defined network refreshHosts adds every peer's name and aliases),
// /etc/resolv.conf and /etc/hostname, and returns their bind mounts.
// gateway is the gateway of the container's first network, which
// --add-host NAME:host-gateway resolves to (the default network's when
// the container has none). With --network host, hosts is a copy of the
// host's plus the --add-host entries, and resolv.conf a copy of the
// host's unless --dns* options are given, as Docker does.
func (nw *Networking) writeEtcFiles(ctx context.Context, c record.Container, addrs []netip.Addr, gateway netip.Addr) ([]specs.Mount, error) {
	hc := hostsConfig{Hostname: c.Run.Hostname, ExtraHosts: c.Net.ExtraHosts}
	if slices.ContainsFunc(hc.ExtraHosts, isHostGateway) {
		if !gateway.IsValid() {
			m, err := nw.Manager()
			if err != nil {
				return nil, err
			}
			if gateway, err = m.DefaultGateway(ctx); err != nil {
				return nil, fmt.Errorf("host-gateway: %w", err)
			}
		}
		hc.HostGateway = gateway.String()
	}
	hostMode := c.Net.Mode == "host"
	var base []byte
	if hostMode {
		base, _ = os.ReadFile("/etc/hosts")
		if base == nil {
			base = []byte{}
		}
	}
	hosts, err := nw.renderHosts(hc, c.ID, addrs, nil, base)
	if err != nil {
		return nil, err
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	resolv := hostResolv
	if !hostMode || len(c.Net.DNS)+len(c.Net.DNSSearch)+len(c.Net.DNSOptions) > 0 {
		rc := network.ResolvConfig{Host: hostResolv, Search: c.Net.DNSSearch, Options: c.Net.DNSOptions}
		for _, d := range c.Net.DNS {
			a, err := netip.ParseAddr(d)
			if err != nil {
				return nil, fmt.Errorf("%s is not an ip address: %w", d, errdefs.ErrInvalidArgument)
			}
			rc.DNS = append(rc.DNS, a)
		}
		resolv, _ = network.ResolvConf(rc)
	}
	// hosts.json keeps what refreshHosts needs to re-render hosts; written
	// before hosts, so a member whose hosts.json is missing has no hosts
	// file to refresh yet (its start renders it). A host-mode container
	// is on no network, so never refreshed.
	b, _ := json.Marshal(hc)
	if err := writeInPlace(nw.EtcFile(c.ID, "hosts.json"), b); err != nil {
		return nil, err
	}
	files := map[string][]byte{"hosts": hosts, "resolv.conf": resolv, "hostname": []byte(c.Run.Hostname + "\n")}
	var mounts []specs.Mount
	for _, name := range etcNames {
		if err := writeInPlace(nw.EtcFile(c.ID, name), files[name]); err != nil {
			return nil, err
		}
		mounts = append(mounts, etcMount(name, nw.EtcFile(c.ID, name)))
	}
	return mounts, nil
}

// etcNames are the /etc files a container's network gives it.
var etcNames = []string{"hostname", "hosts", "resolv.conf"}

func etcMount(name, source string) specs.Mount {
	return specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: source, Options: []string{"rbind", "rprivate"}}
}

// sharedEtcFiles returns the bind mounts of the /etc files of other, whose
// network a --network container:OTHER container joins (following other's
// own container: mode to the owner of the namespace), as Docker gives such
// a container the files of the one it joins.
func (nw *Networking) sharedEtcFiles(ctx context.Context, other record.Container) ([]specs.Mount, error) {
	for range 16 {
		ref, ok := strings.CutPrefix(other.Net.Mode, "container:")
		if !ok {
			break
		}
		next, err := nw.Container(ctx, ref)
		if err != nil {
			return nil, err
		}
		other = next
	}
	var mounts []specs.Mount
	for _, name := range etcNames {
		src := nw.EtcFile(other.ID, name)
		if _, err := os.Stat(src); err != nil {
			if other.Net.Mode != "host" {
				continue
			}
			src = "/etc/" + name // a host-mode container started by an older berth
		}
		mounts = append(mounts, etcMount(name, src))
	}
	return mounts, nil
}

func isHostGateway(h string) bool {
	return strings.HasSuffix(h, ":host-gateway") || strings.HasSuffix(h, "=host-gateway")
}

// renderHosts renders the hosts file of container id from hc, its own
// addresses and its peers on user-defined networks; base, when not nil,
// replaces the standard entries (see network.HostsConfig.Base).
func (nw *Networking) renderHosts(hc hostsConfig, id string, addrs []netip.Addr, peers []network.Endpoint, base []byte) ([]byte, error) {
	extra := slices.Clone(hc.ExtraHosts)
	for i, h := range extra {
		if isHostGateway(h) {
			extra[i] = strings.TrimSuffix(h, "host-gateway") + hc.HostGateway
		}
	}
	hosts, err := network.Hosts(network.HostsConfig{Hostname: hc.Hostname, Addresses: addrs, ExtraHosts: extra, Base: base})
	if err != nil {
		return nil, err
	}
	// Peers on a user-defined network, by container name and aliases: the
	// hosts file of every member is rewritten when one joins or leaves.
	for _, p := range peers {
		if p.ContainerID == id || !p.Address.IsValid() {
			continue
		}
		names := append([]string{p.ContainerName}, p.Aliases...)
		hosts = fmt.Appendf(hosts, "%s\t%s\n", p.Address.Addr(), strings.Join(names, " "))
	}
	return hosts, nil
}

// writeInPlace replaces a file's content without replacing the file: a
// bind mount of it keeps pointing at the same inode.
func writeInPlace(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// refreshHosts rewrites the hosts file of every container on the given
// user-defined networks, so that each lists the names and aliases of all
// its peers on all its user-defined networks, whoever joined first. It
// holds ROOT/network/hosts.lock, and reads the endpoints under it, so the
// last writer always writes from the newest membership; a failure only
// leaves a hosts file stale until the next join or leave.
func (nw *Networking) refreshHosts(ctx context.Context, netNames ...string) {
	nw.refreshHostsOf(ctx, nil, netNames...)
}

// refreshHostsOf is refreshHosts that also rewrites the hosts files of the
// containers ids (e.g. one that just left those networks).
func (nw *Networking) refreshHostsOf(ctx context.Context, ids []string, netNames ...string) {
	m, err := nw.Manager()
	if err != nil {
		return
	}
	// Our change (endpoint and own hosts.json) is on disk before this
	// instant; a refresh that read the endpoints after it covered us.
	committed := time.Now().UnixNano()
	l, err := flock.Acquire(ctx, filepath.Join(nw.Root, "network", "hosts.lock"), true)
	if err != nil {
		return
	}
	defer l.Unlock()
	stampPath := filepath.Join(nw.Root, "network", "hosts.stamp")
	stamps := map[string]int64{} // network → when its last refresh read the endpoints
	if b, err := os.ReadFile(stampPath); err == nil {
		json.Unmarshal(b, &stamps)
	}
	if len(ids) == 0 && !slices.ContainsFunc(netNames, func(n string) bool { return stamps[n] <= committed }) {
		return // coalesced: under many concurrent starts, most refreshes end here
	}
	readAt := time.Now().UnixNano()
	nets, err := m.List(ctx)
	if err != nil {
		return
	}
	defer func() {
		for _, n := range netNames {
			stamps[n] = readAt
		}
		for n := range stamps {
			if !slices.ContainsFunc(nets, func(x network.Network) bool { return x.Name == n }) {
				delete(stamps, n)
			}
		}
		if b, err := json.Marshal(stamps); err == nil {
			writeInPlace(stampPath, b)
		}
	}()
	byContainer := map[string][]network.Endpoint{} // container → its endpoints
	byNet := map[string][]network.Endpoint{}       // network name → endpoints
	for _, n := range nets {
		byNet[n.Name] = n.Endpoints
		for _, ep := range n.Endpoints {
			byContainer[ep.ContainerID] = append(byContainer[ep.ContainerID], ep)
		}
	}
	members := map[string]bool{}
	for _, id := range ids {
		members[id] = true
	}
	for _, name := range netNames {
		for _, ep := range byNet[name] {
			members[ep.ContainerID] = true
		}
	}
	if len(members) == 0 {
		return
	}
	// What renderHosts needs of each member comes from its hosts.json,
	// not from the metadata store: under many concurrent starts, waiting
	// for the store's lock while holding hosts.lock serialised them all.
	recs := map[string]hostsConfig{}
	for id := range members {
		var hc hostsConfig
		if b, err := os.ReadFile(nw.EtcFile(id, "hosts.json")); err == nil && json.Unmarshal(b, &hc) == nil {
			recs[id] = hc
		}
	}
	defaults := map[string]bool{}
	for _, n := range nets {
		defaults[n.Name] = n.Default
	}
	for id, hc := range recs {
		var addrs []netip.Addr
		var peers []network.Endpoint
		seen := map[string]bool{}
		for _, own := range byContainer[id] {
			addrs = append(addrs, own.Address.Addr())
			if defaults[own.NetworkName] || seen[own.NetworkName] {
				continue
			}
			seen[own.NetworkName] = true
			peers = append(peers, byNet[own.NetworkName]...)
		}
		path := nw.EtcFile(id, "hosts")
		if hosts, err := nw.renderHosts(hc, id, addrs, peers, nil); err == nil {
			writeInPlace(path, hosts)
		}
	}
}

// hostsConfig is a container's hosts.json: the inputs of its hosts file
// besides the endpoints.
type hostsConfig struct {
	Hostname   string   `json:"hostname"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// HostGateway is what --add-host NAME:host-gateway resolves to.
	HostGateway string `json:"hostGateway,omitempty"`
}

// Teardown releases the container's endpoints, ports and network
// namespace; idempotent.
func (nw *Networking) Teardown(ctx context.Context, c record.Container) error {
	if !IsBridgeMode(c.Net.Mode) && c.Net.Mode != "none" {
		return nil
	}
	defer probe.Trace("network teardown")()
	var nets []string
	var err error
	if c.Net.Mode != "none" {
		m, merr := nw.Manager()
		if merr != nil {
			return merr
		}
		if eps, eerr := m.Endpoints(ctx, c.ID); eerr == nil {
			for _, ep := range eps {
				nets = append(nets, ep.NetworkName)
			}
		}
		// Releasing with the namespace lets the kernel delete the veths
		// with it, in the background (see network.Manager.ReleaseNamespace).
		err = m.ReleaseNamespace(ctx, c.ID, nw.NetnsPath(c.ID))
	}
	if rerr := netns.Remove(nw.NetnsPath(c.ID)); rerr != nil && err == nil {
		err = rerr
	}
	var user []string
	for _, n := range nets {
		if n != network.DefaultNetworkName {
			user = append(user, n)
		}
	}
	if len(user) > 0 {
		nw.refreshHosts(ctx, user...)
	}
	return err
}
