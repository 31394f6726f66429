package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestRestartingState: between two restarts of a restart policy, inspect
// and ps show Docker's "restarting" state (State.Restarting, counted as
// running, "Restarting (1) … ago"); a stop ends it.
func TestRestartingState(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "--name", "rs", "--network", "none", "--restart", "unless-stopped", ref, "sh", "-c", "exit 1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		state := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.State.Running}} {{.State.ExitCode}}", "rs"))
		if state == "restarting true true 1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never seen restarting; last state %q", state)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The back-off doubles: by now one lasts long enough for ps to see it.
	for {
		out := e.ok("ps", "--filter", "name=rs", "--format", "{{.Status}}")
		if strings.HasPrefix(out, "Restarting (1) ") && strings.HasSuffix(out, " ago\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ps (no -a) never showed Restarting: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.ok("stop", "rs")
	time.Sleep(300 * time.Millisecond) // a start already under way settles
	e.ok("stop", "rs")
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.Restarting}}", "rs")); got != "exited false" {
		t.Fatalf("after stop: %q, want exited false", got)
	}
	e.ok("rm", "-f", "rs")
}

// TestOOMKilled: a container whose process the kernel's OOM killer
// killed has State.OOMKilled, in the foreground and detached; one that
// merely exits has not.
func TestOOMKilled(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.oom_control"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/memory.events"); err != nil && !strings.Contains(readFile("/sys/fs/cgroup/cgroup.controllers"), "memory") {
			t.Skip("no memory cgroup controller")
		}
	}
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	hog := []string{"-m", "20m", "--memory-swap", "20m", "--network", "none", ref, "sh", "-c", `x=$(head -c 64m /dev/zero | tr "\0" a)`}
	r := e.berth(append([]string{"run", "--name", "oomfg"}, hog...)...)
	if r.code == 0 {
		t.Fatalf("the memory hog exited 0: %+v", r)
	}
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.OOMKilled}}", "oomfg")); got != "true" {
		t.Fatalf("foreground: OOMKilled %s after exit %d", got, r.code)
	}
	e.ok(append([]string{"run", "-d", "--name", "oombg"}, hog...)...)
	e.berth("wait", "oombg")
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.OOMKilled}}", "oombg")); got != "true" {
		t.Fatalf("detached: OOMKilled %s", got)
	}
	e.berth("run", "--name", "plain", "-m", "20m", "--network", "none", ref, "sh", "-c", "exit 137")
	if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.OOMKilled}}", "plain")); got != "false" {
		t.Fatalf("a plain exit 137: OOMKilled %s", got)
	}
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// TestFailedStartKeepsExitedState: a start of an exited container that
// fails (its network is gone) leaves it exited with its exit code and
// sets State.Error, as Docker.
func TestFailedStartKeepsExitedState(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("network", "create", "--subnet", "10.78.31.0/24", "fsnet")
	t.Cleanup(func() { e.berth("network", "rm", "fsnet") })
	e.berth("run", "--name", "fs", "--network", "fsnet", ref, "sh", "-c", "exit 3")
	before := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.FinishedAt}}", "fs"))
	e.ok("network", "rm", "fsnet")
	if r := e.berth("start", "fs"); r.code == 0 {
		t.Fatalf("start without its network succeeded: %+v", r)
	}
	got := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.FinishedAt}}", "fs"))
	if got != "exited 3 "+before {
		t.Fatalf("after a failed start: %q, want %q", got, "exited 3 "+before)
	}
	if msg := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Error}}", "fs")); msg == "" {
		t.Fatal("State.Error is empty after a failed start")
	}
}
