// Package bridge does the kernel plumbing of a bridge network with netlink:
// the Linux bridge on the host, and a veth pair per endpoint whose host end
// is enslaved to the bridge and whose other end lives in the container's
// network namespace with the endpoint's address and routes.
//
// It keeps no state: callers (package network) record names before calling,
// and every function here is idempotent so that a record can be replayed or
// torn down after a crash.
package bridge

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/berthproject/berth/network/netns"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ensure creates the bridge name if it does not exist, gives it the
// address gateway (e.g. 10.213.0.1/24) and brings it up. An existing link
// with that name that is not a bridge gives errdefs.ErrConflict. mtu 0 keeps
// the kernel default.
func Ensure(name string, gateway netip.Prefix, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if mtu > 0 {
			attrs.MTU = mtu
		}
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("link %s exists and is a %s, not a bridge: %w", name, link.Type(), errdefs.ErrConflict)
	}
	if gateway.IsValid() {
		addr := &netlink.Addr{IPNet: ipNet(gateway)}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("bridge %s: add address %s: %w", name, gateway, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bridge %s: set up: %w", name, err)
	}
	return nil
}

// Delete removes the bridge name. A missing link is not an error.
func Delete(name string) error {
	return deleteLink(name)
}

// Exists reports whether a link called name exists in the host namespace.
func Exists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

func deleteLink(name string) error {
	return deleteLinkWith(&netlink.Handle{}, name) // a socket per request, like netlink's package functions
}

// deleteLinkWith is deleteLink through the netlink handle h.
func deleteLinkWith(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// HostVethName returns the deterministic name of the host end of the veth
// for containerID on networkID: "vb" plus 12 hex digits of a hash of both,
// so a crashed setup can be found and removed from the record alone.
func HostVethName(containerID, networkID string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + networkID))
	return "vb" + hex.EncodeToString(sum[:6])
}

// Veth describes one endpoint's veth pair.
type Veth struct {
	HostName  string           // host end, enslaved to Bridge (see HostVethName)
	Bridge    string           // bridge to attach to
	NetnsPath string           // the container's network namespace
	IfName    string           // interface name inside the namespace, e.g. eth0
	Address   netip.Prefix     // address with the subnet's length, e.g. 10.213.0.2/24
	Gateway   netip.Addr       // default route via this address when DefaultRoute
	MAC       net.HardwareAddr // nil: derived from Address (02:b7:a.b.c.d)
	MTU       int              // 0: the bridge's MTU
	// DefaultRoute adds a default route via Gateway unless the namespace
	// already has one (a container's first network provides it).
	DefaultRoute bool
}

// MACFromIP returns the locally administered MAC berth gives an endpoint
// with address ip: 02:b7 followed by the four IPv4 bytes.
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0xb7, a[0], a[1], a[2], a[3]}
}

// Attach creates the veth pair, with its container end directly in the
// namespace, enslaves the host end to the bridge and configures the
// container end (address, MAC, up, loopback up, default route). A leftover
// pair with the same host name (from a crashed attempt) is replaced.
// On failure the pair is removed again. A missing bridge gives
// errdefs.ErrNotFound, a missing namespace too.
//
// It costs two netlink sockets, one per namespace, and about ten round
// trips: the container end's index comes from the host end's link, and
// the default route is added without listing routes first (an existing
// default route makes the kernel answer EEXIST, which means done).
func Attach(v Veth) (err error) {
	host, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer host.Close()
	br, err := host.LinkByName(v.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("bridge %s: %w", v.Bridge, errdefs.ErrNotFound)
		}
		return fmt.Errorf("bridge %s: %w", v.Bridge, err)
	}
	nsf, err := os.Open(v.NetnsPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns %s: %w", v.NetnsPath, errdefs.ErrNotFound)
		}
		return err
	}
	defer nsf.Close()
	mac := v.MAC
	if mac == nil {
		mac = MACFromIP(v.Address.Addr())
	}
	mtu := v.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = v.HostName
	attrs.MTU = mtu
	attrs.Flags = net.FlagUp
	newVeth := func() *netlink.Veth {
		return &netlink.Veth{LinkAttrs: attrs, PeerName: v.IfName, PeerNamespace: netlink.NsFd(int(nsf.Fd())), PeerHardwareAddr: mac}
	}
	veth := newVeth()
	err = host.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		// A pair left by a crashed attempt (or whose namespace is still
		// held): replace it. Looking it up first would cost every Attach
		// a round trip.
		if err := deleteLinkWith(host, v.HostName); err != nil {
			return err
		}
		veth = newVeth()
		err = host.LinkAdd(veth)
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", v.HostName, err)
	}
	defer func() {
		if err != nil {
			deleteLinkWith(host, v.HostName)
		}
	}()
	// LinkAdd filled in the host end's index; the pair's other end is
	// found by name in the namespace below.
	if err := host.LinkSetMasterByIndex(veth, br.Attrs().Index); err != nil {
		return fmt.Errorf("veth %s: enslave to %s: %w", v.HostName, v.Bridge, err)
	}
	if err := host.LinkSetHairpin(veth, true); err != nil {
		return fmt.Errorf("veth %s: hairpin: %w", v.HostName, err)
	}
	var inside *netlink.Handle
	if err := netns.Do(v.NetnsPath, func() error {
		var err error
		inside, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	}); err != nil {
		return fmt.Errorf("netlink in %s: %w", v.NetnsPath, err)
	}
	defer inside.Close()
	return configureInside(inside, v)
}

// loopbackIndex is the interface index of lo in every network namespace
// (the kernel registers it first, with this fixed index).
const loopbackIndex = 1

// configureInside configures the container end through h, a netlink
// handle whose socket lives in the container's namespace.
func configureInside(h *netlink.Handle, v Veth) error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex, Name: "lo"}}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	link, err := h.LinkByName(v.IfName)
	if err != nil {
		return fmt.Errorf("container interface %s: %w", v.IfName, err)
	}
	if err := h.AddrReplace(link, &netlink.Addr{IPNet: ipNet(v.Address)}); err != nil {
		return fmt.Errorf("%s: add address %s: %w", v.IfName, v.Address, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s: up: %w", v.IfName, err)
	}
	if !v.DefaultRoute || !v.Gateway.IsValid() {
		return nil
	}
	// The kernel refuses a second default route of the same metric with
	// EEXIST (RouteAdd asks for NLM_F_EXCL): the namespace already has
	// one, from the container's first network, which is what we want.
	gw := v.Gateway.As4()
	if err := h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw[:])}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("default route via %s: %w", v.Gateway, err)
	}
	return nil
}

// Detach removes the veth pair whose host end is hostName (the container
// end disappears with it, and so do its routes). Idempotent. It returns
// once the kernel has unregistered both ends, which waits for RCU grace
// periods (~20 ms).
func Detach(hostName string) error {
	return deleteLink(hostName)
}

// Unbridge takes the host end hostName of a veth pair off its bridge
// without deleting the pair, so that it carries no traffic from then on.
// It is for a pair whose container end's namespace is about to be
// dropped: the kernel deletes both ends with the namespace, in the
// background, where Detach would wait for the deletion. A missing link is
// not an error.
func Unbridge(hostName string) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	link, err := h.LinkByName(hostName)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("link %s: %w", hostName, err)
	}
	if link.Attrs().MasterIndex == 0 {
		return nil
	}
	if err := h.LinkSetNoMaster(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("veth %s: release from bridge: %w", hostName, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().As4()
	return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 32)}
}

// LoopbackUp brings up lo in the namespace at nsPath; Attach does this
// too, so only namespaces with no endpoint (--network none) need it.
// Idempotent; errdefs.ErrNotFound for a missing namespace.
func LoopbackUp(nsPath string) error {
	return netns.Do(nsPath, func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
}
