package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntimePerContainer: a container keeps the OCI runtime it was
// created with: whatever --runtime later commands name, they operate it
// with that runtime; inspect shows it.
func TestRuntimePerContainer(t *testing.T) {
	for _, rt := range []string{"runc", "crun"} {
		if _, err := exec.LookPath(rt); err != nil {
			t.Skipf("needs runc and crun: %v", err)
		}
	}
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("--runtime", "runc", "run", "-d", "--network", "none", "--name", "rr", ref, "sleep", "100")
	e.ok("--runtime", "crun", "run", "-d", "--network", "none", "--name", "cc", ref, "sleep", "100")
	for name, want := range map[string]string{"rr": "runc", "cc": "crun"} {
		if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.HostConfig.Runtime}}", name)); got != want {
			t.Errorf("%s: HostConfig.Runtime %q, want %q", name, got, want)
		}
	}
	// Each container operated with the other runtime named on the command line.
	for name, other := range map[string]string{"rr": "crun", "cc": "runc"} {
		if out := e.ok("--runtime", other, "exec", name, "echo", "in-"+name); out != "in-"+name+"\n" {
			t.Errorf("exec %s: %q", name, out)
		}
		e.ok("--runtime", other, "pause", name)
		e.ok("--runtime", other, "unpause", name)
		e.ok("--runtime", other, "stop", "-t", "1", name)
		if st := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)); st != "exited 137" {
			t.Errorf("%s after stop: %q", name, st)
		}
		e.ok("--runtime", other, "rm", name)
	}
	if l := e.leftovers(); len(l) > 0 {
		t.Errorf("left over: %v", l)
	}
}

// TestRuntimeMissing: when the runtime a container was created with is
// gone, commands on the container fail with one clear line and change
// nothing (the container keeps running, its record stays); once the
// runtime is back, they work.
func TestRuntimeMissing(t *testing.T) {
	crun, err := exec.LookPath("crun")
	if err != nil {
		t.Skip("needs crun")
	}
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	link := filepath.Join(t.TempDir(), "myruntime")
	if err := os.Symlink(crun, link); err != nil {
		t.Fatal(err)
	}
	e.ok("--runtime", link, "run", "-d", "--network", "none", "--name", "mm", ref, "sleep", "100")
	pid := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", "mm"))
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"stop", "-t", "1", "mm"}, {"rm", "-f", "mm"}, {"exec", "mm", "true"}} {
		r := e.berth(args...)
		if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "which is not installed") {
			t.Errorf("%v with the runtime gone: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if st := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "mm")); st != "running "+pid {
		t.Errorf("after the failed commands: %q, want running %s", st, pid)
	}
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Errorf("the container's process is gone: %v", err)
	}
	if err := os.Symlink(crun, link); err != nil {
		t.Fatal(err)
	}
	e.ok("rm", "-f", "mm")
	if l := e.leftovers(); len(l) > 0 {
		t.Errorf("left over: %v", l)
	}
}

// TestSeccompCachedProgram: Docker's seccomp profile is in force in the
// first container (crun compiles it) and in the next ones (the kept
// program in crun's annotation): unshare(CLONE_NEWUSER), which the
// profile refuses without CAP_SYS_ADMIN, fails in both and works in a
// privileged container (no seccomp filter).
func TestSeccompCachedProgram(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	probe := `unshare -U true 2>/dev/null && echo allowed || echo refused; grep Seccomp: /proc/self/status`
	for i := range 2 {
		if out := e.ok("run", "--rm", "--network", "none", ref, "sh", "-c", probe); out != "refused\nSeccomp:\t2\n" {
			t.Errorf("run %d: %q", i+1, out)
		}
	}
	if out := e.ok("run", "--rm", "--network", "none", "--privileged", ref, "sh", "-c", probe); out != "allowed\nSeccomp:\t0\n" {
		t.Errorf("privileged: %q", out)
	}
	if _, err := exec.LookPath("crun"); err == nil && os.Getenv("BERTH_RUNTIME") == "" { // crun is the default
		entries, _ := os.ReadDir(filepath.Join(e.runroot, "cache", "seccomp-bpf"))
		if len(entries) != 1 {
			t.Errorf("seccomp program cache holds %d entries, want 1", len(entries))
		}
	}
}
