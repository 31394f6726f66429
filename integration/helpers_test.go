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
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building berth:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one isolated engine: its own --root and --runroot.
type env struct {
	t             *testing.T
	root, runroot string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (apt-get install runc)")
	}
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "run")}
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
	cmd := exec.Command(berthBin, append([]string{"--root", e.root, "--runroot", e.runroot}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("berth %v: %v", args, err)
	}
	return r
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
	out = append(out, mountsUnder(e.runroot)...)
	for _, pattern := range []string{"containers/*", "runtime/*/*"} {
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
}

// busybox pushes the test busybox image to a fresh registry and returns
// the registry and the image reference.
func busybox(t *testing.T) (*testutil.Registry, string) {
	reg := testutil.StartRegistry(t)
	ref, _ := reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	return reg, ref
}
