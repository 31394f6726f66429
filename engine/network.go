package engine

import (
	"context"
	"maps"
	"path/filepath"

	"github.com/berthproject/berth/engine/internal/containerops"
	"github.com/berthproject/berth/engine/internal/netops"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/network/cni"
)

// Network verbs (`berth network ...`) and published ports (`berth port`);
// the work is package netops's.
//
// The types are package network's and netops's, re-exported so that
// callers of the engine need no other import.
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
	// ConnectOptions are the options of `network connect`: IP (--ip, a
	// fixed IPv4 address on the network) and Aliases (--alias).
	ConnectOptions = netops.ConnectOptions
	// ContainerInspectJSON wraps InspectContainer's result for
	// serialising: Docker 28's inspect JSON, with the legacy top-level
	// NetworkSettings fields (IPAddress, Gateway, MacAddress, EndpointID,
	// ... of the default "bridge" network's endpoint) that the API
	// module's type lacks. `berth inspect` and GET /containers/{id}/json
	// both write it.
	ContainerInspectJSON = containerops.InspectJSON
)

// Networks opens the network manager (state under ROOT/network). Besides
// the bridge it has the "cni" driver (package network/cni, its result
// cache in RUNROOT/cni) unless Options.Network.Drivers names its own.
func (e *Engine) Networks() (*network.Manager, error) {
	e.netOnce.Do(func() {
		opts := e.opts.Network
		if opts.Drivers[cni.DriverName] == nil {
			drivers := maps.Clone(opts.Drivers)
			if drivers == nil {
				drivers = map[string]network.Driver{}
			}
			drivers[cni.DriverName] = cni.New(cni.Options{CacheDir: filepath.Join(e.opts.RunRoot, "cni")})
			opts.Drivers = drivers
		}
		e.net, e.netErr = network.Open(filepath.Join(e.opts.Root, "network"), opts)
	})
	return e.net, e.netErr
}

// networking is what package netops needs of the engine.
func (e *Engine) networking() *netops.Networking {
	return &netops.Networking{
		Root: e.opts.Root, RunRoot: e.opts.RunRoot, DB: e.db, Manager: e.Networks, Container: e.Container,
		Reconcile: func(ctx context.Context) error { _, err := e.Containers(ctx, true); return err },
	}
}

// CreateNetwork creates a user-defined network (Docker's `network
// create`): a bridge, or with Driver "cni" a network whose endpoints a CNI
// configuration's plugins make (see package network/cni for its -o
// options). Errors: errdefs.ErrInvalidArgument for a bad name, driver,
// subnet, gateway, ip-range or option, a bad or missing CNI
// configuration or plugin, and for the predefined names;
// errdefs.ErrConflict for a name in use or an overlapping subnet;
// errdefs.ErrUnavailable when no subnet is left in the pool. Nothing is
// left behind on error.
func (e *Engine) CreateNetwork(ctx context.Context, o NetworkCreateOptions) (Network, error) {
	n, err := e.nets.Create(ctx, o)
	if err == nil {
		e.emitNetwork(n, "create", "")
	}
	return n, err
}

// ListNetworks returns every network, sorted by name: the bridge networks
// (the predefined "bridge" one is created first if missing) and the
// predefined "host" and "none".
func (e *Engine) ListNetworks(ctx context.Context) ([]Network, error) {
	return e.nets.List(ctx)
}

// InspectNetwork returns one network by name, full ID or unique ID prefix.
// Errors: errdefs.ErrNotFound ("network X not found"),
// errdefs.ErrInvalidArgument for an ambiguous prefix.
func (e *Engine) InspectNetwork(ctx context.Context, ref string) (Network, error) {
	return e.nets.Inspect(ctx, ref)
}

// RemoveNetwork deletes a user-defined network, its bridge, rules and
// address pool. A network with containers attached is refused with
// errdefs.ErrPermissionDenied, Docker's 403 ("error while removing
// network: network NAME has active endpoints"), after endpoints left by
// crashed or exited containers are reclaimed; the predefined networks
// with errdefs.ErrPermissionDenied too; unknown ones errdefs.ErrNotFound.
func (e *Engine) RemoveNetwork(ctx context.Context, ref string) error {
	n, ierr := e.nets.Inspect(ctx, ref)
	if err := e.nets.Remove(ctx, ref); err != nil {
		return err
	}
	if ierr == nil {
		e.emitNetwork(n, "destroy", "")
	}
	return nil
}

// PruneNetworks reclaims what crashed containers hold, then removes every
// user-defined network with no container attached, and returns their
// names, sorted.
func (e *Engine) PruneNetworks(ctx context.Context) ([]string, error) {
	names, err := e.nets.Prune(ctx)
	for _, name := range names {
		e.emitNetwork(Network{ID: name, Name: name, Driver: "bridge"}, "destroy", "")
	}
	if err == nil {
		e.emit("network", "prune", "", map[string]string{"reclaimed": "0"})
	}
	return names, err
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
	if err := e.nets.Connect(ctx, netRef, ctrRef, o); err != nil {
		return err
	}
	e.emitAttachment(ctx, netRef, ctrRef, "connect")
	return nil
}

// emitAttachment appends a network's connect or disconnect event for a
// container, both named as the caller gave them.
func (e *Engine) emitAttachment(ctx context.Context, netRef, ctrRef, action string) {
	n, err := e.nets.Inspect(ctx, netRef)
	if err != nil {
		return
	}
	id := ctrRef
	if c, err := e.Container(ctx, ctrRef); err == nil {
		id = c.ID
	}
	e.emitNetwork(n, action, id)
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
	if err := e.nets.Disconnect(ctx, netRef, ctrRef, force); err != nil {
		return err
	}
	e.emitAttachment(ctx, netRef, ctrRef, "disconnect")
	return nil
}

// PublishedPorts returns the container and the ports it publishes now,
// host ports resolved, sorted by container port and protocol; none when
// it is not running.
func (e *Engine) PublishedPorts(ctx context.Context, ref string) (Container, []PortBinding, error) {
	return e.nets.PublishedPorts(ctx, ref)
}
