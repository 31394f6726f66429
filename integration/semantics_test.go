package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSemantics checks Docker's documented run behaviour rule by rule.
func TestRunSemantics(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bind mount", []string{"-v", host + ":/data", ref, "cat", "/data/in.txt"}, "from host\n"},
		{"bind mount read-only", []string{"-v", host + ":/data:ro", ref, "sh", "-c", "touch /data/x 2>/dev/null || echo refused"}, "refused\n"},
		{"--mount bind", []string{"--mount", "type=bind,source=" + host + ",target=/m,readonly", ref, "cat", "/m/in.txt"}, "from host\n"},
		{"tmpfs", []string{"--tmpfs", "/scratch:size=1m", ref, "sh", "-c", "grep -c ' /scratch tmpfs' /proc/mounts"}, "1\n"},
		{"read-only rootfs", []string{"--read-only", ref, "sh", "-c", "touch /x 2>/dev/null || echo refused"}, "refused\n"},
		{"entrypoint empty clears cmd", []string{"--entrypoint", "", ref, "echo", "only"}, "only\n"},
		{"init is pid 1", []string{"--init", ref, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' ' "},
		{"ulimit", []string{"--ulimit", "nofile=512:1024", ref, "sh", "-c", "ulimit -n"}, "512\n"},
		{"memory limit", []string{"-m", "64m", ref, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"}, "67108864\n"},
		{"pids limit", []string{"--pids-limit", "50", ref, "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"}, "50\n"},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges", ref, "sh", "-c", "grep NoNewPrivs /proc/self/status | tr -d '\\t'"}, "NoNewPrivs:1\n"},
		{"cap-drop", []string{"--cap-drop", "ALL", ref, "sh", "-c", "grep CapEff /proc/self/status | tr -d '\\t'"}, "CapEff:0000000000000000\n"},
		{"hosts file", []string{"--hostname", "boat", ref, "sh", "-c", "grep -c boat /etc/hosts; cat /etc/hostname"}, "1\nboat\n"},
		{"last line without newline", []string{ref, "sh", "-c", "printf 'a\\nno newline'"}, "a\nno newline"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if out := e.ok(append([]string{"run", "--rm"}, c.args...)...); out != c.want {
				t.Fatalf("got %q, want %q", out, c.want)
			}
		})
	}
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"ulimit above hard limit", []string{"--ulimit", "nofile=1000000:1000000"}, "hard limit"},
		{"bad volume", []string{"-v", "relative:dst"}, "invalid"},
		{"missing bind source", []string{"--mount", "type=bind,source=/no/such/dir,target=/x"}, "bind source path does not exist"},
		{"bad restart", []string{"--restart", "sometimes"}, "invalid restart policy"},
		{"rm with restart", []string{"--rm", "--restart", "always"}, "conflicting options"},
		{"memory too small", []string{"-m", "1m"}, "Minimum memory limit"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := e.berth(append(append([]string{"run", "--rm"}, c.args...), ref, "true")...)
			if r.code != 125 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Fatalf("exit %d stderr %q; want 125 and one line with %q", r.code, r.stderr, c.want)
			}
		})
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("left containers: %q", ps)
	}
}

// TestDetachedLifecycle: run -d under the monitor, logs, stop with the
// SIGKILL fallback, --init, restart policies, wait, start again.
func TestDetachedLifecycle(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)

	// A PID 1 that ignores SIGTERM is killed after the timeout: 137.
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "stubborn", ref, "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-digit ID", id)
	}
	e.waitLog("stubborn")
	start := time.Now()
	e.ok("stop", "-t", "1", "stubborn")
	if took := time.Since(start); took < time.Second {
		t.Fatalf("stop took %s: the 1 s timeout for a container ignoring SIGTERM was not honoured", took)
	}
	if ps := e.ok("ps", "-a"); !strings.Contains(ps, "Exited (137)") {
		t.Fatalf("ps -a after stop:\n%s", ps)
	}
	if out := e.ok("wait", "stubborn"); out != "137\n" {
		t.Fatalf("wait: %q", out)
	}
	// With --init the shell is not PID 1: SIGTERM ends it, 143.
	e.ok("run", "-d", "--init", "--name", "gentle", ref, "sh", "-c", "echo ready; while :; do sleep 1; done")
	e.waitLog("gentle")
	e.ok("stop", "gentle")
	if out := e.ok("wait", "gentle"); out != "143\n" {
		t.Fatalf("--init stop: wait says %q, want 143", out)
	}
	// Logs keep both streams and survive the container's exit.
	// (The pause orders the entries: output of both streams read in one
	// go is logged stdout first; --tail counts entries in log order.)
	e.ok("run", "-d", "--name", "talker", ref, "sh", "-c", "echo out; echo err >&2; sleep 0.2; printf tail")
	if out := e.ok("wait", "talker"); out != "0\n" {
		t.Fatalf("wait talker: %q", out)
	}
	r := e.berth("logs", "talker")
	if r.stdout != "out\ntail" || r.stderr != "err\n" {
		t.Fatalf("logs: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if out := e.ok("logs", "--tail", "1", "talker"); out != "tail" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	// Start again appends to the log.
	e.ok("start", "talker")
	e.ok("wait", "talker")
	if out := e.ok("logs", "talker"); strings.Count(out, "out\n") != 2 {
		t.Fatalf("logs after a restart: %q", out)
	}
	// on-failure:2 restarts twice, then stays exited.
	e.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:2", ref, "sh", "-c", "echo try; exit 1")
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := e.ok("logs", "flaky")
		ps := e.ok("ps", "-a", "--filter", "name=flaky")
		if strings.Count(out, "try") == 3 && strings.Contains(ps, "Exited (1)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on-failure:2: logs %q\n%s", out, ps)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// --rm with -d: the monitor removes the container when it exits.
	e.ok("run", "-d", "--rm", "--name", "brief", ref, "true")
	for i := 0; ; i++ {
		if !strings.Contains(e.ok("ps", "-a"), "brief") {
			break
		}
		if i > 100 {
			t.Fatal("run -d --rm: container never went away")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Kill with a signal.
	e.ok("run", "-d", "--name", "target", ref, "sh", "-c", "echo ready; while :; do sleep 1; done")
	e.waitLog("target")
	e.ok("kill", "-s", "KILL", "target")
	if out := e.ok("wait", "target"); out != "137\n" {
		t.Fatalf("kill -s KILL: wait says %q", out)
	}
	if r := e.berth("kill", "target"); r.code != 1 || !strings.Contains(r.stderr, "is not running") {
		t.Fatalf("kill of a stopped container: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "-f", "stubborn", "gentle", "talker", "flaky", "target")
	if l := e.leftovers(); len(l) > 0 {
		t.Fatalf("leftovers: %v", l)
	}
}
