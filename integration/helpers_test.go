// Package integration holds Berth's end-to-end tests: the real berth binary
// against a real registry process, the real OCI runtime and the real kernel.
package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/berthproject/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// berthBin is the binary under test, built once by TestMain.
var berthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "berth-bin-")
	if err != nil {
		panic(err)
	}
	berthBin = filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", berthBin, "../cmd/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make builds it
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	// berth-monitor next to berth, where berth looks for it first.
	srcs, _ := filepath.Glob("../cmd/berth-monitor/*.c")
	cc := exec.Command("cc", append([]string{"-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", filepath.Join(dir, "berth-monitor")}, srcs...)...)
	cc.Stdout, cc.Stderr = os.Stdout, os.Stderr
	if err := cc.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth-monitor:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one isolated engine: its own --root and --runroot, and its own
// default bridge, subnet and iptables chain prefix, so that engines of
// different tests (and a real berth on the machine) never share them.
type env struct {
	t             *testing.T
	root, runroot string
	netFlags      []string
	bridge, chain string
}

var envCount atomic.Int32

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (apt-get install runc)")
	}
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run")}
	n := (os.Getpid()+int(envCount.Add(1)))%200 + 20
	e.bridge, e.chain = fmt.Sprintf("bti%d", n), fmt.Sprintf("BTI%d", n)
	e.netFlags = []string{"--default-bridge", e.bridge, "--default-subnet", fmt.Sprintf("10.79.%d.0/24", n), "--firewall-prefix", e.chain}
	t.Cleanup(e.cleanup)
	return e
}

// result is one berth invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// berth runs the binary with this env's roots and returns its output and
// exit code.
func (e *env) berth(args ...string) result {
	e.t.Helper()
	return e.berthEnv(nil, args...)
}

// berthEnv is berth with extra environment variables ("K=V").
func (e *env) berthEnv(vars []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(berthBin, e.args(args...)...)
	cmd.Env = append(os.Environ(), vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		}
	case err != nil:
		e.t.Fatalf("berth %v: %v", args, err)
	}
	return r
}

// args prefixes args with this env's global flags.
func (e *env) args(args ...string) []string {
	return append(append([]string{"--root", e.root, "--runroot", e.runroot}, e.netFlags...), args...)
}

// ok runs berth and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// mountsUnder lists mount points below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// leftovers reports what the engine has left under its roots that it
// should not have: mounts, bundles, OCI runtime state.
func (e *env) leftovers() []string {
	var out []string
	out = append(out, mountsUnder(e.root)...)
	for _, m := range mountsUnder(e.runroot) {
		// The netns directory is itself a shared mount (as /run/netns);
		// the namespaces bound inside it are what would leak.
		if m != filepath.Join(e.runroot, "netns") {
			out = append(out, m)
		}
	}
	for _, pattern := range []string{"containers/*", "runtime/*/*", "netns/*"} {
		m, _ := filepath.Glob(filepath.Join(e.runroot, pattern))
		out = append(out, m...)
	}
	return out
}

// cleanup removes every container and unmounts whatever a failed test left.
func (e *env) cleanup() {
	if ids := strings.Fields(e.berth("ps", "-aq", "--no-trunc").stdout); len(ids) > 0 {
		e.berth(append([]string{"rm", "-f"}, ids...)...)
	}
	for _, m := range append(mountsUnder(e.runroot), mountsUnder(e.root)...) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if nets := strings.Fields(e.berth("network", "ls", "-q", "--filter", "type=custom").stdout); len(nets) > 0 {
		e.berth(append([]string{"network", "rm"}, nets...)...)
	}
	removeBridgeAndChains(e.bridge, e.chain)
}

// removeBridgeAndChains deletes the default bridge and every iptables rule
// and chain carrying prefix: what a test engine's default network leaves.
func removeBridgeAndChains(bridge, prefix string) {
	exec.Command("ip", "link", "del", bridge).Run()
	for _, table := range []string{"nat", "filter"} {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, ":"+prefix):
				chains = append(chains, strings.Fields(line[1:])[0])
			case strings.HasPrefix(line, "-A ") && strings.Contains(line, prefix) && !strings.HasPrefix(line, "-A "+prefix):
				args := append([]string{"-t", table, "-D"}, strings.Fields(line)[1:]...)
				exec.Command("iptables", args...).Run()
			}
		}
		for _, c := range chains {
			exec.Command("iptables", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			exec.Command("iptables", "-t", table, "-X", c).Run()
		}
	}
}

// busybox pushes the test busybox image to a fresh registry and returns
// the registry and the image reference.
func busybox(t *testing.T) (*testutil.Registry, string) {
	reg := testutil.StartRegistry(t)
	ref, _ := reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	return reg, ref
}
