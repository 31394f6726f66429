package network

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/berthproject/berth/network/firewall"
	"github.com/containerd/errdefs"
)

// ParsePortSpecs parses Docker's -p/--publish syntax and adds the -P
// (publishAll) bindings. Each spec is
//
//	[hostIP:][hostPort[-hostPortEnd]:]containerPort[-containerPortEnd][/tcp|/udp|/sctp]
//
// e.g. "80" (random host port), "8080:80", "127.0.0.1:8080:80",
// "127.0.0.1::80", "53:53/udp", "8000-8009:80-89" (pairwise),
// "8000-8009:80" (one free host port out of the range), "80-89" (random
// host port each). The protocol defaults to tcp. Host IPs must be IPv4
// (IPv6 publishing is not implemented).
//
// exposed holds the image's and --expose's ports as "80/tcp" (or "80");
// with publishAll each exposed port not already published gets a random
// host port on all addresses, in port order. Bad syntax gives
// errdefs.ErrInvalidArgument naming the spec.
func ParsePortSpecs(specs []string, exposed map[string]struct{}, publishAll bool) ([]PortBinding, error) {
	var out []PortBinding
	for _, spec := range specs {
		b, err := parsePortSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("invalid port specification %q: %s: %w", spec, err, errdefs.ErrInvalidArgument)
		}
		out = append(out, b...)
	}
	if publishAll {
		var extra []PortBinding
		for k := range exposed {
			port, proto, _ := strings.Cut(k, "/")
			if proto == "" {
				proto = "tcp"
			}
			p, err := strconv.ParseUint(port, 10, 16)
			if err != nil || p == 0 || !validProto(proto) {
				return nil, fmt.Errorf("invalid exposed port %q: %w", k, errdefs.ErrInvalidArgument)
			}
			if slices.ContainsFunc(out, func(b PortBinding) bool { return b.ContainerPort == uint16(p) && b.Proto == proto }) {
				continue
			}
			extra = append(extra, PortBinding{ContainerPort: uint16(p), Proto: proto})
		}
		slices.SortFunc(extra, func(a, b PortBinding) int {
			if a.ContainerPort != b.ContainerPort {
				return int(a.ContainerPort) - int(b.ContainerPort)
			}
			return strings.Compare(a.Proto, b.Proto)
		})
		out = append(out, extra...)
	}
	return out, nil
}

func validProto(p string) bool { return p == "tcp" || p == "udp" || p == "sctp" }

func parsePortSpec(spec string) ([]PortBinding, error) {
	rest, proto := spec, "tcp"
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		rest, proto = spec[:i], strings.ToLower(spec[i+1:])
		if !validProto(proto) {
			return nil, fmt.Errorf("unknown protocol %q", proto)
		}
	}
	var hostIP netip.Addr
	if strings.HasPrefix(rest, "[") {
		return nil, fmt.Errorf("IPv6 host addresses are not supported")
	}
	parts := strings.Split(rest, ":")
	var hostPart, ctrPart string
	switch len(parts) {
	case 1:
		ctrPart = parts[0]
	case 2:
		hostPart, ctrPart = parts[0], parts[1]
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("host IP %q is not an IPv4 address", parts[0])
		}
		if !ip.IsUnspecified() {
			hostIP = ip
		}
		hostPart, ctrPart = parts[1], parts[2]
	default:
		return nil, fmt.Errorf("too many colons")
	}
	clo, chi, err := parseRange(ctrPart, false)
	if err != nil {
		return nil, fmt.Errorf("container port: %w", err)
	}
	hlo, hhi, err := parseRange(hostPart, true)
	if err != nil {
		return nil, fmt.Errorf("host port: %w", err)
	}
	var out []PortBinding
	switch {
	case clo == chi:
		b := PortBinding{HostIP: hostIP, HostPort: hlo, ContainerPort: clo, Proto: proto}
		if hhi != hlo {
			b.HostPortEnd = hhi
		}
		out = append(out, b)
	case hlo == 0:
		for p := int(clo); p <= int(chi); p++ {
			out = append(out, PortBinding{HostIP: hostIP, ContainerPort: uint16(p), Proto: proto})
		}
	case int(hhi)-int(hlo) == int(chi)-int(clo):
		for i := 0; i <= int(chi)-int(clo); i++ {
			out = append(out, PortBinding{HostIP: hostIP, HostPort: hlo + uint16(i), ContainerPort: clo + uint16(i), Proto: proto})
		}
	default:
		return nil, fmt.Errorf("host and container port ranges differ in length")
	}
	return out, nil
}

func parseRange(s string, allowEmpty bool) (lo, hi uint16, err error) {
	if s == "" {
		if allowEmpty {
			return 0, 0, nil
		}
		return 0, 0, fmt.Errorf("missing port")
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil || l == 0 {
		return 0, 0, fmt.Errorf("bad port %q", a)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil || h < l {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return uint16(l), uint16(h), nil
}

func (p PortBinding) validate() error {
	if !validProto(p.Proto) || p.ContainerPort == 0 || (p.HostPortEnd != 0 && p.HostPortEnd < p.HostPort) ||
		(p.HostIP.IsValid() && !p.HostIP.Is4()) {
		return fmt.Errorf("invalid port binding %+v: %w", p, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (p PortBinding) hostAddr() string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}

// clashes reports whether two resolved bindings want the same host socket:
// same protocol and port, and the same host IP or either on all addresses.
func clashes(a, b PortBinding) bool {
	if a.Proto != b.Proto || a.HostPort != b.HostPort {
		return false
	}
	return !a.HostIP.IsValid() || !b.HostIP.IsValid() || a.HostIP.IsUnspecified() || b.HostIP.IsUnspecified() || a.HostIP == b.HostIP
}

// resolvePorts picks host ports for bindings that need one and checks every
// binding, for a container at address ip, against the ports held by all
// endpoints (Docker's "Bind for 0.0.0.0:80 failed: port is already
// allocated") and against sockets of other programs on the host, by
// binding the host address (tcp: listen, udp: bind) and closing it again
// (Docker's "failed to bind host port for 0.0.0.0:80:IP:80/tcp: address
// already in use"). Both are errdefs.ErrConflict.
//
// Nothing stays bound: berth has no daemon to hold the sockets for the
// container's lifetime (only its monitor lives that long, and it is a
// different process started later). A program that binds the port after
// the container started is thus not refused by the kernel; its traffic
// goes to the container (DNAT) while the container runs, the ports
// already recorded keep refusing other containers.
func (m *Manager) resolvePorts(st *state, in []PortBinding, ip netip.Addr) ([]PortBinding, error) {
	var held []PortBinding
	for _, e := range st.Endpoints {
		held = append(held, e.Ports...)
	}
	var out []PortBinding
	free := func(p PortBinding) error {
		if slices.ContainsFunc(held, func(h PortBinding) bool { return clashes(h, p) }) {
			return fmt.Errorf("Bind for %s failed: port is already allocated: %w", p.hostAddr(), errdefs.ErrConflict)
		}
		if err := trialBind(p); err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				err = errno
			}
			return fmt.Errorf("failed to bind host port for %s:%s:%d/%s: %w: %w", p.hostAddr(), ip, p.ContainerPort, p.Proto, err, errdefs.ErrConflict)
		}
		return nil
	}
	for _, p := range in {
		if p.HostPort != 0 && p.HostPortEnd == 0 {
			if err := free(p); err != nil {
				return nil, err
			}
		} else {
			lo, hi := m.opts.PortRange[0], m.opts.PortRange[1]
			if p.HostPort != 0 {
				lo, hi = p.HostPort, p.HostPortEnd
			}
			n := int(hi) - int(lo) + 1
			start := rand.IntN(n)
			found := false
			for i := range n {
				p.HostPort = uint16(int(lo) + (start+i)%n)
				if free(p) == nil {
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("no free host port in %d-%d for %d/%s: %w", lo, hi, p.ContainerPort, p.Proto, errdefs.ErrUnavailable)
			}
			p.HostPortEnd = 0
		}
		held = append(held, p)
		out = append(out, p)
	}
	return out, nil
}

// trialBind checks that no host process has the socket; tcp and udp only.
func trialBind(p PortBinding) error {
	switch p.Proto {
	case "tcp":
		l, err := net.Listen("tcp4", p.hostAddr())
		if err != nil {
			return err
		}
		return l.Close()
	case "udp":
		c, err := net.ListenPacket("udp4", p.hostAddr())
		if err != nil {
			return err
		}
		return c.Close()
	}
	return nil
}

// Publish publishes ports through the container's existing endpoint on
// network (name, ID or unique ID prefix), resolving host port 0 as Attach
// does: what moves a container's published ports to another of its
// networks when `network disconnect` removes the endpoint that carried
// them, or onto the first network a running container joins. It returns
// the endpoint with its Ports. The endpoint must carry no ports yet.
//
// Errors: errdefs.ErrNotFound for an unknown network or no (ready)
// endpoint of the container on it; errdefs.ErrInvalidArgument for a bad
// port, ports on a driver network (CNI chooses its own) or an endpoint
// that already publishes ports; errdefs.ErrConflict when a host port is
// taken; errdefs.ErrUnavailable when the port range is exhausted. On
// error nothing is left behind.
func (m *Manager) Publish(ctx context.Context, network, containerID string, ports []PortBinding) (Endpoint, error) {
	var out Endpoint
	err := m.txn(ctx, func(st *state, save func() error) error {
		n, err := st.find(network)
		if err != nil {
			return err
		}
		e, ok := st.Endpoints[epKey(containerID, n.ID)]
		if !ok || !e.Ready {
			return fmt.Errorf("container %.12s is not connected to network %s: %w", containerID, n.Name, errdefs.ErrNotFound)
		}
		if n.usesDriver() {
			return fmt.Errorf("publishing ports is not supported on network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrInvalidArgument)
		}
		if len(e.Ports) > 0 {
			return fmt.Errorf("container %.12s already publishes ports on network %s: %w", containerID, n.Name, errdefs.ErrInvalidArgument)
		}
		for _, p := range ports {
			if err := p.validate(); err != nil {
				return err
			}
		}
		ip := e.Address.Addr()
		resolved, err := m.resolvePorts(st, ports, ip)
		if err != nil {
			return err
		}
		var rules []firewall.Rule
		for _, p := range resolved {
			rules = append(rules, m.fw.PortRules(n.Bridge, p.HostIP, p.HostPort, p.Proto, ip, p.ContainerPort)...)
		}
		// Recorded before the rules exist, as in Attach: a crash leaves
		// rules the endpoint's teardown deletes.
		prevRules := e.Rules
		e.Ports, e.Rules = resolved, append(slices.Clone(e.Rules), rules...)
		if err := save(); err != nil {
			e.Ports, e.Rules = nil, prevRules
			return err
		}
		for i, r := range rules {
			if err := m.fw.Add(ctx, r); err != nil {
				for _, done := range slices.Backward(rules[:i+1]) {
					m.fw.Delete(ctx, done)
				}
				e.Ports, e.Rules = nil, prevRules
				return errors.Join(err, save())
			}
		}
		out = e.Endpoint
		return nil
	})
	return out, err
}
