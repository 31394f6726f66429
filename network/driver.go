package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/containerd/errdefs"
)

// Driver plumbs the endpoints of networks that are not berth bridges, e.g.
// package network/cni, which runs a CNI configuration's plugins. The
// Manager keeps such a network's record and its endpoints' records (under
// its lock, in its state file, recorded before Attach and forgotten only
// after Detach succeeds), so crash recovery (ReleaseAll, Reclaim) reaches
// driver endpoints as it reaches bridge ones; the driver owns everything
// else (addresses, links, rules, its own caches).
//
// Drivers are given to Open in Options.Drivers, keyed by the name that
// `network create --driver NAME` uses; the composition root wires them
// (there is no global registry). Methods are called with the Manager's
// lock held, so calls for one state directory never overlap.
type Driver interface {
	// Validate checks the create options of a new network named o.Name
	// (o.Subnet, o.Gateway, o.IPRange and o.Internal are refused before
	// it is called) and returns the configuration to record with the
	// network, handed back unchanged in every DriverRequest.Config. It
	// must create nothing. errdefs.ErrInvalidArgument for bad options or
	// a bad or missing configuration.
	Validate(ctx context.Context, o CreateOptions) (config []byte, err error)
	// Attach creates the endpoint r in the namespace r.NetnsPath, named
	// r.IfName inside it, and returns its IPv4 address. On error it
	// leaves nothing behind (the Manager also calls Detach).
	Attach(ctx context.Context, r DriverRequest) (DriverResult, error)
	// Detach undoes Attach for r. It must be idempotent and must accept
	// an endpoint whose Attach failed or was killed part-way, and a
	// namespace that is already gone. While it returns an error the
	// endpoint stays recorded (and a later teardown retries).
	Detach(ctx context.Context, r DriverRequest) error
}

// DriverRequest names one endpoint for Driver.Attach and Driver.Detach.
type DriverRequest struct {
	NetworkID   string // 64 hex digits
	NetworkName string
	// Config is what Validate returned when the network was created.
	Config      []byte
	ContainerID string // 64 hex digits
	// NetnsPath is the container's network namespace (a bind mount).
	NetnsPath string
	// IfName is the interface to create in the namespace: eth0, eth1, ...
	IfName string
}

// DriverResult is what an Attach made.
type DriverResult struct {
	Address netip.Prefix // the container's IPv4 address with its prefix length
	Gateway netip.Addr   // zero when there is none
	MAC     string       // of IfName, "" when unknown
}

// usesDriver reports whether n is plumbed by an Options.Drivers driver
// rather than by the Manager's own bridge code.
func (n *netRecord) usesDriver() bool { return n.Driver != "" && n.Driver != "bridge" }

// driver returns the driver registered for name ("" and "bridge" are the
// built-in bridge and never a Driver).
func (m *Manager) driver(name string) (Driver, bool) {
	if name == "" || name == "bridge" {
		return nil, false
	}
	d, ok := m.opts.Drivers[name]
	return d, ok && d != nil
}

// driverOf returns the driver of network n: errdefs.ErrFailedPrecondition
// when this Manager was opened without it.
func (m *Manager) driverOf(n *netRecord) (Driver, error) {
	d, ok := m.driver(n.Driver)
	if !ok {
		return nil, fmt.Errorf("network %s: driver %q is not available: %w", n.Name, n.Driver, errdefs.ErrFailedPrecondition)
	}
	return d, nil
}

// supportedDrivers is the list of driver names for error messages.
func (m *Manager) supportedDrivers() []string {
	names := []string{"bridge"}
	for name, d := range m.opts.Drivers {
		if d != nil && name != "" && name != "bridge" {
			names = append(names, name)
		}
	}
	slices.Sort(names[1:])
	return names
}

// createWithDriver records a network whose endpoints driver d plumbs; the
// network itself needs no plumbing. The caller holds the lock and has
// checked the name; the txn saves the state.
func (m *Manager) createWithDriver(ctx context.Context, st *state, o CreateOptions, d Driver) (Network, error) {
	switch {
	case o.Subnet.IsValid(), o.Gateway.IsValid(), o.IPRange.IsValid():
		return Network{}, fmt.Errorf("--subnet, --gateway and --ip-range are not supported by the %s driver (its configuration chooses addresses): %w", o.Driver, errdefs.ErrInvalidArgument)
	case o.Internal:
		return Network{}, fmt.Errorf("--internal is not supported by the %s driver: %w", o.Driver, errdefs.ErrInvalidArgument)
	}
	cfg, err := d.Validate(ctx, o)
	if err != nil {
		return Network{}, err
	}
	id := newID()
	n := &netRecord{Network: Network{
		ID: id, Name: o.Name, Driver: o.Driver, Labels: maps.Clone(o.Labels), Options: maps.Clone(o.Options),
		Created: time.Now().UTC(),
	}, DriverConfig: cfg}
	st.Networks[id] = n
	return st.view(n), nil
}

// attachWithDriver is Attach for a driver network: the endpoint is
// recorded (Ready false) before the driver runs, so that a crash at any
// point leaves a record whose teardown calls Detach.
func (m *Manager) attachWithDriver(ctx context.Context, st *state, save func() error, n *netRecord, containerID, netnsPath string, o AttachOptions) (Endpoint, error) {
	switch {
	case o.IP.IsValid():
		return Endpoint{}, fmt.Errorf("--ip is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
	case o.MAC != "":
		return Endpoint{}, fmt.Errorf("--mac-address is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
	case len(o.Ports) > 0:
		return Endpoint{}, fmt.Errorf("publishing ports is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
	}
	d, err := m.driverOf(n)
	if err != nil {
		return Endpoint{}, err
	}
	key := epKey(containerID, n.ID)
	e := &epRecord{Endpoint: Endpoint{
		NetworkID: n.ID, NetworkName: n.Name, ContainerID: containerID, ContainerName: o.ContainerName,
		NetnsPath: netnsPath, IfName: st.nextIfName(containerID), Aliases: slices.Clone(o.Aliases),
	}}
	st.Endpoints[key] = e
	if err := save(); err != nil {
		delete(st.Endpoints, key)
		return Endpoint{}, err
	}
	hook("recorded")
	res, err := d.Attach(ctx, m.driverRequest(n, e))
	hook("attached")
	if err != nil {
		return Endpoint{}, errors.Join(fmt.Errorf("attach %.12s to %s: %w", containerID, n.Name, err), m.teardown(ctx, st, e), save())
	}
	e.Address, e.Gateway, e.MAC = res.Address, res.Gateway, res.MAC
	e.Ready = true
	return e.Endpoint, nil
}

// teardownWithDriver asks n's driver to undo endpoint e, then forgets e.
func (m *Manager) teardownWithDriver(ctx context.Context, st *state, n *netRecord, e *epRecord) error {
	d, err := m.driverOf(n)
	if err == nil {
		err = d.Detach(ctx, m.driverRequest(n, e))
	}
	if err != nil {
		return fmt.Errorf("detach %.12s from %s: %w", e.ContainerID, e.NetworkName, err)
	}
	delete(st.Endpoints, epKey(e.ContainerID, e.NetworkID))
	return nil
}

func (m *Manager) driverRequest(n *netRecord, e *epRecord) DriverRequest {
	return DriverRequest{
		NetworkID: n.ID, NetworkName: n.Name, Config: n.DriverConfig,
		ContainerID: e.ContainerID, NetnsPath: e.NetnsPath, IfName: e.IfName,
	}
}
