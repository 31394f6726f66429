package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// cniNet is a CNI configuration written for one test: Debian's bridge
// plugin on a test-unique Linux bridge and subnet, host-local IPAM keeping
// its reservations in the test's temp dir, loopback; no masquerading, so
// the plugins add no iptables rules.
type cniNet struct {
	path, bridge, dataDir, cniName string
	subnet                         netip.Prefix
}

var cniCount atomic.Int32

// requireCNIPlugins skips unless Debian's containernetworking-plugins are
// installed.
func requireCNIPlugins(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			t.Skip("CNI plugins not installed (apt-get install containernetworking-plugins)")
		}
	}
}

// newCNINet writes the configuration into a fresh temp dir. extra plugins
// (raw JSON objects) go after bridge and loopback. The test's cleanup
// removes the containers of e (so that DEL runs while the bridge exists),
// then the bridge the plugin made.
func newCNINet(t *testing.T, e *env, extra ...string) cniNet {
	t.Helper()
	n := (os.Getpid() + int(cniCount.Add(1))) % 250
	dir := t.TempDir()
	c := cniNet{
		path:    filepath.Join(dir, "net.conflist"),
		bridge:  fmt.Sprintf("btcni%d", n),
		dataDir: filepath.Join(dir, "ipam"),
		cniName: fmt.Sprintf("berth-test-%d", n),
		subnet:  netip.MustParsePrefix(fmt.Sprintf("10.86.%d.0/24", n)),
	}
	plugins := []string{
		fmt.Sprintf(`{"type":"bridge","bridge":%q,"isGateway":true,"isDefaultGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}}`,
			c.bridge, c.subnet, c.dataDir),
		`{"type":"loopback"}`,
	}
	plugins = append(plugins, extra...)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[%s]}`, c.cniName, strings.Join(plugins, ","))
	if err := os.WriteFile(c.path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ids := strings.Fields(e.berth("ps", "-aq", "--no-trunc").stdout); len(ids) > 0 {
			e.berth(append([]string{"rm", "-f"}, ids...)...)
		}
		exec.Command("ip", "link", "del", c.bridge).Run()
	})
	return c
}

// reservations lists host-local's reserved addresses (its files other
// than its lock and last-reserved markers).
func (c cniNet) reservations() []string {
	m, _ := filepath.Glob(filepath.Join(c.dataDir, c.cniName, "*"))
	var out []string
	for _, p := range m {
		if b := filepath.Base(p); b != "lock" && !strings.HasPrefix(b, "last_reserved_ip") {
			out = append(out, b)
		}
	}
	return out
}

// cniCached lists libcni's cached ADD results under the env's runroot.
func (e *env) cniCached() []string {
	m, _ := filepath.Glob(filepath.Join(e.runroot, "cni", "results", "*"))
	return m
}

// cniLeaks reports what a CNI endpoint left behind: host-local
// reservations, veths on the plugin's bridge, libcni cache entries,
// namespaces and berth endpoint records of network name.
func (e *env) cniLeaks(c cniNet, name string) []string {
	var out []string
	for _, r := range c.reservations() {
		out = append(out, "reservation "+r)
	}
	for _, p := range portsOn(c.bridge) {
		out = append(out, "veth "+p)
	}
	out = append(out, e.cniCached()...)
	m, _ := filepath.Glob(filepath.Join(e.runroot, "netns", "*"))
	out = append(out, m...)
	for id := range e.inspectNet(name).Containers {
		out = append(out, "endpoint "+id)
	}
	return out
}

func TestCNINetwork(t *testing.T) {
	requireCNIPlugins(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	c := newCNINet(t, e)
	id := strings.TrimSpace(e.ok("network", "create", "--driver", "cni", "-o", "cni.config="+c.path, "cninet"))

	found := false
	for _, l := range strings.Split(e.ok("network", "ls"), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[1] == "cninet" {
			found = true
			if f[0] != id[:12] || f[2] != "cni" {
				t.Errorf("network ls row %q: want ID %s, DRIVER cni", l, id[:12])
			}
		}
	}
	if !found {
		t.Fatalf("network ls does not list cninet")
	}

	e.ok("run", "-d", "--name", "web", "--network", "cninet", ref, "sh", "-c", httpdScript("web"))
	logged := e.waitLog("web")
	ipText := strings.TrimSpace(e.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "cninet").IPAddress}}`, "web"))
	ip, err := netip.ParseAddr(ipText)
	if err != nil || !c.subnet.Contains(ip) {
		t.Fatalf("inspect: address %q, not in the CNI subnet %s", ipText, c.subnet)
	}
	if logged != ipText {
		t.Errorf("hostname -i in the container says %q, inspect %q", logged, ipText)
	}
	webID := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "web"))
	ni := e.inspectNet("cninet")
	if ep, ok := ni.Containers[webID]; !ok || ep.IPv4Address != netip.PrefixFrom(ip, 24).String() || ep.Name != "web" {
		t.Errorf("network inspect Containers: %+v, want web with %s/24", ni.Containers, ip)
	}
	if r := c.reservations(); len(r) != 1 || r[0] != ipText {
		t.Errorf("host-local reservations %v, want [%s]", r, ipText)
	}
	if len(e.cniCached()) != 1 {
		t.Errorf("libcni cache: %v, want one result", e.cniCached())
	}

	// A second container on the network reaches the first through the
	// plugin's bridge (nc: busybox's wget is not needed for a GET).
	get := func(host string) string {
		return fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 %s 80`, host)
	}
	var out string
	for i := 0; i < 50; i++ {
		if r := e.berth("run", "--rm", "--network", "cninet", ref, "sh", "-c", get(ipText)); r.code == 0 && r.stdout != "" {
			out = r.stdout
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.HasPrefix(out, "HTTP/1.") || !strings.HasSuffix(out, "hello from web\n") {
		t.Fatalf("GET from a second container: %q", out)
	}
	// ... by name too: /etc/hosts lists the peers of a user-defined network.
	if r := e.berth("run", "--rm", "--network", "cninet", ref, "sh", "-c", get("web")); r.code != 0 || !strings.HasSuffix(r.stdout, "hello from web\n") {
		t.Errorf("GET http://web/: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := e.berth("run", "--rm", "--network", "cninet", ref, "sh", "-c", "ping -c 1 -W 2 "+ipText); r.code != 0 {
		t.Errorf("ping %s: exit %d %q", ipText, r.code, r.stderr)
	}
	// The --rm container's DEL ran: only web's reservation is left.
	if r := c.reservations(); len(r) != 1 {
		t.Errorf("after the --rm runs: reservations %v", r)
	}

	// A container on the default bridge joins the CNI network as eth1
	// (ADD into its running namespace) and leaves it (DEL).
	e.ok("run", "-d", "--name", "other", ref, "sleep", "60")
	e.ok("network", "connect", "cninet", "other")
	otherIP, err := netip.ParseAddr(strings.TrimSpace(e.ok("inspect", "-f", `{{(index .NetworkSettings.Networks "cninet").IPAddress}}`, "other")))
	if err != nil || !c.subnet.Contains(otherIP) || len(c.reservations()) != 2 {
		t.Errorf("connect: address %v (%v), reservations %v", otherIP, err, c.reservations())
	}
	if r := e.berth("exec", "other", "sh", "-c", "ip -o -4 addr show eth1"); !strings.Contains(r.stdout, otherIP.String()+"/24") {
		t.Errorf("eth1 in the connected container: %q %q", r.stdout, r.stderr)
	}
	e.ok("network", "disconnect", "cninet", "other")
	if r := c.reservations(); len(r) != 1 || r[0] != ipText {
		t.Errorf("after disconnect: reservations %v", r)
	}
	e.ok("rm", "-f", "other")

	if r := e.berth("network", "rm", "cninet"); r.code != 1 || !strings.Contains(r.stderr, "has active endpoints") {
		t.Fatalf("network rm with a container attached: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "-f", "web")
	if l := e.cniLeaks(c, "cninet"); len(l) != 0 {
		t.Errorf("after rm: left %v", l)
	}
	if _, err := os.Stat(filepath.Join(e.root, "network", "ipam", id+".json")); err == nil {
		t.Errorf("berth's own IPAM has a pool for a CNI network")
	}
	e.ok("network", "rm", "cninet")
	if r := e.berth("network", "inspect", "cninet"); r.code == 0 {
		t.Errorf("network inspect after rm succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "network", "state.json")); strings.Contains(string(b), id) {
		t.Errorf("state.json still names the network")
	}
}

// TestCNICrashSafety kills berth (SIGKILL, from inside, at named points
// of `run -d` on a CNI network) and checks that the next command runs
// DEL for whatever ADD made.
func TestCNICrashSafety(t *testing.T) {
	requireCNIPlugins(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	c := newCNINet(t, e)
	e.ok("network", "create", "--driver", "cni", "-o", "cni.config="+c.path, "crashcni")
	for _, point := range []string{"after-netns", "network:recorded", "network:attached", "after-attach", "after-etc"} {
		r := e.berthEnv([]string{"BERTH_TEST_CRASH_AT=" + point}, "run", "-d", "--network", "crashcni", ref, "sleep", "60")
		if r.code != -1 && r.code != 137 {
			t.Fatalf("%s: berth was not killed: exit %d %q", point, r.code, r.stderr)
		}
		if point == "network:attached" && len(c.reservations()) != 1 {
			t.Errorf("%s: ADD did not run before the kill (reservations %v)", point, c.reservations())
		}
		e.ok("ps", "-a") // reconciles the dead start
		if l := e.cniLeaks(c, "crashcni"); len(l) != 0 {
			t.Errorf("%s: left %v", point, l)
		}
		e.ok(append([]string{"rm", "-f"}, strings.Fields(e.ok("ps", "-aq"))...)...)
	}
	e.ok("run", "--rm", "--network", "crashcni", ref, "true")
	if l := e.cniLeaks(c, "crashcni"); len(l) != 0 {
		t.Errorf("after a clean run: left %v", l)
	}
}

func TestCNIBadInput(t *testing.T) {
	requireCNIPlugins(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// `network create` exits 1 on a refused request, as Docker's CLI.
	for _, args := range [][]string{
		{"-o", "cni.config=" + filepath.Join(dir, "missing.conflist")},
		{"-o", "cni.config=" + write("bad.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[`)},
		{"-o", "cni.config=" + write("noplugins.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[]}`)},
		{"-o", "cni.config=" + write("unknown.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"berth-no-such-plugin"}]}`)},
		{"-o", "cni.config=" + write("version.conflist", `{"cniVersion":"9.9.9","name":"x","plugins":[{"type":"loopback"}]}`)},
		{"-o", "cni.confdir=" + dir, "-o", "cni.name=nosuchnet"},
		{"-o", "cni.bogus=1"},
	} {
		r := e.berth(append(append([]string{"network", "create", "--driver", "cni"}, args...), "badcni")...)
		if r.code != 1 || !oneLine(r) {
			t.Errorf("network create %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := e.berth("network", "inspect", "badcni"); r.code == 0 {
		t.Fatalf("a refused create left network badcni")
	}

	// A plugin that is gone at run time: ADD fails after bridge and
	// host-local did their part, and DEL undoes it.
	plugins := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback", "tuning"} {
		if err := os.Symlink(filepath.Join("/usr/lib/cni", p), filepath.Join(plugins, p)); err != nil {
			t.Fatal(err)
		}
	}
	c := newCNINet(t, e, `{"type":"tuning"}`)
	e.ok("network", "create", "--driver", "cni", "-o", "cni.config="+c.path, "-o", "cni.path="+plugins, "gone")
	os.Remove(filepath.Join(plugins, "tuning"))
	r := e.berth("run", "--rm", "--network", "gone", ref, "true")
	if r.code != 125 || !oneLine(r) || !strings.Contains(r.stderr, `"tuning" not found`) {
		t.Fatalf("run with a plugin gone: exit %d, stderr %q", r.code, r.stderr)
	}
	if !bridgeExists(c.bridge) {
		t.Errorf("the bridge plugin never ran (no %s), so DEL was not tested", c.bridge)
	}
	if l := e.cniLeaks(c, "gone"); len(l) != 0 {
		t.Errorf("after a failed ADD: left %v", l)
	}

	// Addresses and ports are the configuration's business.
	c2 := newCNINet(t, e)
	e.ok("network", "create", "--driver", "cni", "-o", "cni.config="+c2.path, "good")
	for _, args := range [][]string{
		{"--ip", c2.subnet.Addr().Next().Next().String()},
		{"-p", "127.0.0.1::80"},
	} {
		r := e.berth(append(append([]string{"run", "--rm", "--network", "good"}, args...), ref, "true")...)
		if r.code != 125 || !oneLine(r) {
			t.Errorf("run %v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if r := e.berth("network", "create", "--driver", "cni", "--subnet", "10.86.255.0/24", "-o", "cni.config="+c2.path, "withsubnet"); r.code != 1 || !oneLine(r) {
		t.Errorf("cni with --subnet: exit %d, stderr %q", r.code, r.stderr)
	}
	if l := e.cniLeaks(c2, "good"); len(l) != 0 {
		t.Errorf("after refused runs: left %v", l)
	}
}

func bridgeExists(name string) bool {
	return exec.Command("ip", "link", "show", name).Run() == nil
}

// The network record keeps the configuration it was created with: later
// edits of the file do not change what ADD and DEL see.
func TestCNIConfigRecorded(t *testing.T) {
	requireCNIPlugins(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	c := newCNINet(t, e)
	e.ok("network", "create", "--driver", "cni", "-o", "cni.confdir="+filepath.Dir(c.path), "-o", "cni.name="+c.cniName, "fromdir")
	e.ok("run", "-d", "--name", "aa", "--network", "fromdir", ref, "sleep", "60")
	if err := os.WriteFile(c.path, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var nets map[string]struct{ IPAddress string }
	if err := json.Unmarshal([]byte(e.ok("inspect", "-f", "{{json .NetworkSettings.Networks}}", "aa")), &nets); err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(nets["fromdir"].IPAddress); err != nil || !c.subnet.Contains(ip) {
		t.Fatalf("inspect Networks: %+v, want an address in %s", nets, c.subnet)
	}
	e.ok("rm", "-f", "aa")
	if l := e.cniLeaks(c, "fromdir"); len(l) != 0 {
		t.Errorf("after rm with the file edited: left %v", l)
	}
}
