package network

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/network/bridge"
	"github.com/berthproject/berth/network/netns"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

const (
	testPrefix = "BERTHTEST"
	crashEnv   = "BERTH_NETWORK_TEST_CRASH"
)

func TestMain(m *testing.M) {
	if v := os.Getenv(crashEnv); v != "" {
		crashChild(v)
		return
	}
	os.Exit(m.Run())
}

// crashChild attaches a container and kills itself with SIGKILL at a step.
func crashChild(v string) {
	f := strings.Split(v, "|") // stateDir|netnsPath|network|containerID|step
	m, err := Open(f[0], Options{ChainPrefix: testPrefix})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	testHook = func(step string) {
		if step == f[4] {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	ports, _ := ParsePortSpecs([]string{"127.0.0.1::80", "5353:53/udp"}, nil, false)
	_, err = m.Attach(context.Background(), f[2], f[3], f[1], AttachOptions{Ports: ports})
	fmt.Fprintln(os.Stderr, "attach returned without crashing:", err)
	os.Exit(2)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables")
	}
}

// iptablesSave returns the host's rules that mention this test's chain
// prefix (rules and chains of other engines running at the same time, such
// as the integration tests', are not this test's business), in order.
func iptablesSave(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			keep = append(keep, l) // table
		case strings.HasPrefix(l, ":") && strings.Contains(l, testPrefix):
			keep = append(keep, strings.Fields(l)[0]) // chain, without counters
		case strings.HasPrefix(l, "-A") && strings.Contains(l, testPrefix):
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func berthRuleCount(t testing.TB) int {
	return strings.Count(iptablesSave(t), testPrefix)
}

// newManager returns a Manager on a temporary state dir using test chains,
// and registers cleanup that removes every network it created.
func newManager(t testing.TB) *Manager {
	t.Helper()
	m, err := Open(t.TempDir(), Options{ChainPrefix: testPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		m.Reclaim(ctx, nil)
		m.txn(ctx, func(st *state, save func() error) error {
			for _, n := range st.Networks {
				if err := m.remove(ctx, st, n); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
			return nil
		})
	})
	return m
}

func newNetns(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ns")
	if err := netns.New(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		netns.Remove(p)
		syscall.Unmount(filepath.Dir(p), syscall.MNT_DETACH) // New made the dir a shared mount
	})
	return p
}

func checkHostRoutesFree(t testing.TB, p netip.Prefix) {
	t.Helper()
	routes, _ := netlink.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, _ := netip.AddrFromSlice(r.Dst.IP.To4())
		if ones > 0 && netip.PrefixFrom(a, ones).Overlaps(p) {
			t.Skipf("host route %v overlaps test subnet %s", r.Dst, p)
		}
	}
}

func createNet(t testing.TB, m *Manager, name, br, subnet string) Network {
	t.Helper()
	checkHostRoutesFree(t, netip.MustParsePrefix(subnet))
	n, err := m.Create(context.Background(), CreateOptions{Name: name, Subnet: netip.MustParsePrefix(subnet),
		Options: map[string]string{optBridgeName: br}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ping(nsPath string, dst netip.Addr) error {
	return exec.Command("nsenter", "--net="+nsPath, "busybox", "ping", "-c1", "-W2", dst.String()).Run()
}

func TestBridgePingBetweenNamespaces(t *testing.T) {
	requireRoot(t)
	before := iptablesSave(t)
	ctx := context.Background()
	func() {
		m := newManager(t)
		n := createNet(t, m, "t-ping", "btping0", "10.213.1.0/24")
		if !bridge.Exists("btping0") {
			t.Fatal("bridge not created")
		}
		ns1, ns2 := newNetns(t), newNetns(t)
		e1, err := m.Attach(ctx, "t-ping", "c1", ns1, AttachOptions{ContainerName: "one", Aliases: []string{"db"}})
		if err != nil {
			t.Fatal(err)
		}
		e2, err := m.Attach(ctx, n.ID[:8], "c2", ns2, AttachOptions{IP: netip.MustParseAddr("10.213.1.77")})
		if err != nil {
			t.Fatal(err)
		}
		if e1.Address.String() != "10.213.1.2/24" || e2.Address.String() != "10.213.1.77/24" || e1.IfName != "eth0" {
			t.Fatalf("endpoints %+v %+v", e1, e2)
		}
		if err := ping(ns1, e2.Address.Addr()); err != nil {
			t.Fatalf("ping ns1 -> ns2: %v", err)
		}
		if err := ping(ns2, n.Gateway); err != nil {
			t.Fatalf("ping ns2 -> gateway: %v", err)
		}
		// Second network on the same container: eth1, and isolation between bridges.
		createNet(t, m, "t-ping2", "btping1", "10.213.2.0/24")
		ns3 := newNetns(t)
		e3, err := m.Attach(ctx, "t-ping2", "c3", ns3, AttachOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ping(ns3, e1.Address.Addr()); err == nil {
			t.Fatal("networks are not isolated")
		}
		e1b, err := m.Attach(ctx, "t-ping2", "c1", ns1, AttachOptions{})
		if err != nil || e1b.IfName != "eth1" {
			t.Fatalf("connect second network: %+v %v", e1b, err)
		}
		if err := ping(ns1, e3.Address.Addr()); err != nil {
			t.Fatalf("ping over second network: %v", err)
		}
		// Errors.
		if _, err := m.Attach(ctx, "t-ping", "c1", ns1, AttachOptions{}); !errdefs.IsConflict(err) {
			t.Errorf("double attach: %v", err)
		}
		if _, err := m.Attach(ctx, "t-ping", "c9", ns3, AttachOptions{IP: netip.MustParseAddr("10.213.1.77")}); !errdefs.IsConflict(err) {
			t.Errorf("IP in use: %v", err)
		}
		if _, err := m.Attach(ctx, "t-ping", "c9", ns3, AttachOptions{IP: netip.MustParseAddr("10.213.9.7")}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("IP outside subnet: %v", err)
		}
		if _, err := m.Attach(ctx, "nope", "c9", ns3, AttachOptions{}); !errdefs.IsNotFound(err) {
			t.Errorf("unknown network: %v", err)
		}
		if err := m.Remove(ctx, "t-ping"); !errdefs.IsPermissionDenied(err) || !strings.Contains(err.Error(), "network t-ping has active endpoints") {
			t.Errorf("remove network in use: %v", err)
		}
		n2, _ := m.Inspect(ctx, "t-ping")
		if len(n2.Endpoints) != 2 || n2.Endpoints[0].Aliases[0] != "db" {
			t.Errorf("inspect endpoints: %+v", n2.Endpoints)
		}
		// Disconnect, idempotently.
		for range 2 {
			if err := m.Detach(ctx, "t-ping2", "c1"); err != nil {
				t.Fatal(err)
			}
		}
		eps, _ := m.Endpoints(ctx, "c1")
		if len(eps) != 1 {
			t.Fatalf("endpoints after detach: %+v", eps)
		}
		for _, c := range []string{"c1", "c2", "c3"} {
			if err := m.ReleaseAll(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if bridge.Exists(e1.HostIfName) {
			t.Fatal("veth left after ReleaseAll")
		}
		if err := m.Remove(ctx, "t-ping"); err != nil {
			t.Fatal(err)
		}
		if bridge.Exists("btping0") {
			t.Fatal("bridge left after Remove")
		}
		if pruned, err := m.Prune(ctx); err != nil || len(pruned) != 1 || pruned[0] != "t-ping2" {
			t.Fatalf("prune: %v %v", pruned, err)
		}
		if err := m.Remove(ctx, "t-ping"); !errdefs.IsNotFound(err) {
			t.Errorf("remove twice: %v", err)
		}
	}()
	if after := iptablesSave(t); after != before {
		t.Errorf("iptables differ after cleanup:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestCreateValidation(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	m := newManager(t)
	createNet(t, m, "t-val", "btval0", "10.213.12.0/24")
	for _, tc := range []struct {
		o     CreateOptions
		check func(error) bool
	}{
		{CreateOptions{Name: "t-val", Subnet: netip.MustParsePrefix("10.213.4.0/24")}, errdefs.IsConflict},
		{CreateOptions{Name: "x1", Subnet: netip.MustParsePrefix("10.213.12.128/25")}, errdefs.IsConflict},
		{CreateOptions{Name: "x2", Subnet: netip.MustParsePrefix("10.213.4.1/24")}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "x3", Subnet: netip.MustParsePrefix("10.213.4.0/24"), Gateway: netip.MustParseAddr("10.213.5.1")}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "x4", Subnet: netip.MustParsePrefix("10.213.4.0/24"), IPRange: netip.MustParsePrefix("10.213.0.0/16")}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "x5", Gateway: netip.MustParseAddr("10.213.5.1")}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "host"}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "bad name"}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "x6", Driver: "overlay"}, errdefs.IsInvalidArgument},
		{CreateOptions{Name: "x7", Subnet: netip.MustParsePrefix("10.213.4.0/24"), Options: map[string]string{optBridgeName: "btval0"}}, errdefs.IsConflict},
		{CreateOptions{Name: "x8", Subnet: netip.MustParsePrefix("10.213.4.0/24"), Options: map[string]string{optBridgeName: "lo"}}, errdefs.IsConflict},
	} {
		if _, err := m.Create(ctx, tc.o); !tc.check(err) {
			t.Errorf("%+v: wrong error %v", tc.o, err)
		}
	}
	nets, err := m.List(ctx)
	if err != nil || len(nets) != 1 {
		t.Fatalf("failed creates left networks: %+v %v", nets, err)
	}
	// Auto subnet avoids the pool's taken /24s.
	m.opts.AddressPool = netip.MustParsePrefix("10.213.12.0/23")
	n, err := m.Create(ctx, CreateOptions{Name: "t-auto", Options: map[string]string{optBridgeName: "btval1"}})
	if err != nil || n.Subnet.String() != "10.213.13.0/24" || n.Gateway.String() != "10.213.13.1" {
		t.Fatalf("auto subnet: %+v %v", n, err)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "t-auto2", Options: map[string]string{optBridgeName: "btval2"}}); !errdefs.IsUnavailable(err) {
		t.Fatalf("pool exhausted: %v", err)
	}
}

func TestSubnetExhaustionNoLeak(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	m := newManager(t)
	n := createNet(t, m, "t-small", "btsmall0", "10.213.5.0/29") // 5 usable
	for i := range 6 {
		ns := newNetns(t)
		_, err := m.Attach(ctx, "t-small", fmt.Sprintf("s%d", i), ns, AttachOptions{})
		if i < 5 && err != nil {
			t.Fatal(err)
		}
		if i == 5 && (!errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "no available IPv4 addresses")) {
			t.Fatalf("6th attach: %v", err)
		}
	}
	allocs, _ := m.ipam.Allocations(ctx, n.ID)
	if len(allocs) != 5 || bridge.Exists(bridge.HostVethName("s5", n.ID)) {
		t.Fatalf("failed attach leaked: %v", allocs)
	}
}

func TestPublishPorts(t *testing.T) {
	requireRoot(t)
	before := iptablesSave(t)
	ctx := context.Background()
	func() {
		m := newManager(t)
		createNet(t, m, "t-port", "btport0", "10.213.6.0/24")
		ns := newNetns(t)
		// A TCP server whose socket lives in the namespace.
		var ln net.Listener
		if err := netns.Do(ns, func() error {
			// The namespace's interfaces do not exist yet; listen on any.
			var err error
			ln, err = net.Listen("tcp4", "0.0.0.0:80")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, "hello from ns\n")
				c.Close()
			}
		}()
		ports, err := ParsePortSpecs([]string{"127.0.0.1::80", "0.0.0.0::80/udp"}, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		e, err := m.Attach(ctx, "t-port", "web", ns, AttachOptions{Ports: ports})
		if err != nil {
			t.Fatal(err)
		}
		hp := e.Ports[0].HostPort
		if hp == 0 || e.Ports[1].HostPort == 0 {
			t.Fatalf("host ports not resolved: %+v", e.Ports)
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hp), 3*time.Second)
		if err != nil {
			t.Fatalf("connect to published port: %v", err)
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(c)
		c.Close()
		if string(got) != "hello from ns\n" {
			t.Fatalf("got %q", got)
		}
		// Same port: conflict for tcp on the same or all addresses; udp and
		// other host IPs are fine.
		ns2 := newNetns(t)
		same := PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hp, ContainerPort: 80, Proto: "tcp"}
		if _, err := m.Attach(ctx, "t-port", "web2", ns2, AttachOptions{Ports: []PortBinding{same}}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "already allocated") {
			t.Fatalf("conflict: %v", err)
		}
		all := same
		all.HostIP = netip.Addr{}
		if _, err := m.Attach(ctx, "t-port", "web2", ns2, AttachOptions{Ports: []PortBinding{all}}); !errdefs.IsConflict(err) {
			t.Fatalf("conflict with 0.0.0.0: %v", err)
		}
		udp, other := same, same
		udp.Proto = "udp"
		other.HostIP = netip.MustParseAddr("127.0.0.2")
		if _, err := m.Attach(ctx, "t-port", "web2", ns2, AttachOptions{Ports: []PortBinding{udp, other}}); err != nil {
			t.Fatalf("udp / other IP should not conflict: %v", err)
		}
		// A host process holding a port is detected.
		hl, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		taken := uint16(hl.Addr().(*net.TCPAddr).Port)
		ns3 := newNetns(t)
		_, err = m.Attach(ctx, "t-port", "web3", ns3, AttachOptions{Ports: []PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: taken, ContainerPort: 80, Proto: "tcp"}}})
		hl.Close()
		if !errdefs.IsConflict(err) {
			t.Fatalf("port held by host process: %v", err)
		}
		// Released ports are free again immediately.
		if err := m.ReleaseAll(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Attach(ctx, "t-port", "web3", ns3, AttachOptions{Ports: []PortBinding{same}}); err != nil {
			t.Fatalf("port not freed: %v", err)
		}
		for _, c := range []string{"web2", "web3"} {
			if err := m.ReleaseAll(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Remove(ctx, "t-port"); err != nil {
			t.Fatal(err)
		}
	}()
	if after := iptablesSave(t); after != before {
		t.Errorf("iptables differ after cleanup:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestCrashDuringAttachIsReclaimed(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, step := range []string{"allocated", "recorded", "veth", "rules"} {
		t.Run(step, func(t *testing.T) {
			m := newManager(t)
			n := createNet(t, m, "t-crash", "btcrash0", "10.213.10.0/24")
			rulesBefore := berthRuleCount(t)
			ns := newNetns(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), crashEnv+"="+strings.Join([]string{m.dir, ns, "t-crash", "victim", step}, "|"))
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v %s", err, out)
			}
			allocs, _ := m.ipam.Allocations(ctx, n.ID)
			if len(allocs) != 1 {
				t.Fatalf("expected the crashed child to hold an address, got %v", allocs)
			}
			if step == "rules" && !bridge.Exists(bridge.HostVethName("victim", n.ID)) {
				t.Fatal("expected a leftover veth")
			}
			if err := m.Reclaim(ctx, []string{"someone-else"}); err != nil {
				t.Fatal(err)
			}
			if allocs, _ := m.ipam.Allocations(ctx, n.ID); len(allocs) != 0 {
				t.Errorf("leaked addresses: %v", allocs)
			}
			if bridge.Exists(bridge.HostVethName("victim", n.ID)) {
				t.Error("leaked veth")
			}
			if got := berthRuleCount(t); got != rulesBefore {
				t.Errorf("leaked rules: %d berth rule lines, want %d", got, rulesBefore)
			}
			if eps, _ := m.Endpoints(ctx, "victim"); len(eps) != 0 {
				t.Errorf("leaked endpoint records: %+v", eps)
			}
			// The container can attach again.
			if _, err := m.Attach(ctx, "t-crash", "victim", ns, AttachOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func BenchmarkAttachDetach(b *testing.B) {
	requireRoot(b)
	ctx := context.Background()
	m := newManager(b)
	createNet(b, m, "t-bench", "btbench0", "10.213.11.0/24")
	ns := newNetns(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Attach(ctx, "t-bench", "bench", ns, AttachOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := m.Detach(ctx, "t-bench", "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
