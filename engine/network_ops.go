package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// Network verbs (`berth network ...`) and published ports (`berth port`).
//
// The types are package network's, re-exported so that callers of the
// engine need no other import.
type (
	// Network is a bridge network with its endpoints, or one of the
	// predefined "host" and "none" networks (Driver "host" and "null",
	// no subnet, no endpoints).
	Network = network.Network
	// NetworkEndpoint is one container's attachment to one network.
	NetworkEndpoint = network.Endpoint
	// NetworkCreateOptions are the options of `network create`.
	NetworkCreateOptions = network.CreateOptions
	// PortBinding is one published port.
	PortBinding = network.PortBinding
)

// ConnectOptions are the options of `network connect`.
type ConnectOptions struct {
	IP      string   // --ip: a fixed IPv4 address on the network
	Aliases []string // --alias: extra names on the network
}

// predefined returns the predefined network name ("host" or "none") as a
// Network value. Its ID is derived from the name, so it is stable.
func predefined(name string) Network {
	sum := sha256.Sum256([]byte("berth predefined network " + name))
	driver := "host"
	if name == "none" {
		driver = "null"
	}
	return Network{ID: hex.EncodeToString(sum[:]), Name: name, Driver: driver}
}

// findPredefined resolves "host", "none" or their (prefix of) IDs.
func findPredefined(ref string) (Network, bool) {
	for _, name := range []string{"host", "none"} {
		n := predefined(name)
		if ref == name || (len(ref) >= 12 && strings.HasPrefix(n.ID, ref)) {
			return n, true
		}
	}
	return Network{}, false
}

// CreateNetwork creates a user-defined bridge network (Docker's `network
// create`). Errors: errdefs.ErrInvalidArgument for a bad name, driver,
// subnet, gateway, ip-range or option, and for the predefined names;
// errdefs.ErrConflict for a name in use or an overlapping subnet;
// errdefs.ErrUnavailable when no subnet is left in the pool. Nothing is
// left behind on error.
func (e *Engine) CreateNetwork(ctx context.Context, o NetworkCreateOptions) (Network, error) {
	m, err := e.Networks()
	if err != nil {
		return Network{}, err
	}
	return m.Create(ctx, o)
}

// ListNetworks returns every network, sorted by name: the bridge networks
// (the predefined "bridge" one is created first if missing) and the
// predefined "host" and "none".
func (e *Engine) ListNetworks(ctx context.Context) ([]Network, error) {
	m, err := e.Networks()
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
	nets = append(nets, predefined("host"), predefined("none"))
	slices.SortFunc(nets, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return nets, nil
}

// InspectNetwork returns one network by name, full ID or unique ID prefix.
// Errors: errdefs.ErrNotFound ("network X not found"),
// errdefs.ErrInvalidArgument for an ambiguous prefix.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (Network, error) {
	if n, ok := findPredefined(ref); ok {
		return n, nil
	}
	m, err := e.Networks()
	if err != nil {
		return Network{}, err
	}
	if ref == network.DefaultNetworkName {
		if _, err := m.Inspect(ctx, ref); errdefs.IsNotFound(err) {
			m.EnsureDefault(ctx)
		}
	}
	return m.Inspect(ctx, ref)
}

// RemoveNetwork deletes a user-defined network, its bridge, rules and
// address pool. A network with containers attached is refused with
// errdefs.ErrFailedPrecondition ("error while removing network: network
// NAME has active endpoints"), after endpoints left by crashed or exited
// containers are reclaimed; the predefined networks with
// errdefs.ErrPermissionDenied; unknown ones errdefs.ErrNotFound.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	if n, ok := findPredefined(ref); ok {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrPermissionDenied)
	}
	m, err := e.Networks()
	if err != nil {
		return err
	}
	err = m.Remove(ctx, ref)
	if errdefs.IsFailedPrecondition(err) {
		if rerr := e.reclaimNetworks(ctx); rerr == nil {
			err = m.Remove(ctx, ref)
		}
	}
	if errdefs.IsFailedPrecondition(err) {
		name := ref
		if n, ierr := m.Inspect(ctx, ref); ierr == nil {
			name = n.Name
		}
		return fmt.Errorf("error while removing network: network %s has active endpoints: %w", name, errdefs.ErrFailedPrecondition)
	}
	return err
}

// PruneNetworks reclaims what crashed containers hold, then removes every
// user-defined network with no container attached, and returns their
// names, sorted.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	m, err := e.Networks()
	if err != nil {
		return nil, err
	}
	if err := e.reclaimNetworks(ctx); err != nil {
		return nil, err
	}
	return m.Prune(ctx)
}

// reclaimNetworks releases every address, veth and rule held by a
// container that is not running: first each crashed "running" record is
// reconciled (which tears its network down), then network.Manager.Reclaim
// runs with the running containers' IDs while the metadata store is held
// read-locked, so that no container can begin a start (which needs the
// write lock) between the listing and the reclaim.
func (e *Engine) reclaimNetworks(ctx context.Context) error {
	m, err := e.Networks()
	if err != nil {
		return err
	}
	if _, err := e.Containers(ctx, true); err != nil {
		return err
	}
	return e.db.View(ctx, func(tx *state.Tx) error {
		var live []string
		err := tx.ForEach(containersBucket, func(_ string, data []byte) error {
			var c Container
			if err := json.Unmarshal(data, &c); err != nil {
				return err
			}
			if c.State.Status == StatusRunning {
				live = append(live, c.ID)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return m.Reclaim(ctx, live)
	})
}

// connectedTo reports whether c's settings name the network called name.
func (s NetworkSettings) connectedTo(name string) bool {
	if s.Mode == name && !s.PrimaryDetached {
		return true
	}
	return slices.ContainsFunc(s.Extra, func(a Attachment) bool { return a.Network == name })
}

// ConnectNetwork connects a container to a bridge network (Docker's
// `network connect`). A running container gets a new interface (eth1,
// ...) at once; a stopped one is attached at its next start. Either way
// the network is remembered for later starts.
//
// Errors: errdefs.ErrNotFound for an unknown container or network;
// errdefs.ErrInvalidArgument for a container in host, none or container:
// mode, the "host"/"none" networks, or --ip/--alias on the default
// network or a bad --ip; errdefs.ErrConflict when already connected or
// the address is taken; errdefs.ErrUnavailable when the subnet is full.
func (e *Engine) ConnectNetwork(ctx context.Context, netRef, ctrRef string, o ConnectOptions) error {
	c, err := e.Container(ctx, ctrRef)
	if err != nil {
		return err
	}
	if p, ok := findPredefined(netRef); ok {
		return fmt.Errorf("container cannot be disconnected from host network or connected to %s network: %w", p.Name, errdefs.ErrInvalidArgument)
	}
	if !isBridgeMode(c.Net.Mode) {
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network (--network %s): %w", c.Net.Mode, errdefs.ErrInvalidArgument)
	}
	m, err := e.Networks()
	if err != nil {
		return err
	}
	n, err := e.InspectNetwork(ctx, netRef)
	if err != nil {
		return err
	}
	if n.Default && o.IP != "" {
		return fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
	}
	if n.Default && len(o.Aliases) > 0 {
		return fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	}
	if c.Net.connectedTo(n.Name) {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrConflict)
	}
	if err := checkRequestedIP(n, o.IP, c.ID); err != nil {
		return err
	}
	att := Attachment{Network: n.Name, IP: o.IP, Aliases: slices.Clone(o.Aliases)}
	running := c.State.Status == StatusRunning
	if running {
		nsPath := e.netnsPath(c.ID)
		if _, err := os.Stat(nsPath); err != nil {
			return fmt.Errorf("network namespace of container %s is gone: %w", c.ShortID(), errdefs.ErrFailedPrecondition)
		}
		if n.Default {
			if _, err := m.EnsureDefault(ctx); err != nil {
				return err
			}
		}
		if _, err := e.attach(ctx, m, c, nsPath, att, nil); err != nil {
			return err
		}
	}
	err = e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.Net.connectedTo(n.Name) {
			return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrConflict)
		}
		cur.Net.Extra = append(cur.Net.Extra, att)
		return tx.Put(containersBucket, c.ID, cur)
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
	if cur, err := e.Container(ctx, c.ID); err == nil && (cur.State.Status != StatusRunning || !cur.State.StartedAt.Equal(c.State.StartedAt)) {
		m.Detach(context.WithoutCancel(ctx), n.ID, c.ID)
		return nil
	}
	e.refreshHostsOf(ctx, []string{c.ID}, n.Name)
	return nil
}

// DisconnectNetwork disconnects a container from a network (Docker's
// `network disconnect`): a running container loses the interface at once,
// and later starts no longer attach it. force also detaches a container
// the record does not list as connected (a stale endpoint).
//
// Errors: errdefs.ErrNotFound for an unknown container or network;
// errdefs.ErrInvalidArgument for host, none or container: mode;
// errdefs.ErrFailedPrecondition when not connected (without force).
func (e *Engine) DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error {
	c, err := e.Container(ctx, ctrRef)
	if err != nil {
		return err
	}
	if _, ok := findPredefined(netRef); ok || !isBridgeMode(c.Net.Mode) {
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network (--network %s): %w", c.Net.Mode, errdefs.ErrInvalidArgument)
	}
	m, err := e.Networks()
	if err != nil {
		return err
	}
	n, err := m.Inspect(ctx, netRef)
	if err != nil {
		return err
	}
	if !c.Net.connectedTo(n.Name) && !force {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.Name, n.Name, errdefs.ErrFailedPrecondition)
	}
	if err := m.Detach(ctx, n.ID, c.ID); err != nil {
		return err
	}
	err = e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		cur.Net.Extra = slices.DeleteFunc(cur.Net.Extra, func(a Attachment) bool { return a.Network == n.Name })
		if cur.Net.Mode == n.Name {
			cur.Net.PrimaryDetached = true
		}
		return tx.Put(containersBucket, c.ID, cur)
	})
	if err != nil {
		return err
	}
	if c.State.Status == StatusRunning {
		e.refreshHostsOf(ctx, []string{c.ID}, n.Name)
	}
	return nil
}

// PublishedPorts returns the container and the ports it publishes now,
// host ports resolved, sorted by container port and protocol; none when
// it is not running.
func (e *Engine) PublishedPorts(ctx context.Context, ref string) (Container, []PortBinding, error) {
	c, err := e.Container(ctx, ref)
	if err != nil || c.State.Status != StatusRunning || !isBridgeMode(c.Net.Mode) {
		return c, nil, err
	}
	m, err := e.Networks()
	if err != nil {
		return c, nil, err
	}
	eps, err := m.Endpoints(ctx, c.ID)
	if err != nil {
		return c, nil, err
	}
	var out []PortBinding
	for _, ep := range eps {
		out = append(out, ep.Ports...)
	}
	slices.SortStableFunc(out, func(a, b PortBinding) int {
		if a.ContainerPort != b.ContainerPort {
			return int(a.ContainerPort) - int(b.ContainerPort)
		}
		return strings.Compare(a.Proto, b.Proto)
	})
	return c, out, nil
}
