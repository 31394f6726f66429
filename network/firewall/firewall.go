// Package firewall manages berth's iptables rules. Every rule berth adds
// lives in chains of its own, named <prefix>, <prefix>-FORWARD,
// <prefix>-ISOLATION-1, <prefix>-ISOLATION-2, <prefix>-INPUT (filter table)
// and <prefix>, <prefix>-POSTROUTING (nat table), which are reached by one
// jump each from the built-in INPUT, FORWARD, PREROUTING, OUTPUT and
// POSTROUTING chains. Berth never flushes a chain and never deletes a rule it
// did not add: callers record the exact Rule values they add (before adding
// them, for crash safety) and delete exactly those. Adding and deleting are
// idempotent (checked with iptables -C first), so replaying a record after a
// crash is safe.
//
// The iptables binary is run with -w, so concurrent berth processes and other
// firewall tools serialise on the xtables lock.
package firewall

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Rule is one iptables rule: table ("filter", "nat"), chain and the match
// and target arguments as given to iptables -A.
type Rule struct {
	Table string   `json:"table"`
	Chain string   `json:"chain"`
	Args  []string `json:"args"`
}

func (r Rule) String() string {
	return fmt.Sprintf("-t %s -A %s %s", r.Table, r.Chain, strings.Join(r.Args, " "))
}

// Firewall runs iptables with berth's chain names.
type Firewall struct {
	// Prefix names the chains (default "BERTH"). Tests use another prefix so
	// they do not touch a real installation's rules.
	Prefix string
	// Binary is the iptables command (default "iptables").
	Binary string
}

// New returns a Firewall using chains named with prefix ("" means "BERTH").
func New(prefix string) *Firewall {
	if prefix == "" {
		prefix = "BERTH"
	}
	return &Firewall{Prefix: prefix, Binary: "iptables"}
}

// Chain names.
func (f *Firewall) natChain() string   { return f.Prefix }
func (f *Firewall) postChain() string  { return f.Prefix + "-POSTROUTING" }
func (f *Firewall) fwdChain() string   { return f.Prefix + "-FORWARD" }
func (f *Firewall) iso1() string       { return f.Prefix + "-ISOLATION-1" }
func (f *Firewall) iso2() string       { return f.Prefix + "-ISOLATION-2" }
func (f *Firewall) inputChain() string { return f.Prefix + "-INPUT" }

func (f *Firewall) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, f.Binary, append([]string{"-w"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (f *Firewall) exists(ctx context.Context, table, chain string, args []string) bool {
	_, err := f.run(ctx, append([]string{"-t", table, "-C", chain}, args...)...)
	return err == nil
}

// Add appends r unless an identical rule is already present.
func (f *Firewall) Add(ctx context.Context, r Rule) error {
	if f.exists(ctx, r.Table, r.Chain, r.Args) {
		return nil
	}
	_, err := f.run(ctx, append([]string{"-t", r.Table, "-A", r.Chain}, r.Args...)...)
	return err
}

// Delete removes r; a rule (or chain) that is not there is not an error.
func (f *Firewall) Delete(ctx context.Context, r Rule) error {
	if !f.exists(ctx, r.Table, r.Chain, r.Args) {
		return nil
	}
	_, err := f.run(ctx, append([]string{"-t", r.Table, "-D", r.Chain}, r.Args...)...)
	return err
}

type jump struct {
	table, from, to string
	match           []string
}

func (f *Firewall) jumps() []jump {
	local := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
	return []jump{
		{"filter", "INPUT", f.inputChain(), nil},
		{"filter", "FORWARD", f.fwdChain(), nil},
		{"filter", "FORWARD", f.iso1(), nil}, // inserted last, so it comes first
		{"nat", "PREROUTING", f.natChain(), local},
		{"nat", "OUTPUT", f.natChain(), local},
		{"nat", "POSTROUTING", f.postChain(), nil},
	}
}

// EnsureBase creates berth's chains and the jumps to them from the built-in
// chains (inserted at the top), the ISOLATION-2 catch-all, and the INPUT
// guard that drops non-loopback packets addressed to 127.0.0.0/8 which
// were not DNATed (route_localnet hardening, as kube-proxy does). Idempotent.
func (f *Firewall) EnsureBase(ctx context.Context) error {
	for _, c := range [][2]string{{"filter", f.fwdChain()}, {"filter", f.iso1()}, {"filter", f.iso2()}, {"filter", f.inputChain()}, {"nat", f.natChain()}, {"nat", f.postChain()}} {
		if _, err := f.run(ctx, "-t", c[0], "-n", "-L", c[1]); err != nil {
			if _, err := f.run(ctx, "-t", c[0], "-N", c[1]); err != nil && !strings.Contains(err.Error(), "exists") {
				return err
			}
		}
	}
	guard := Rule{"filter", f.inputChain(), []string{"-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "!", "-i", "lo", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"}}
	if err := f.Add(ctx, guard); err != nil {
		return err
	}
	for _, j := range f.jumps() {
		args := append(append([]string{}, j.match...), "-j", j.to)
		if f.exists(ctx, j.table, j.from, args) {
			continue
		}
		if _, err := f.run(ctx, append([]string{"-t", j.table, "-I", j.from, "1"}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// RemoveBaseIfUnused deletes the jumps and berth's chains when every chain
// holds nothing but what EnsureBase put there, i.e. when no network of any
// berth installation using this prefix has rules left. It is safe to call
// any time; chains still in use are left alone.
func (f *Firewall) RemoveBaseIfUnused(ctx context.Context) error {
	expect := map[string]int{f.fwdChain(): 0, f.iso1(): 0, f.iso2(): 0, f.inputChain(): 1, f.natChain(): 0, f.postChain(): 0}
	tables := map[string]string{f.fwdChain(): "filter", f.iso1(): "filter", f.iso2(): "filter", f.inputChain(): "filter", f.natChain(): "nat", f.postChain(): "nat"}
	for c, n := range expect {
		out, err := f.run(ctx, "-t", tables[c], "-S", c)
		if err != nil {
			continue // chain missing
		}
		if rules := strings.Count(out, "\n-A "); rules+boolInt(strings.HasPrefix(out, "-A ")) > n {
			return nil
		}
	}
	for _, j := range f.jumps() {
		args := append(append([]string{}, j.match...), "-j", j.to)
		if err := f.Delete(ctx, Rule{j.table, j.from, args}); err != nil {
			return err
		}
	}
	for c, t := range tables {
		if _, err := f.run(ctx, "-t", t, "-S", c); err != nil {
			continue
		}
		if _, err := f.run(ctx, "-t", t, "-F", c); err != nil { // only berth's own rules are left here
			return err
		}
		if _, err := f.run(ctx, "-t", t, "-X", c); err != nil {
			return err
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NetworkRules returns the rules for a bridge network: forwarding for its
// bridge, isolation from other berth bridges and, unless internal,
// masquerading of traffic from subnet leaving through another interface and
// of host-originated (e.g. 127.0.0.1) traffic entering the bridge after DNAT.
// An internal network has no outbound access (Docker's --internal).
func (f *Firewall) NetworkRules(bridge string, subnet netip.Prefix, internal bool) []Rule {
	s := subnet.String()
	rules := []Rule{
		{"filter", f.iso1(), []string{"-i", bridge, "!", "-o", bridge, "-j", f.iso2()}},
		{"filter", f.iso2(), []string{"-o", bridge, "-j", "DROP"}},
		{"filter", f.fwdChain(), []string{"-i", bridge, "-o", bridge, "-j", "ACCEPT"}},
		{"nat", f.postChain(), []string{"-o", bridge, "-m", "addrtype", "--src-type", "LOCAL", "-j", "MASQUERADE"}},
	}
	if internal {
		return append(rules,
			Rule{"filter", f.fwdChain(), []string{"-i", bridge, "!", "-o", bridge, "-j", "DROP"}},
			Rule{"filter", f.fwdChain(), []string{"-o", bridge, "!", "-i", bridge, "-j", "DROP"}},
		)
	}
	return append(rules,
		Rule{"filter", f.fwdChain(), []string{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}},
		Rule{"filter", f.fwdChain(), []string{"-i", bridge, "!", "-o", bridge, "-j", "ACCEPT"}},
		Rule{"nat", f.postChain(), []string{"-s", s, "!", "-o", bridge, "-j", "MASQUERADE"}},
	)
}

// PortRules returns the rules publishing hostIP:hostPort/proto to
// containerIP:containerPort on bridge: a DNAT in the nat chain (reached for
// every locally addressed packet, from outside via PREROUTING and from the
// host itself, loopback included, via OUTPUT) and an ACCEPT in the forward
// chain. A zero or unspecified hostIP means every host address.
func (f *Firewall) PortRules(bridge string, hostIP netip.Addr, hostPort uint16, proto string, containerIP netip.Addr, containerPort uint16) []Rule {
	dnat := []string{}
	if hostIP.IsValid() && !hostIP.IsUnspecified() {
		dnat = append(dnat, "-d", hostIP.String()+"/32")
	}
	dnat = append(dnat, "-p", proto, "-m", proto, "--dport", strconv.Itoa(int(hostPort)),
		"-j", "DNAT", "--to-destination", netip.AddrPortFrom(containerIP, containerPort).String())
	return []Rule{
		{"nat", f.natChain(), dnat},
		{"filter", f.fwdChain(), []string{"-d", containerIP.String() + "/32", "-o", bridge, "-p", proto, "-m", proto, "--dport", strconv.Itoa(int(containerPort)), "-j", "ACCEPT"}},
	}
}

// EnableForwarding turns on IPv4 forwarding for the host (as Docker does
// when it creates its bridge) and route_localnet on bridge, so that packets
// from 127.0.0.1 DNATed to a container may leave through the bridge; the
// MASQUERADE rule from NetworkRules then rewrites their source to the
// bridge's address.
func EnableForwarding(bridge string) error {
	if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	return writeSysctl("/proc/sys/net/ipv4/conf/"+bridge+"/route_localnet", "1")
}

func writeSysctl(path, v string) error {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == v {
		return nil
	}
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		return fmt.Errorf("sysctl %s: %w", path, err)
	}
	return nil
}
