package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// defaultGateway is the gateway of the env's default bridge network (the
// first address of its --default-subnet).
func (e *env) defaultGateway() string {
	e.t.Helper()
	i := slices.Index(e.netFlags, "--default-subnet")
	p, err := netip.ParsePrefix(e.netFlags[i+1])
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Addr().Next().String()
}

// refused runs `berth run -d ARGS... IMAGE true` and fails the test unless
// it exits 125 with one line of stderr containing want.
func (e *env) refused(ref, want string, args ...string) {
	e.t.Helper()
	r := e.berth(append(append([]string{"run", "-d"}, args...), ref, "true")...)
	if r.code != 125 || !oneLine(r) || !strings.Contains(r.stderr, want) {
		e.t.Errorf("run %v: exit %d stderr %q, want 125 and %q", args, r.code, r.stderr, want)
	}
}

// TestNetworkPortHeldByHost: a host port that a program outside berth
// holds (tcp: listening; udp: bound) cannot be published, as with Docker:
// exit 125 and Docker's "failed to bind host port" message, no rule left
// to steal the program's traffic. Ports of berth containers keep Docker's
// "port is already allocated".
func TestNetworkPortHeldByHost(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)

	// A Go listener on all addresses (this process).
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	e.refused(ref, fmt.Sprintf("failed to bind host port for 0.0.0.0:%d:", port), "-p", fmt.Sprintf("%d:80", port))
	e.refused(ref, "address already in use", "-p", fmt.Sprintf("127.0.0.1:%d:80", port))
	if r := rulesWith(fmt.Sprintf("--dport %d", port)); len(r) > 0 {
		t.Fatalf("a refused run left port rules: %v", r)
	}
	// The listener still gets its connections.
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("mine\n"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	c.Close()
	if string(buf[:n]) != "mine\n" {
		t.Fatalf("the host listener got %q", buf[:n])
	}

	// Another program: busybox nc listening.
	ncPort := testutil.FreePort(t)
	nc := exec.Command("busybox", "nc", "-l", "-p", fmt.Sprint(ncPort))
	if err := nc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { nc.Process.Kill(); nc.Wait() }()
	for i := 0; ; i++ {
		probe, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", ncPort))
		if err != nil {
			break // nc listens
		}
		probe.Close()
		if i == 50 {
			t.Fatal("nc never listened")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.refused(ref, fmt.Sprintf("failed to bind host port for 0.0.0.0:%d:", ncPort), "-p", fmt.Sprintf("%d:80", ncPort))

	// udp: a bound socket, on a number whose tcp port is free too (an
	// ephemeral udp port's tcp twin may be some connection's local port).
	var u net.PacketConn
	var uport int
	for i := 0; u == nil; i++ {
		uport = testutil.FreePort(t)
		if u, err = net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", uport)); err != nil && i == 20 {
			t.Fatal(err)
		}
	}
	defer u.Close()
	e.refused(ref, fmt.Sprintf("failed to bind host port for 0.0.0.0:%d:", uport), "-p", fmt.Sprintf("%d:53/udp", uport))
	// The same number over tcp is another socket: allowed.
	e.ok("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:53/tcp", uport), ref, "true")

	// A port a berth container publishes: Docker's allocator message.
	free := testutil.FreePort(t)
	e.ok("run", "-d", "--name", "holder", "-p", fmt.Sprintf("%d:80", free), ref, "sleep", "60")
	e.refused(ref, fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated", free), "-p", fmt.Sprintf("%d:80", free))
	// As with Docker, a run whose start failed leaves its container
	// created, and holding no port.
	if out := e.ok("ps", "-a", "--filter", "status=running", "-q"); len(strings.Fields(out)) != 1 {
		t.Fatalf("running after refused runs: %q", out)
	}
}

// TestNetworkHostMode: --network host gives a copy of the host's
// /etc/hosts plus the --add-host entries (host-gateway being the default
// bridge's gateway), leaves the host's file alone, and the host's hostname.
func TestNetworkHostMode(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	before, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	out := e.ok("run", "--rm", "--network", "host", "--add-host", "extra.test:192.0.2.7", "--add-host", "gw.test:host-gateway", ref, "cat", "/etc/hosts")
	if !strings.HasPrefix(out, string(before)) {
		t.Fatalf("hosts does not start with the host's:\n%s", out)
	}
	for _, want := range []string{"192.0.2.7\textra.test\n", e.defaultGateway() + "\tgw.test\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("hosts lacks %q:\n%s", want, out)
		}
	}
	if after, _ := os.ReadFile("/etc/hosts"); !bytes.Equal(before, after) {
		t.Fatalf("the host's /etc/hosts changed:\n%s", after)
	}
	host, _ := os.Hostname()
	if got := e.ok("run", "--rm", "--network", "host", ref, "sh", "-c", "hostname; cat /etc/hostname"); got != host+"\n"+host+"\n" {
		t.Errorf("hostname with --network host: %q, want the host's %q twice", got, host)
	}
	if got := e.ok("run", "--rm", "--network", "host", "-h", "picked", ref, "hostname"); got != "picked\n" {
		t.Errorf("-h with --network host: %q", got)
	}
}

// TestNetworkContainerMode: --network container:X refuses the options
// that configure X's network, with Docker's messages, and shares X's
// hostname, /etc/hostname, /etc/hosts and /etc/resolv.conf.
func TestNetworkContainerMode(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "--name", "owner", "-h", "ownerhost", "--add-host", "x.test:192.0.2.9", "--dns", "192.0.2.53", ref, "sleep", "60")
	mode := "container:owner"
	for _, c := range []struct {
		want string
		args []string
	}{
		{"conflicting options: port publishing and the container type network mode", []string{"-p", "8080:80"}},
		{"conflicting options: port publishing and the container type network mode", []string{"-P"}},
		{"conflicting options: port exposing and the container type network mode", []string{"--expose", "80"}},
		{"conflicting options: dns and the network mode", []string{"--dns", "192.0.2.1"}},
		{"conflicting options: dns and the network mode", []string{"--dns-search", "example.test"}},
		{"conflicting options: dns and the network mode", []string{"--dns-option", "ndots:2"}},
		{"conflicting options: custom host-to-IP mapping and the network mode", []string{"--add-host", "a.test:192.0.2.1"}},
		{"network-scoped alias is supported only for containers in user defined networks", []string{"--network-alias", "a"}},
		{"user specified IP address is supported on user defined networks only", []string{"--ip", "10.79.0.9"}},
		{"Invalid network mode: invalid container format container:<name|id>", nil},
	} {
		m := mode
		if c.args == nil {
			m = "container:"
		}
		e.refused(ref, c.want, append([]string{"--network", m}, c.args...)...)
	}
	if got := strings.Fields(e.ok("ps", "-aq")); len(got) != 1 {
		t.Fatalf("refused runs left containers: %v", got)
	}
	e.refused(ref, "conflicting options: hostname and the network mode", "--network", mode, "-h", "other")
	e.refused(ref, "conflicting options: hostname and the network mode", "--network", mode, "--hostname", "other")

	const files = "hostname; cat /etc/hostname /etc/hosts /etc/resolv.conf"
	want := e.ok("exec", "owner", "sh", "-c", files)
	if !strings.Contains(want, "192.0.2.9\tx.test") || !strings.Contains(want, "nameserver 192.0.2.53") || !strings.HasPrefix(want, "ownerhost\nownerhost\n") {
		t.Fatalf("owner's files:\n%s", want)
	}
	if got := e.ok("run", "--rm", "--network", mode, ref, "sh", "-c", files); got != want {
		t.Fatalf("a container:owner container sees:\n%s\nwant owner's:\n%s", got, want)
	}
	// A container joining one that itself joined owner gets owner's too.
	e.ok("run", "-d", "--name", "joiner", "--network", mode, ref, "sleep", "60")
	if got := e.ok("run", "--rm", "--network", "container:joiner", ref, "sh", "-c", files); got != want {
		t.Fatalf("a container:joiner container sees:\n%s\nwant owner's:\n%s", got, want)
	}
}

// TestNetworkHostGateway: --add-host NAME:host-gateway is the gateway of
// the container's first network (the env's default bridge is not
// network.DefaultSubnet's), also after peers join and the hosts file is
// rewritten.
func TestNetworkHostGateway(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	out := e.ok("run", "--rm", "--add-host", "gw.test:host-gateway", ref, "cat", "/etc/hosts")
	if !strings.Contains(out, e.defaultGateway()+"\tgw.test\n") {
		t.Fatalf("default bridge: hosts lacks %s gw.test:\n%s", e.defaultGateway(), out)
	}
	_, subnet := e.network("gwnet", 24)
	gw := netip.MustParsePrefix(subnet).Addr().Next().String()
	e.ok("run", "-d", "--name", "first", "--network", "gwnet", "--add-host", "gw.test=host-gateway", ref, "sleep", "60")
	e.ok("run", "-d", "--name", "second", "--network", "gwnet", ref, "sleep", "60")
	out = e.ok("exec", "first", "cat", "/etc/hosts")
	if !strings.Contains(out, gw+"\tgw.test\n") || !strings.Contains(out, "\tsecond\n") {
		t.Fatalf("user network: hosts (rewritten when second joined) lacks %s gw.test or second:\n%s", gw, out)
	}
}
