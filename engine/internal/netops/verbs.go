package netops

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// ConnectOptions are the options of `network connect`.
type ConnectOptions struct {
	IP      string   // --ip: a fixed IPv4 address on the network
	Aliases []string // --alias: extra names on the network
}

// findPredefined resolves "host", "none" or their (prefix of) IDs.
func findPredefined(ref string) (network.Network, bool) {
	for _, name := range []string{"host", "none"} {
		n := network.Predefined(name)
		if ref == name || (len(ref) >= 12 && strings.HasPrefix(n.ID, ref)) {
			return n, true
		}
	}
	return network.Network{}, false
}

// Create creates a user-defined network (Docker's `network create`): a
// bridge, or a network of another driver of the manager (e.g. "cni").
// Errors: errdefs.ErrInvalidArgument for a bad name, driver, subnet,
// gateway, ip-range or option (a driver's configuration included), and
// for the predefined names;
// errdefs.ErrConflict for a name in use or an overlapping subnet;
// errdefs.ErrUnavailable when no subnet is left in the pool. Nothing is
// left behind on error.
func (nw *Networking) Create(ctx context.Context, o network.CreateOptions) (network.Network, error) {
	m, err := nw.Manager()
	if err != nil {
		return network.Network{}, err
	}
	return m.Create(ctx, o)
}

// List returns every network, sorted by name: the bridge networks
// (the predefined "bridge" one is created first if missing) and the
// predefined "host" and "none".
func (nw *Networking) List(ctx context.Context) ([]network.Network, error) {
	m, err := nw.Manager()
	if err != nil {
		return nil, err
	}
	if _, err := m.Inspect(ctx, network.DefaultNetworkName); errdefs.IsNotFound(err) {
		m.EnsureDefault(ctx) // best effort: listing works without it
	}
	nets, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	nets = append(nets, network.Predefined("host"), network.Predefined("none"))
	slices.SortFunc(nets, func(a, b network.Network) int { return strings.Compare(a.Name, b.Name) })
	return nets, nil
}

// Inspect returns one network by name, full ID or unique ID prefix.
// Errors: errdefs.ErrNotFound ("network X not found"),
// errdefs.ErrInvalidArgument for an ambiguous prefix.
func (nw *Networking) Inspect(ctx context.Context, ref string) (network.Network, error) {
	if n, ok := findPredefined(ref); ok {
		return n, nil
	}
	m, err := nw.Manager()
	if err != nil {
		return network.Network{}, err
	}
	if ref == network.DefaultNetworkName {
		if _, err := m.Inspect(ctx, ref); errdefs.IsNotFound(err) {
			m.EnsureDefault(ctx)
		}
	}
	return m.Inspect(ctx, ref)
}

// Remove deletes a user-defined network, its bridge, rules and
// address pool. A network with containers attached is refused with
// errdefs.ErrPermissionDenied, Docker's 403 ("error while removing
// network: network NAME has active endpoints"), after endpoints left by
// crashed or exited containers are reclaimed; the predefined networks
// with errdefs.ErrPermissionDenied too; unknown ones errdefs.ErrNotFound.
func (nw *Networking) Remove(ctx context.Context, ref string) error {
	if n, ok := findPredefined(ref); ok {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrPermissionDenied)
	}
	m, err := nw.Manager()
	if err != nil {
		return err
	}
	n, err := m.Inspect(ctx, ref)
	if err != nil {
		return err
	}
	err = m.Remove(ctx, n.ID)
	if errdefs.IsPermissionDenied(err) && !n.Default {
		if rerr := nw.reclaim(ctx); rerr == nil {
			err = m.Remove(ctx, n.ID)
		}
	}
	return err
}

// Prune reclaims what crashed containers hold, then removes every
// user-defined network with no container attached, and returns their
// names, sorted.
func (nw *Networking) Prune(ctx context.Context) ([]string, error) {
	m, err := nw.Manager()
	if err != nil {
		return nil, err
	}
	if err := nw.reclaim(ctx); err != nil {
		return nil, err
	}
	return m.Prune(ctx)
}

// reclaim releases every address, veth and rule held by a
// container that is not running: first each crashed "running" record is
// reconciled (which tears its network down), then network.Manager.Reclaim
// runs with the running containers' IDs while the metadata store is held
// read-locked, so that no container can begin a start (which needs the
// write lock) between the listing and the reclaim.
func (nw *Networking) reclaim(ctx context.Context) error {
	m, err := nw.Manager()
	if err != nil {
		return err
	}
	if err := nw.Reconcile(ctx); err != nil {
		return err
	}
	return nw.DB.View(ctx, func(tx *state.Tx) error {
		all, err := record.List(tx)
		if err != nil {
			return err
		}
		var live []string
		for _, c := range all {
			if c.State.Status == record.StatusRunning {
				live = append(live, c.ID)
			}
		}
		return m.Reclaim(ctx, live)
	})
}

// Connect connects a container to a bridge network (Docker's
// `network connect`). A running container gets a new interface (eth1,
// ...) at once; a stopped one is attached at its next start. Either way
// the network is remembered for later starts.
//
// Errors: errdefs.ErrNotFound for an unknown container or network;
// errdefs.ErrInvalidArgument for a container in host, none or container:
// mode, the "host"/"none" networks, or --ip/--alias on the default
// network or a bad --ip; errdefs.ErrConflict when already connected or
// the address is taken; errdefs.ErrUnavailable when the subnet is full.
func (nw *Networking) Connect(ctx context.Context, netRef, ctrRef string, o ConnectOptions) error {
	c, err := nw.Container(ctx, ctrRef)
	if err != nil {
		return err
	}
	if p, ok := findPredefined(netRef); ok {
		return fmt.Errorf("container cannot be disconnected from host network or connected to %s network: %w", p.Name, errdefs.ErrInvalidArgument)
	}
	if !IsBridgeMode(c.Net.Mode) {
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network (--network %s): %w", c.Net.Mode, errdefs.ErrInvalidArgument)
	}
	m, err := nw.Manager()
	if err != nil {
		return err
	}
	n, err := nw.Inspect(ctx, netRef)
	if err != nil {
		return err
	}
	if n.Default && o.IP != "" {
		return fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
	}
	if n.Default && len(o.Aliases) > 0 {
		return fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	}
	if c.Net.ConnectedTo(n.Name) {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrConflict)
	}
	if err := checkRequestedIP(n, o.IP, c.ID); err != nil {
		return err
	}
	att := record.Attachment{Network: n.Name, IP: o.IP, Aliases: slices.Clone(o.Aliases)}
	running := c.State.Status == record.StatusRunning
	if running {
		nsPath := nw.NetnsPath(c.ID)
		if _, err := os.Stat(nsPath); err != nil {
			return fmt.Errorf("network namespace of container %s is gone: %w", c.ShortID(), errdefs.ErrFailedPrecondition)
		}
		if n.Default {
			if _, err := m.EnsureDefault(ctx); err != nil {
				return err
			}
		}
		ports := nw.portsToPlace(ctx, m, c, n)
		ep, err := nw.attach(ctx, m, c, nsPath, att, ports)
		if err != nil {
			return err
		}
		if len(ports) > 0 {
			nw.recordPublished(ctx, c, ep.Ports)
		}
	}
	err = record.Update(ctx, nw.DB, c.ID, func(cur *record.Container) error {
		if cur.Net.ConnectedTo(n.Name) {
			return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrConflict)
		}
		cur.Net.Extra = append(cur.Net.Extra, att)
		return nil
	})
	if err != nil {
		if running {
			m.Detach(context.WithoutCancel(ctx), n.ID, c.ID)
		}
		return err
	}
	if !running {
		return nil
	}
	// If the container stopped while we attached, its teardown may have
	// run before our endpoint existed: undo it here.
	if cur, err := nw.Container(ctx, c.ID); err == nil && (cur.State.Status != record.StatusRunning || !cur.State.StartedAt.Equal(c.State.StartedAt)) {
		m.Detach(context.WithoutCancel(ctx), n.ID, c.ID)
		return nil
	}
	nw.refreshHostsOf(ctx, []string{c.ID}, n.Name)
	return nil
}

// Disconnect disconnects a container from a network (Docker's
// `network disconnect`): a running container loses the interface at once,
// and later starts no longer attach it. force also detaches a container
// the record does not list as connected (a stale endpoint).
//
// Errors: errdefs.ErrNotFound for an unknown container or network;
// errdefs.ErrInvalidArgument for host, none or container: mode;
// errdefs.ErrFailedPrecondition when not connected (without force).
func (nw *Networking) Disconnect(ctx context.Context, netRef, ctrRef string, force bool) error {
	c, err := nw.Container(ctx, ctrRef)
	if err != nil {
		return err
	}
	if _, ok := findPredefined(netRef); ok || !IsBridgeMode(c.Net.Mode) {
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network (--network %s): %w", c.Net.Mode, errdefs.ErrInvalidArgument)
	}
	m, err := nw.Manager()
	if err != nil {
		return err
	}
	n, err := m.Inspect(ctx, netRef)
	if err != nil {
		return err
	}
	if !c.Net.ConnectedTo(n.Name) && !force {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrFailedPrecondition)
	}
	carried := false // the endpoint going away publishes the container's ports
	if eps, err := m.Endpoints(ctx, c.ID); err == nil {
		carried = slices.ContainsFunc(eps, func(ep network.Endpoint) bool { return ep.NetworkID == n.ID && len(ep.Ports) > 0 })
	}
	if err := m.Detach(ctx, n.ID, c.ID); err != nil {
		return err
	}
	err = record.Update(ctx, nw.DB, c.ID, func(cur *record.Container) error {
		cur.Net.Extra = slices.DeleteFunc(cur.Net.Extra, func(a record.Attachment) bool { return a.Network == n.Name })
		if cur.Net.Mode == n.Name {
			cur.Net.PrimaryDetached = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.State.Status == record.StatusRunning {
		if carried {
			nw.movePorts(ctx, m, c)
		}
		nw.refreshHostsOf(ctx, []string{c.ID}, n.Name)
	}
	return nil
}

// portsToPlace returns the ports a running container c must publish
// through its new endpoint on n: its -p/-P bindings when none of its
// endpoints publishes them now (all the networks that did were
// disconnected) and n is a bridge network; else none.
func (nw *Networking) portsToPlace(ctx context.Context, m *network.Manager, c record.Container, n network.Network) []network.PortBinding {
	if len(c.Net.Ports) == 0 || n.Driver != "bridge" {
		return nil
	}
	eps, err := m.Endpoints(ctx, c.ID)
	if err != nil || slices.ContainsFunc(eps, func(ep network.Endpoint) bool { return len(ep.Ports) > 0 }) {
		return nil
	}
	return c.Net.Ports
}

// movePorts publishes a running container's ports through its first
// remaining bridge endpoint, after `network disconnect` removed the one
// that carried them, as Docker keeps a container's port bindings for as
// long as it has a network. Best effort: with no endpoint left, the next
// connect or start publishes them.
func (nw *Networking) movePorts(ctx context.Context, m *network.Manager, c record.Container) {
	eps, err := m.Endpoints(ctx, c.ID)
	if err != nil {
		return
	}
	for _, ep := range eps {
		if n, err := m.Inspect(ctx, ep.NetworkID); err != nil || n.Driver != "bridge" {
			continue
		}
		if pub, err := m.Publish(ctx, ep.NetworkID, c.ID, c.Net.Ports); err == nil {
			nw.recordPublished(ctx, c, pub.Ports)
		}
		return
	}
}

// PublishedPorts returns the container and the ports it publishes now,
// host ports resolved, sorted by container port and protocol; none when
// it is not running.
func (nw *Networking) PublishedPorts(ctx context.Context, ref string) (record.Container, []network.PortBinding, error) {
	c, err := nw.Container(ctx, ref)
	if err != nil || c.State.Status != record.StatusRunning || !IsBridgeMode(c.Net.Mode) {
		return c, nil, err
	}
	m, err := nw.Manager()
	if err != nil {
		return c, nil, err
	}
	eps, err := m.Endpoints(ctx, c.ID)
	if err != nil {
		return c, nil, err
	}
	var out []network.PortBinding
	for _, ep := range eps {
		out = append(out, ep.Ports...)
	}
	slices.SortStableFunc(out, func(a, b network.PortBinding) int {
		if a.ContainerPort != b.ContainerPort {
			return int(a.ContainerPort) - int(b.ContainerPort)
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return c, out, nil
}

// Renamed makes a renamed container's new name resolve for its peers on
// user-defined networks (and the old one no longer): its endpoints take
// the name and the hosts files of those networks are rewritten.
func (nw *Networking) Renamed(ctx context.Context, id, name string) error {
	m, err := nw.Manager()
	if err != nil {
		return err
	}
	nets, err := m.RenameContainer(ctx, id, name)
	if err != nil || len(nets) == 0 {
		return err
	}
	nw.refreshHostsOf(ctx, []string{id}, nets...)
	return nil
}
