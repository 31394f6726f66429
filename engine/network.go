package engine

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

	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/network/bridge"
	"github.com/berthproject/berth/network/netns"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// NetworkSettings are a container's network requests, as `run` takes them.
type NetworkSettings struct {
	// Mode is Docker's --network: "bridge" (the default network), "none",
	// "host", "container:NAME", or the name of a user-defined network.
	Mode    string   `json:"mode"`
	IP      string   `json:"ip,omitempty"`      // --ip on Mode's network
	Aliases []string `json:"aliases,omitempty"` // --network-alias
	// Ports are the published ports, resolved from -p/-P at create.
	Ports      []network.PortBinding `json:"ports,omitempty"`
	DNS        []string              `json:"dns,omitempty"`
	DNSSearch  []string              `json:"dnsSearch,omitempty"`
	DNSOptions []string              `json:"dnsOptions,omitempty"`
	ExtraHosts []string              `json:"extraHosts,omitempty"`
	// Published are the bindings of Ports as the last start resolved them
	// (random host ports filled in), when they differ from Ports.
	Published []network.PortBinding `json:"published,omitempty"`
	// Extra are the networks joined with `network connect`, attached at
	// every start after Mode's network, in this order (eth1, eth2, ...).
	Extra []Attachment `json:"extra,omitempty"`
	// PrimaryDetached is set by `network disconnect` from Mode's network:
	// later starts no longer attach to it.
	PrimaryDetached bool `json:"primaryDetached,omitempty"`
}

// Attachment is one network a container joined with `network connect`.
type Attachment struct {
	Network string   `json:"network"`           // name, as given to connect
	IP      string   `json:"ip,omitempty"`      // --ip
	Aliases []string `json:"aliases,omitempty"` // --alias
}

// NetworkRequest is what CreateOptions carries for the network: the
// settings plus the raw -p/-P/--expose flags.
type NetworkRequest struct {
	NetworkSettings
	Publish    []string // -p specs
	PublishAll bool     // -P
	Expose     []string // --expose
}

// Networks opens the network manager (state under ROOT/network).
func (e *Engine) Networks() (*network.Manager, error) {
	e.netOnce.Do(func() {
		e.net, e.netErr = network.Open(filepath.Join(e.opts.Root, "network"), e.opts.Network)
	})
	return e.net, e.netErr
}

func (e *Engine) netnsPath(id string) string {
	return filepath.Join(e.opts.RunRoot, "netns", id)
}

// isBridgeMode reports whether mode attaches to a bridge network.
func isBridgeMode(mode string) bool {
	return mode != "none" && mode != "host" && !strings.HasPrefix(mode, "container:")
}

// resolveNetwork validates req at create time and returns the settings to
// store. Unknown networks give errdefs.ErrNotFound; bad ports, IPs or
// options errdefs.ErrInvalidArgument.
func (e *Engine) resolveNetwork(ctx context.Context, req NetworkRequest, exposed map[string]struct{}) (NetworkSettings, error) {
	s := req.NetworkSettings
	if s.Mode == "" || s.Mode == "default" {
		s.Mode = "bridge"
	}
	for _, p := range req.Expose {
		exposed[p] = struct{}{}
	}
	if !isBridgeMode(s.Mode) {
		if s.IP != "" || len(s.Aliases) > 0 {
			return s, fmt.Errorf("--ip and --network-alias need a bridge network, not --network %s: %w", s.Mode, errdefs.ErrInvalidArgument)
		}
		if strings.HasPrefix(s.Mode, "container:") {
			if _, err := e.Container(ctx, strings.TrimPrefix(s.Mode, "container:")); err != nil {
				return s, err
			}
		}
		return s, nil // published ports are discarded, as Docker does
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
		m, err := e.Networks()
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
		if err := checkRequestedIP(n, s.IP, ""); err != nil {
			return s, err
		}
	}
	return s, nil
}

// checkRequestedIP validates --ip on network n before anything is made:
// errdefs.ErrInvalidArgument when it is not an IPv4 address of n's subnet
// usable by a container, errdefs.ErrConflict when another container (not
// self) holds it now. Allocation at start re-checks under the lock.
func checkRequestedIP(n network.Network, ip, self string) error {
	if ip == "" {
		return nil
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

// setupNetwork prepares the container's network before the OCI runtime
// runs: its namespace (joined by path), endpoints (Mode's network, then
// the networks joined with `network connect` while it was stopped, as
// eth1, eth2, ...) and published ports, and the /etc/hosts,
// /etc/resolv.conf and /etc/hostname files bound into it. It returns the
// runtime's NetworkNamespace value and the extra mounts. On error the
// caller's teardownNetwork undoes whatever was made.
func (e *Engine) setupNetwork(ctx context.Context, c Container) (string, []specs.Mount, error) {
	mode := c.Net.Mode
	nsSpec := ""
	var addrs []netip.Addr
	var userNets []string
	switch {
	case mode == "host":
		nsSpec = "host"
	case strings.HasPrefix(mode, "container:"):
		other, err := e.Container(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return "", nil, err
		}
		if other.State.Status != StatusRunning {
			return "", nil, fmt.Errorf("cannot join network of a non running container: %s: %w", other.ShortID(), errdefs.ErrConflict)
		}
		nsSpec = e.netnsPath(other.ID)
		if _, err := os.Stat(nsSpec); err != nil {
			nsSpec = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
		}
	default:
		nsSpec = e.netnsPath(c.ID)
		netns.Remove(nsSpec) // left by a crash
		if err := netns.New(nsSpec); err != nil {
			return "", nil, err
		}
		crashPoint("after-netns")
		if mode == "none" {
			if err := bridge.LoopbackUp(nsSpec); err != nil {
				return "", nil, err
			}
			break
		}
		m, err := e.Networks()
		if err != nil {
			return "", nil, err
		}
		atts := c.Net.Extra
		if !c.Net.PrimaryDetached {
			atts = append([]Attachment{{Network: mode, IP: c.Net.IP, Aliases: c.Net.Aliases}}, atts...)
		}
		for i, a := range atts {
			if a.Network == network.DefaultNetworkName {
				if _, err := m.EnsureDefault(ctx); err != nil {
					return "", nil, err
				}
			}
			var ports []network.PortBinding
			if i == 0 && !c.Net.PrimaryDetached {
				ports = c.Net.Ports
			}
			endAttach := trace("network attach " + a.Network)
			ep, err := e.attach(ctx, m, c, nsSpec, a, ports)
			endAttach()
			if err != nil {
				return "", nil, err
			}
			if i == 0 && !c.Net.PrimaryDetached {
				e.recordPublished(ctx, c, ep.Ports)
			}
			addrs = append(addrs, ep.Address.Addr())
			if ep.NetworkName != network.DefaultNetworkName {
				userNets = append(userNets, ep.NetworkName)
			}
		}
		crashPoint("after-attach")
	}
	mounts, err := e.writeEtcFiles(c, addrs, nil)
	if err != nil {
		return "", nil, err
	}
	crashPoint("after-etc")
	if len(userNets) > 0 {
		endRefresh := trace("network refresh hosts")
		e.refreshHosts(ctx, userNets...)
		endRefresh()
	}
	return nsSpec, mounts, nil
}

// attach connects c (its namespace at nsPath) to a.Network. When the
// network has no address left, it reclaims what crashed or exited
// containers still hold and tries once more.
func (e *Engine) attach(ctx context.Context, m *network.Manager, c Container, nsPath string, a Attachment, ports []network.PortBinding) (network.Endpoint, error) {
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
		if e.reclaimNetworks(ctx) == nil {
			ep, err = m.Attach(ctx, a.Network, c.ID, nsPath, opts)
		}
	}
	return ep, err
}

// recordPublished stores the host ports Attach resolved (random ones from
// -P or -p 80) in the record, for ps; nothing is written when every port
// was fixed.
func (e *Engine) recordPublished(ctx context.Context, c Container, resolved []network.PortBinding) {
	want := resolved
	if slices.Equal(resolved, c.Net.Ports) {
		want = nil
	}
	if slices.Equal(want, c.Net.Published) {
		return
	}
	e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		cur.Net.Published = want
		return tx.Put(containersBucket, c.ID, cur)
	})
}

// etcFile is where the container's generated /etc/NAME lives on the host.
func (e *Engine) etcFile(id, name string) string {
	return filepath.Join(e.containerDir(id), name)
}

// writeEtcFiles renders /etc/hosts (own addresses, --add-host, and on a
// user-defined network every peer's name and aliases), /etc/resolv.conf and
// /etc/hostname, and returns their bind mounts.
func (e *Engine) writeEtcFiles(c Container, addrs []netip.Addr, peers []network.Endpoint) ([]specs.Mount, error) {
	hosts, err := e.renderHosts(c, addrs, peers)
	if err != nil {
		return nil, err
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	rc := network.ResolvConfig{Host: hostResolv, Search: c.Net.DNSSearch, Options: c.Net.DNSOptions}
	for _, d := range c.Net.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("%s is not an ip address: %w", d, errdefs.ErrInvalidArgument)
		}
		rc.DNS = append(rc.DNS, a)
	}
	resolv, _ := network.ResolvConf(rc)
	// hosts.json keeps what refreshHosts needs to re-render hosts; written
	// before hosts, so a member whose hosts.json is missing has no hosts
	// file to refresh yet (its start renders it).
	hc, _ := json.Marshal(hostsConfig{Hostname: c.Run.Hostname, ExtraHosts: c.Net.ExtraHosts})
	if err := writeInPlace(e.etcFile(c.ID, "hosts.json"), hc); err != nil {
		return nil, err
	}
	files := map[string][]byte{"hosts": hosts, "resolv.conf": resolv, "hostname": []byte(c.Run.Hostname + "\n")}
	var mounts []specs.Mount
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		if c.Net.Mode == "host" && name != "hostname" {
			// the host's own files, as Docker
			mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: "/etc/" + name, Options: []string{"rbind", "rprivate", "ro"}})
			continue
		}
		if err := writeInPlace(e.etcFile(c.ID, name), files[name]); err != nil {
			return nil, err
		}
		mounts = append(mounts, specs.Mount{Destination: "/etc/" + name, Type: "bind", Source: e.etcFile(c.ID, name), Options: []string{"rbind", "rprivate"}})
	}
	return mounts, nil
}

func (e *Engine) renderHosts(c Container, addrs []netip.Addr, peers []network.Endpoint) ([]byte, error) {
	extra := slices.Clone(c.Net.ExtraHosts)
	for i, h := range extra {
		if strings.HasSuffix(h, ":host-gateway") {
			gw := network.DefaultSubnet.Addr().Next()
			extra[i] = strings.TrimSuffix(h, "host-gateway") + gw.String()
		}
	}
	hosts, err := network.Hosts(network.HostsConfig{Hostname: c.Run.Hostname, Addresses: addrs, ExtraHosts: extra})
	if err != nil {
		return nil, err
	}
	// Peers on a user-defined network, by container name and aliases: the
	// hosts file of every member is rewritten when one joins or leaves.
	for _, p := range peers {
		if p.ContainerID == c.ID || !p.Address.IsValid() {
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
func (e *Engine) refreshHosts(ctx context.Context, netNames ...string) {
	e.refreshHostsOf(ctx, nil, netNames...)
}

// refreshHostsOf is refreshHosts that also rewrites the hosts files of the
// containers ids (e.g. one that just left those networks).
func (e *Engine) refreshHostsOf(ctx context.Context, ids []string, netNames ...string) {
	m, err := e.Networks()
	if err != nil {
		return
	}
	// Our change (endpoint and own hosts.json) is on disk before this
	// instant; a refresh that read the endpoints after it covered us.
	committed := time.Now().UnixNano()
	l, err := lockFile(ctx, filepath.Join(e.opts.Root, "network", "hosts.lock"))
	if err != nil {
		return
	}
	defer l.Close()
	stampPath := filepath.Join(e.opts.Root, "network", "hosts.stamp")
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
	recs := map[string]Container{}
	for id := range members {
		var hc hostsConfig
		if b, err := os.ReadFile(e.etcFile(id, "hosts.json")); err == nil && json.Unmarshal(b, &hc) == nil {
			c := Container{ID: id}
			c.Run.Hostname, c.Net.ExtraHosts = hc.Hostname, hc.ExtraHosts
			recs[id] = c
		}
	}
	defaults := map[string]bool{}
	for _, n := range nets {
		defaults[n.Name] = n.Default
	}
	for id, c := range recs {
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
		path := e.etcFile(id, "hosts")
		if hosts, err := e.renderHosts(c, addrs, peers); err == nil {
			writeInPlace(path, hosts)
		}
	}
}

// hostsConfig is a container's hosts.json: the inputs of its hosts file
// besides the endpoints.
type hostsConfig struct {
	Hostname   string   `json:"hostname"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
}

// lockFile takes an exclusive flock on path (created if missing), waiting
// until ctx is done; closing the file releases it, as does death.
func lockFile(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	// A blocking flock: the kernel hands the lock over the moment it is
	// released, where polling would leave it idle under contention.
	done := make(chan error, 1)
	go func() {
		var err error
		for err = unix.Flock(int(f.Fd()), unix.LOCK_EX); err == unix.EINTR; err = unix.Flock(int(f.Fd()), unix.LOCK_EX) {
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	case <-ctx.Done():
		go func() { <-done; f.Close() }()
		return nil, ctx.Err()
	}
}

// teardownNetwork releases the container's endpoints, ports and network
// namespace; idempotent.
func (e *Engine) teardownNetwork(ctx context.Context, c Container) error {
	if !isBridgeMode(c.Net.Mode) && c.Net.Mode != "none" {
		return nil
	}
	var nets []string
	var err error
	if c.Net.Mode != "none" {
		m, merr := e.Networks()
		if merr != nil {
			return merr
		}
		if eps, eerr := m.Endpoints(ctx, c.ID); eerr == nil {
			for _, ep := range eps {
				nets = append(nets, ep.NetworkName)
			}
		}
		err = m.ReleaseAll(ctx, c.ID)
	}
	if rerr := netns.Remove(e.netnsPath(c.ID)); rerr != nil && err == nil {
		err = rerr
	}
	var user []string
	for _, n := range nets {
		if n != network.DefaultNetworkName {
			user = append(user, n)
		}
	}
	if len(user) > 0 {
		e.refreshHosts(ctx, user...)
	}
	return err
}
