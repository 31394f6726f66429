package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	"github.com/berthproject/berth/network/bridge"
)

// httpdScript prints the container's address, then serves "hello from
// NAME" on port 80 with busybox httpd.
func httpdScript(name string) string {
	return fmt.Sprintf("hostname -i; mkdir -p /www && echo 'hello from %s' > /www/index.html && exec httpd -f -p 80 -h /www", name)
}

// waitLog polls a container's log until it has a first line (at most
// 20 s: a loaded machine can be slow to start it).
func (e *env) waitLog(name string) string {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out := e.berth("logs", name).stdout; strings.Contains(out, "\n") {
			return strings.SplitN(out, "\n", 2)[0]
		}
	}
	e.t.Fatalf("container %s logged nothing", name)
	return ""
}

func TestDefaultBridge(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	port := testutil.FreePort(t)
	e.ok("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "sh", "-c", httpdScript("web"))
	ip := e.waitLog("web")
	if !strings.HasPrefix(ip, "10.79.") {
		t.Fatalf("container address %q is not in the env's default subnet", ip)
	}
	// Another container reaches it by address through the bridge.
	var out string
	for i := 0; i < 50; i++ {
		if r := e.berth("run", "--rm", ref, "wget", "-qO-", "http://"+ip+"/"); r.code == 0 {
			out = r.stdout
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out != "hello from web\n" {
		t.Fatalf("container to container: got %q", out)
	}
	// The host reaches the published port on loopback.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("published port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello from web\n" {
		t.Fatalf("published port: got %q", body)
	}
	// The port is taken while web runs, and free again once it is gone.
	r := e.berth("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "true")
	if r.code != 125 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("second use of port %d: exit %d stderr %q", port, r.code, r.stderr)
	}
	e.ok("rm", "-f", "web")
	e.ok("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "true")
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatalf("port %d still answers after its container was removed", port)
	}
}

// userSubnets hands out /24s of 10.79.220.0-10.79.255.0 for user-defined
// networks: newEnv gives default bridges 10.79.20-219, so these never
// overlap another test's network on the host.
var userSubnets atomic.Int32

func nextUserSubnet(bits int) string {
	n := (os.Getpid() + int(userSubnets.Add(1))) % 36
	return fmt.Sprintf("10.79.%d.0/%d", 220+n, bits)
}

// network creates a user-defined network with a fresh subnet of size /bits
// and returns its ID and subnet; newEnv's cleanup removes it.
func (e *env) network(name string, bits int, extra ...string) (id, subnet string) {
	e.t.Helper()
	subnet = nextUserSubnet(bits)
	id = strings.TrimSpace(e.ok(append(append([]string{"network", "create", "--subnet", subnet}, extra...), name)...))
	return id, subnet
}

// inspectNet returns `network inspect` of one network.
func (e *env) inspectNet(name string) netInspect {
	e.t.Helper()
	var docs []netInspect
	if err := json.Unmarshal([]byte(e.ok("network", "inspect", name)), &docs); err != nil || len(docs) != 1 {
		e.t.Fatalf("network inspect %s: %v (%d documents)", name, err, len(docs))
	}
	return docs[0]
}

type netInspect struct {
	Name, Id, Driver, Scope string
	Internal                bool
	IPAM                    struct {
		Driver string
		Config []struct{ Subnet, Gateway, IPRange string }
	}
	Containers map[string]struct{ Name, EndpointID, MacAddress, IPv4Address string }
	Labels     map[string]string
	Options    map[string]string
}

// bridgeOf is the Linux bridge of a user-defined network.
func bridgeOf(id string) string { return "br-" + id[:12] }

// portsOn lists the host ends of veths enslaved to bridge.
func portsOn(bridge string) []string {
	out, _ := exec.Command("ip", "-o", "link", "show", "master", bridge).Output()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// linkGone reports whether the host link name is absent, polling up to
// limit for a link the kernel deletes in the background.
func linkGone(name string, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		if exec.Command("ip", "link", "show", name).Run() != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// rulesWith returns the iptables rules (nat and filter) whose text
// contains s.
func rulesWith(s string) []string {
	var out []string
	for _, table := range []string{"nat", "filter"} {
		b, _ := exec.Command("iptables-save", "-t", table).Output()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "-A ") && strings.Contains(l, s) {
				out = append(out, l)
			}
		}
	}
	return out
}

// allocations reads the address allocations of network id.
func (e *env) allocations(id string) map[string]string {
	var pool struct{ Allocations map[string]string }
	b, err := os.ReadFile(filepath.Join(e.root, "network", "ipam", id+".json"))
	if err == nil {
		json.Unmarshal(b, &pool)
	}
	return pool.Allocations
}

func oneLine(r result) bool {
	s := strings.TrimSpace(r.stderr)
	return s != "" && !strings.Contains(s, "\n")
}

func TestNetworkVerbs(t *testing.T) {
	e := newEnv(t)
	id, subnet := e.network("front", 24, "--label", "tier=web", "-o", "com.docker.network.driver.mtu=1400")
	if len(id) != 64 {
		t.Fatalf("create printed %q, want a 64-digit ID", id)
	}
	ls := e.ok("network", "ls")
	for _, want := range []string{"NETWORK ID", "bridge", "host", "none", "front", id[:12]} {
		if !strings.Contains(ls, want) {
			t.Fatalf("network ls lacks %q:\n%s", want, ls)
		}
	}
	if got := strings.Fields(e.ok("network", "ls", "-q", "--filter", "type=custom")); len(got) != 1 || got[0] != id[:12] {
		t.Fatalf("ls -q type=custom: %v", got)
	}
	if got := strings.Fields(e.ok("network", "ls", "--filter", "type=builtin", "--format", "{{.Name}}")); strings.Join(got, " ") != "bridge host none" {
		t.Fatalf("ls type=builtin: %v", got)
	}
	if got := strings.TrimSpace(e.ok("network", "ls", "--filter", "label=tier=web", "--filter", "driver=bridge", "--format", "{{.Name}}")); got != "front" {
		t.Fatalf("ls label filter: %q", got)
	}
	if got := strings.TrimSpace(e.ok("network", "ls", "--filter", "name=fro", "--filter", "id="+id[:5], "--format", "{{.ID}} {{.Scope}}")); got != id[:12]+" local" {
		t.Fatalf("ls name/id filter: %q", got)
	}
	if r := e.berth("network", "ls", "--filter", "colour=red"); r.code != 1 || !oneLine(r) {
		t.Fatalf("bad filter: exit %d %q", r.code, r.stderr)
	}
	n := e.inspectNet("front")
	if n.Id != id || n.Driver != "bridge" || n.Scope != "local" || n.IPAM.Driver != "default" || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet != subnet || n.Labels["tier"] != "web" || n.Options["com.docker.network.driver.mtu"] != "1400" || n.Containers == nil {
		t.Fatalf("inspect: %+v", n)
	}
	if out, err := exec.Command("ip", "link", "show", bridgeOf(id)).CombinedOutput(); err != nil || !strings.Contains(string(out), "mtu 1400") {
		t.Fatalf("bridge %s: %v %s", bridgeOf(id), err, out)
	}
	if len(rulesWith(bridgeOf(id))) == 0 {
		t.Fatalf("no iptables rules for %s", bridgeOf(id))
	}

	// Bad input: one line, exit 1, nothing created.
	before := e.ok("network", "ls", "-q")
	for _, args := range [][]string{
		{"create", "--subnet", "10.79.300.0/24", "bad1"},
		{"create", "--subnet", "10.79.5.7/24", "bad2"},
		{"create", "--subnet", subnet, "bad3"}, // overlaps front
		{"create", "--subnet", nextUserSubnet(24), "--gateway", "192.0.2.1", "bad4"},
		{"create", "--subnet", nextUserSubnet(24), "--ip-range", "192.0.2.0/28", "bad5"},
		{"create", "-d", "overlay", "bad6"},
		{"create", "front"},
		{"create", "host"},
		{"rm", "nosuchnet"},
		{"rm", "bridge"},
		{"inspect", "nosuchnet"},
		{"connect", "nosuchnet", "nosuchcontainer"},
	} {
		r := e.berth(append([]string{"network"}, args...)...)
		if r.code != 1 || !oneLine(r) {
			t.Errorf("network %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if after := e.ok("network", "ls", "-q"); after != before {
		t.Fatalf("failed creates left networks:\n%s", after)
	}

	// rm removes the bridge and every rule; prune removes unused ones.
	e.ok("network", "rm", "front")
	if exec.Command("ip", "link", "show", bridgeOf(id)).Run() == nil {
		t.Fatalf("bridge %s still exists", bridgeOf(id))
	}
	if r := rulesWith(bridgeOf(id)); len(r) > 0 {
		t.Fatalf("rules left: %v", r)
	}
	id2, _ := e.network("spare", 24)
	if out := e.ok("network", "prune", "-f"); !strings.Contains(out, "Deleted Networks:\nspare\n") {
		t.Fatalf("prune printed %q", out)
	}
	if exec.Command("ip", "link", "show", bridgeOf(id2)).Run() == nil || len(rulesWith(bridgeOf(id2))) > 0 {
		t.Fatalf("prune left bridge or rules of %s", bridgeOf(id2))
	}
}

// retry runs berth until it exits 0 (for at most ~5s) and returns stdout.
func (e *env) retry(args ...string) result {
	e.t.Helper()
	var r result
	for i := 0; i < 50; i++ {
		if r = e.berth(args...); r.code == 0 {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r
}

func TestNetworkNamesConnectPorts(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	netID, _ := e.network("app", 24)
	port := testutil.FreePort(t)
	// web serves, then waits until it can fetch from late, which starts
	// after it: its /etc/hosts must learn late's name.
	webScript := "hostname -i; mkdir -p /www && echo 'hello from web' > /www/index.html && httpd -p 80 -h /www; " +
		"until wget -qO- http://late/ 2>/dev/null; do sleep 1; done; exec sleep 120"
	e.ok("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "-p", "127.0.0.1::81/udp", ref, "sh", "-c", webScript)
	webIP := e.waitLog("web")
	e.ok("run", "-d", "--name", "late", "--network", "app", ref, "sh", "-c", httpdScript("late"))
	e.waitLog("late")
	for _, to := range []string{"web", "www"} {
		if r := e.retry("run", "--rm", "--network", "app", ref, "wget", "-qO-", "http://"+to+"/"); r.stdout != "hello from web\n" {
			t.Fatalf("-> %s: exit %d %q %q", to, r.code, r.stdout, r.stderr)
		}
	}
	for i := 0; !strings.Contains(e.ok("logs", "web"), "hello from late"); i++ {
		if i == 50 {
			t.Fatalf("web never reached late (joined later) by name:\n%s", e.ok("logs", "web"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A container started later sees web in its own /etc/hosts too.
	if out := e.ok("run", "--rm", "--network", "app", ref, "cat", "/etc/hosts"); !strings.Contains(out, webIP+"\tweb www") {
		t.Fatalf("hosts of a later container:\n%s", out)
	}

	// port output.
	out := e.ok("port", "web")
	if !strings.Contains(out, fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port)) || !strings.Contains(out, "81/udp -> 127.0.0.1:") {
		t.Fatalf("port web:\n%s", out)
	}
	if got := e.ok("port", "web", "80"); got != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Fatalf("port web 80: %q", got)
	}
	if r := e.berth("port", "web", "8080/tcp"); r.code != 1 || !oneLine(r) {
		t.Fatalf("port web 8080: exit %d %q", r.code, r.stderr)
	}

	// On the default bridge, names do not resolve.
	e.ok("run", "-d", "--name", "plain", ref, "sh", "-c", httpdScript("plain"))
	plainIP := e.waitLog("plain")
	if r := e.berth("run", "--rm", ref, "wget", "-T", "2", "-qO-", "http://plain/"); r.code == 0 {
		t.Fatalf("default bridge resolved a container name: %q", r.stdout)
	}

	// connect a running container: it gets eth1 and reaches web by name;
	// disconnect takes the interface away again.
	e.ok("network", "connect", "--alias", "side", "app", "plain")
	if out := e.ok("run", "--rm", "--network", "app", ref, "wget", "-qO-", "http://side/"); out != "hello from plain\n" {
		t.Fatalf("alias of a connected container: %q", out)
	}
	n := e.inspectNet("app")
	if len(n.Containers) != 3 {
		t.Fatalf("app has %d containers after connect, want 3: %+v", len(n.Containers), n.Containers)
	}
	if r := e.berth("network", "connect", "app", "plain"); r.code != 1 || !oneLine(r) {
		t.Fatalf("second connect: exit %d %q", r.code, r.stderr)
	}
	if r := e.berth("network", "rm", "app"); r.code != 1 || !strings.Contains(r.stderr, "error while removing network: network app has active endpoints") {
		t.Fatalf("rm of a used network: exit %d %q", r.code, r.stderr)
	}
	e.ok("network", "disconnect", "app", "plain")
	if r := e.berth("network", "disconnect", "app", "plain"); r.code != 1 || !oneLine(r) {
		t.Fatalf("second disconnect: exit %d %q", r.code, r.stderr)
	}
	if len(e.inspectNet("app").Containers) != 2 {
		t.Fatalf("plain still on app after disconnect")
	}
	// plain still answers on the default bridge.
	if r := e.retry("run", "--rm", ref, "wget", "-qO-", "http://"+plainIP+"/"); r.stdout != "hello from plain\n" {
		t.Fatalf("plain after disconnect: %q %q", r.stdout, r.stderr)
	}

	// A stopped container connected later gets the network at its next start.
	e.ok("create", "--name", "cold", ref, "sh", "-c", httpdScript("cold"))
	e.ok("network", "connect", "app", "cold")
	e.ok("start", "cold")
	e.waitLog("cold")
	if r := e.retry("run", "--rm", "--network", "app", ref, "wget", "-qO-", "http://cold/"); r.stdout != "hello from cold\n" {
		t.Fatalf("cold by name: %q %q", r.stdout, r.stderr)
	}

	// Removing containers frees addresses and ports; then the network goes.
	e.ok("rm", "-f", "web", "late", "plain", "cold")
	if a := e.allocations(netID); len(a) != 0 {
		t.Fatalf("allocations left: %v", a)
	}
	if r := rulesWith(fmt.Sprintf("--dport %d", port)); len(r) > 0 {
		t.Fatalf("port rules left: %v", r)
	}
	if p := portsOn(bridgeOf(netID)); len(p) > 0 {
		t.Fatalf("veths left: %v", p)
	}
	e.ok("network", "rm", "app")
	if exec.Command("ip", "link", "show", bridgeOf(netID)).Run() == nil || len(rulesWith(bridgeOf(netID))) > 0 {
		t.Fatalf("network rm left bridge or rules")
	}
}

func TestNetworkRunBadInput(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	_, subnet := e.network("small", 24)
	base := strings.TrimSuffix(subnet, "0/24")
	e.ok("run", "-d", "--name", "holder", "--network", "small", "--ip", base+"10", ref, "sleep", "60")
	for _, args := range [][]string{
		{"--network", "small", "--ip", "192.0.2.9"}, // outside the subnet
		{"--network", "small", "--ip", base + "10"}, // in use
		{"--network", "small", "--ip", base + "1"},  // the gateway
		{"--network", "small", "--ip", "not-an-ip"}, // not an address
		{"--network", "nosuchnet"},                  // unknown network
		{"--ip", base + "11"},                       // --ip on the default bridge
		{"--network-alias", "x"},                    // alias on the default bridge
		{"--network", "small", "-p", "99999:80"},    // bad port
	} {
		r := e.berth(append(append([]string{"run", "-d"}, args...), ref, "true")...)
		if r.code != 125 || !oneLine(r) {
			t.Errorf("run %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if got := strings.Fields(e.ok("ps", "-aq")); len(got) != 1 {
		t.Fatalf("failed runs left containers: %v", got)
	}
}

func TestNetworkAddressExhaustion(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	id, _ := e.network("tiny", 28) // 16 addresses: network, gateway, broadcast and 13 for containers
	for i := 0; i < 13; i++ {
		e.ok("run", "-d", "--name", fmt.Sprintf("c%d", i), "--network", "tiny", ref, "sleep", "60")
	}
	r := e.berth("run", "-d", "--name", "extra", "--network", "tiny", ref, "sleep", "60")
	if r.code != 125 || !oneLine(r) || !strings.Contains(r.stderr, "no available IPv4 addresses") {
		t.Fatalf("14th run: exit %d, stderr %q", r.code, r.stderr)
	}
	if n := len(portsOn(bridgeOf(id))); n != 13 {
		t.Fatalf("%d veths on the bridge, want 13", n)
	}
	if n := len(e.allocations(id)); n != 13 {
		t.Fatalf("%d addresses allocated, want 13", n)
	}
	if m, _ := filepath.Glob(filepath.Join(e.runroot, "netns", "*")); len(m) != 13 {
		t.Fatalf("%d network namespaces, want 13", len(m))
	}
	// Removing one frees its address for the failed one.
	e.ok("rm", "-f", "c0")
	e.ok("start", "extra")
	if n := len(e.inspectNet("tiny").Containers); n != 13 {
		t.Fatalf("%d containers on tiny, want 13", n)
	}
}

func TestNetworkConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.network("crowd", 24)
	n := 200
	if v, err := strconv.Atoi(os.Getenv("BERTH_NET_CONCURRENT")); err == nil && v > 0 {
		n = v // for measuring
	}
	start := time.Now()
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.berth("run", "-d", "--network", "crowd", ref, "sleep", "120")
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent run -d: %v", n, time.Since(start))
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
		if os.Getenv("BERTH_TRACE") != "" && i%(n/4) == 0 {
			t.Logf("run %d:\n%s", i, r.stderr)
		}
	}
	seen := map[string]string{}
	for id, c := range e.inspectNet("crowd").Containers {
		if other, ok := seen[c.IPv4Address]; ok {
			t.Fatalf("%s and %s both have %s", id, other, c.IPv4Address)
		}
		seen[c.IPv4Address] = id
	}
	if len(seen) != n {
		t.Fatalf("%d distinct addresses, want %d", len(seen), n)
	}
	start = time.Now()
	e.ok(append([]string{"rm", "-f"}, strings.Fields(e.ok("ps", "-aq"))...)...)
	t.Logf("rm -f of %d: %v", n, time.Since(start))
}

// TestNetworkCrashSafety kills berth (SIGKILL, from inside, at named
// points of `run -d`) and checks that the next command reclaims the
// address, veth, rules and namespace.
func TestNetworkCrashSafety(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	id, _ := e.network("crash", 24)
	for _, point := range []string{"after-netns", "network:allocated", "network:recorded", "network:veth", "network:rules", "after-attach", "after-etc"} {
		port := testutil.FreePort(t)
		r := e.berthEnv([]string{"BERTH_TEST_CRASH_AT=" + point}, "run", "-d", "--network", "crash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), ref, "sleep", "60")
		if r.code != -1 && r.code != 137 { // killed itself, or its child was
			t.Fatalf("%s: berth was not killed: exit %d %q", point, r.code, r.stderr)
		}
		ctrs := strings.Fields(e.ok("ps", "-aq", "--no-trunc")) // also reconciles the dead start
		if a := e.allocations(id); len(a) != 0 {
			t.Errorf("%s: addresses left: %v", point, a)
		}
		if p := portsOn(bridgeOf(id)); len(p) != 0 {
			t.Errorf("%s: veths left: %v", point, p)
		}
		if r := rulesWith(fmt.Sprintf("--dport %d", port)); len(r) != 0 {
			t.Errorf("%s: rules left: %v", point, r)
		}
		if m, _ := filepath.Glob(filepath.Join(e.runroot, "netns", "*")); len(m) != 0 {
			t.Errorf("%s: namespaces left: %v", point, m)
		}
		if c := e.inspectNet("crash").Containers; len(c) != 0 {
			t.Errorf("%s: endpoints left: %v", point, c)
		}
		// Off the bridge at once; the device itself goes with the
		// namespace, which the kernel destroys in the background.
		for _, c := range ctrs {
			if name := bridge.HostVethName(c, id); !linkGone(name, 3*time.Second) {
				t.Errorf("%s: veth %s still exists", point, name)
			}
		}
		e.ok(append([]string{"rm", "-f"}, strings.Fields(e.ok("ps", "-aq"))...)...)
	}
	// The network is usable afterwards.
	e.ok("run", "--rm", "--network", "crash", ref, "true")
}

// TestNetworkLatency measures what the default bridge adds to `run --rm
// IMG true` over --network none (median of 20 each, alternating). It
// only reports; set BERTH_NET_LATENCY=1 to run it.
func TestNetworkLatency(t *testing.T) {
	if os.Getenv("BERTH_NET_LATENCY") == "" {
		t.Skip("set BERTH_NET_LATENCY=1 to measure")
	}
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "--rm", ref, "true") // creates the default bridge
	times := map[string][]time.Duration{}
	for i := 0; i < 20; i++ {
		for _, mode := range []string{"none", "bridge"} {
			start := time.Now()
			e.ok("run", "--rm", "--network", mode, ref, "true")
			times[mode] = append(times[mode], time.Since(start))
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	none, br := med(times["none"]), med(times["bridge"])
	t.Logf("median run --rm true: none %v, bridge %v, extra %v", none, br, br-none)
}

// TestNetworkRenameResolves: after `rename`, peers on a user-defined
// network resolve the new name and no longer the old one, as Docker's.
func TestNetworkRenameResolves(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	net := fmt.Sprintf("rn%d", os.Getpid()%10000)
	e.ok("network", "create", "--subnet", fmt.Sprintf("10.80.%d.0/24", os.Getpid()%200+20), net)
	t.Cleanup(func() { e.berth("rm", "-f", "rn-a", "rn-b2"); e.berth("network", "rm", net) })
	e.ok("run", "-d", "--name", "rn-a", "--network", net, ref, "sleep", "60")
	e.ok("run", "-d", "--name", "rn-b", "--network", net, ref, "sleep", "60")
	e.ok("rename", "rn-b", "rn-b2")
	hosts := e.ok("exec", "rn-a", "cat", "/etc/hosts")
	if !regexp.MustCompile(`(?m)\srn-b2(\s|$)`).MatchString(hosts) || regexp.MustCompile(`(?m)\srn-b(\s|$)`).MatchString(hosts) {
		t.Fatalf("rn-a's /etc/hosts after the rename:\n%s", hosts)
	}
	if r := e.berth("exec", "rn-a", "busybox", "ping", "-c", "1", "-W", "2", "rn-b2"); r.code != 0 {
		t.Fatalf("ping of the new name: exit %d %s", r.code, r.stderr)
	}
}
