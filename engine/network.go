package engine

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/network/bridge"
	"github.com/berthproject/berth/network/netns"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
		if _, err := m.Inspect(ctx, s.Mode); err != nil {
			return s, err
		}
	}
	return s, nil
}

// setupNetwork prepares the container's network before the OCI runtime
// runs: its namespace (joined by path), endpoint and published ports, and
// the /etc/hosts, /etc/resolv.conf and /etc/hostname files bound into it.
// It returns the runtime's NetworkNamespace value and the extra mounts.
func (e *Engine) setupNetwork(ctx context.Context, c Container) (string, []specs.Mount, error) {
	mode := c.Net.Mode
	nsSpec := ""
	var addrs []netip.Addr
	var peers []network.Endpoint
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
		if mode == "bridge" {
			if _, err := m.EnsureDefault(ctx); err != nil {
				return "", nil, err
			}
		}
		opts := network.AttachOptions{ContainerName: c.Name, Aliases: c.Net.Aliases, Ports: c.Net.Ports}
		if c.Net.IP != "" {
			opts.IP, _ = netip.ParseAddr(c.Net.IP)
		}
		ep, err := m.Attach(ctx, mode, c.ID, nsSpec, opts)
		if err != nil {
			return "", nil, err
		}
		addrs = append(addrs, ep.Address.Addr())
		if mode != "bridge" {
			if n, err := m.Inspect(ctx, mode); err == nil {
				peers = n.Endpoints
			}
		}
	}
	mounts, err := e.writeEtcFiles(c, addrs, peers)
	if err != nil {
		return "", nil, err
	}
	if mode != "bridge" && isBridgeMode(mode) {
		e.refreshHosts(ctx, mode, c.ID)
	}
	return nsSpec, mounts, nil
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

// refreshHosts rewrites the hosts file of every container on the
// user-defined network netName (but skip), so that names resolve for
// members that joined before or after them.
func (e *Engine) refreshHosts(ctx context.Context, netName, skip string) {
	m, err := e.Networks()
	if err != nil {
		return
	}
	n, err := m.Inspect(ctx, netName)
	if err != nil {
		return
	}
	for _, ep := range n.Endpoints {
		if ep.ContainerID == skip {
			continue
		}
		c, err := e.Container(ctx, ep.ContainerID)
		if err != nil {
			continue
		}
		var addrs []netip.Addr
		if eps, err := m.Endpoints(ctx, c.ID); err == nil {
			for _, x := range eps {
				addrs = append(addrs, x.Address.Addr())
			}
		}
		if hosts, err := e.renderHosts(c, addrs, n.Endpoints); err == nil {
			writeInPlace(e.etcFile(c.ID, "hosts"), hosts)
		}
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
	for _, n := range nets {
		if n != "bridge" {
			e.refreshHosts(ctx, n, c.ID)
		}
	}
	return err
}
