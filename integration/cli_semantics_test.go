package integration

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartRunning: `start` of a running container is no error; it
// prints the name and exits 0, as Docker (its daemon answers 304). A
// paused one is still refused.
func TestStartRunning(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("run", "-d", "--name", "up", ref, "sleep", "300")
	defer e.berth("rm", "-f", "up")
	r := e.berth("start", "up")
	if r.code != 0 || r.stdout != "up\n" || r.stderr != "" {
		t.Fatalf("start of a running container: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if st := e.ok("inspect", "-f", "{{.State.Status}}", "up"); st != "running\n" {
		t.Fatalf("status after start: %q", st)
	}
	// One running, one missing: the running one prints, the missing one fails.
	r = e.berth("start", "up", "nosuch")
	if r.code != 1 || r.stdout != "up\n" || !strings.Contains(r.stderr, "No such container: nosuch") {
		t.Fatalf("start up nosuch: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	e.ok("pause", "up")
	if r := e.berth("start", "up"); r.code == 0 {
		t.Fatalf("start of a paused container succeeded: %q", r.stdout)
	}
	e.ok("unpause", "up")
}

// TestRmForceMissing: with -f a container that does not exist is skipped
// silently (docker CLI's rm); without -f it is an error.
func TestRmForceMissing(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("create", "--name", "there", ref, "true")
	e.ok("create", "--name", "also", ref, "true")
	r := e.berth("rm", "-f", "there", "nosuch")
	if r.code != 0 || r.stdout != "there\n" || r.stderr != "" {
		t.Fatalf("rm -f there nosuch: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = e.berth("rm", "also", "nosuch")
	if r.code != 1 || r.stdout != "also\n" || !strings.Contains(r.stderr, "No such container: nosuch") {
		t.Fatalf("rm also nosuch: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("left containers %q", ps)
	}
}

// TestLogsFollowTail: `logs -f --tail N` starts with the same last N
// lines `logs --tail N` shows, a final line without newline included, and
// keeps following; Ctrl-C ends it quietly with status 0, as Docker.
func TestLogsFollowTail(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	// Exited: the last line has no newline.
	e.ok("run", "--name", "done", ref, "sh", "-c", `printf 'a\nb\nc'`)
	if out := e.ok("logs", "--tail", "1", "done"); out != "c" {
		t.Fatalf("logs --tail 1: %q", out)
	}
	if out := e.ok("logs", "-f", "--tail", "1", "done"); out != "c" {
		t.Fatalf("logs -f --tail 1 of an exited container: %q", out)
	}
	if out := e.ok("logs", "-f", "--tail", "2", "done"); out != "b\nc" {
		t.Fatalf("logs -f --tail 2 of an exited container: %q", out)
	}
	// Running: the partial last line shows at once, not only when the
	// rest of its line comes; later output follows.
	e.ok("run", "-d", "--name", "live", ref, "sh", "-c", `printf 'a\nb\nc'; sleep 4; echo; echo d; sleep 300`)
	defer e.berth("rm", "-f", "live")
	waitLogs(t, e, "live", "c")
	if out := e.ok("logs", "--tail", "1", "live"); out != "c" {
		t.Fatalf("logs --tail 1 of a running container: %q", out)
	}
	cmd := exec.Command(berthBin, e.args("logs", "-f", "--tail", "1", "live")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	go func() {
		br := bufio.NewReader(stdout)
		var sb strings.Builder
		for _, want := range []string{"c", "c\nd\n"} {
			for sb.Len() < len(want) {
				b, err := br.ReadByte()
				if err != nil {
					break
				}
				sb.WriteByte(b)
			}
			got <- sb.String()
		}
		io.Copy(io.Discard, br)
	}()
	start := time.Now()
	for i, want := range []string{"c", "c\nd\n"} {
		select {
		case out := <-got:
			if out != want {
				t.Errorf("logs -f --tail 1 of a running container: %q, want %q", out, want)
			}
			if i == 0 && time.Since(start) > 3*time.Second {
				t.Errorf("logs -f --tail 1 showed the partial last line only after %v", time.Since(start))
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("logs -f --tail 1 did not show %q (stderr %q)", want, stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || stderr.Len() != 0 {
			t.Fatalf("logs -f after Ctrl-C: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("logs -f did not end on SIGINT")
	}
}

// waitLogs waits until the container's log ends with suffix.
func waitLogs(t *testing.T, e *env, name, suffix string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := e.ok("logs", name)
		if strings.HasSuffix(out, suffix) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s: %q, want it to end with %q", name, out, suffix)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExposeRange: `--expose START-END` is one exposed port per number,
// as the docker CLI sends it; -P publishes each.
func TestExposeRange(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("run", "-d", "-P", "--expose", "9000-9001", "--expose", "9100/udp", "--name", "ex", ref, "sleep", "300")
	defer e.berth("rm", "-f", "ex")
	out := e.ok("port", "ex")
	for _, p := range []string{"9000/tcp -> 0.0.0.0:", "9001/tcp -> 0.0.0.0:", "9100/udp -> 0.0.0.0:"} {
		if !strings.Contains(out, p) {
			t.Errorf("port ex lacks %q:\n%s", p, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("port ex: %d mappings, want 3:\n%s", n, out)
	}
}

// TestCreateOptionsAccepted: the valid forms next to the refused ones in
// TestBadInput reach the container: --log-opt max-size, the log drivers
// berth names, a stop signal by name or number.
func TestCreateOptionsAccepted(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("create", "--name", "lo", "--log-driver", "json-file", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "--stop-signal", "usr1", ref, "true")
	if got := e.ok("inspect", "-f", "{{json .HostConfig.LogConfig.Config}} {{.Config.StopSignal}}", "lo"); got != `{"max-file":"2","max-size":"1k"} usr1`+"\n" {
		t.Fatalf("inspect: %q", got)
	}
	e.ok("create", "--name", "k8s", "--log-driver", "k8s-file", "--stop-signal", "10", ref, "true")
	e.ok("rm", "lo", "k8s")
}

// TestWaitRemoved: `wait` on an --rm container that ends at once prints
// its exit code, as Docker's, although the container removes itself soon
// after the exit.
func TestWaitRemoved(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	for i := range 8 {
		// It must still exist when wait starts (as for Docker's wait,
		// a container already gone is "No such container").
		id := strings.TrimSpace(e.ok("run", "-d", "--rm", "--network", "none", ref, "sh", "-c", "sleep 0.5; exit 3"))
		if r := e.berth("wait", id); r.code != 0 || strings.TrimSpace(r.stdout) != "3" {
			t.Fatalf("run %d: wait: exit %d stdout %q stderr %q", i, r.code, r.stdout, r.stderr)
		}
	}
}
