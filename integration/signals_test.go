package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runSignalled starts `berth run ARGS`, sends sig to the berth process
// (or, group, to its process group, as a terminal's Ctrl-C does) delay
// after it started, and returns its exit code and stderr; it fails
// the test if berth has not exited within limit (then it is killed).
func (e *env) runSignalled(sig syscall.Signal, group bool, delay, limit time.Duration, args ...string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(berthBin, e.args(append([]string{"run"}, args...)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: group}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(delay)
	if group {
		syscall.Kill(-cmd.Process.Pid, sig)
	} else {
		cmd.Process.Signal(sig)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		e.t.Fatalf("berth run %v: still running %v after %v at +%v", args, limit, sig, delay)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), stderr.String()
		}
		return ee.ExitCode(), stderr.String()
	}
	e.t.Fatal(err)
	return 0, ""
}

// assertClean fails the test if any container, mount, bundle or runtime
// state is left.
func (e *env) assertClean(what string) {
	e.t.Helper()
	if ids := strings.Fields(e.ok("ps", "-a", "-q")); len(ids) > 0 {
		e.t.Errorf("%s: containers left: %v\n%s", what, ids, e.ok("ps", "-a"))
	}
	if l := e.leftovers(); len(l) > 0 {
		e.t.Errorf("%s: left over: %v", what, l)
	}
}

// TestSignalsForegroundRun sends SIGTERM/SIGINT to a foreground
// `berth run --rm --init` at points from "still parsing flags" to "the
// container runs": berth must catch the signal from the start, deliver it
// to the container once its process exists (Docker's sig-proxy), exit
// with the container's status (128+signal: tini re-raises it) and, --rm,
// leave nothing behind.
func TestSignalsForegroundRun(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", "-q", ref)
	delays := []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	cases := []struct {
		name    string
		sig     syscall.Signal
		network string
		group   bool
		delays  []time.Duration
		repeat  int
	}{
		{"none/TERM", syscall.SIGTERM, "none", false, delays, 3},
		{"none/INT", syscall.SIGINT, "none", false, []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}, 2},
		{"none/INT-group", syscall.SIGINT, "none", true, []time.Duration{50 * time.Millisecond, 80 * time.Millisecond, 110 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}, 2},
		{"bridge/TERM", syscall.SIGTERM, "bridge", false, []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.delays {
				for i := range tc.repeat {
					what := fmt.Sprintf("%v at +%v (#%d)", tc.sig, d, i)
					start := time.Now()
					code, stderr := e.runSignalled(tc.sig, tc.group, d, 15*time.Second, "--rm", "--init", "--network", tc.network, ref, "sleep", "20")
					if want := 128 + int(tc.sig); code != want {
						t.Errorf("%s: exit %d after %v, want %d; stderr: %s", what, code, time.Since(start).Round(time.Millisecond), want, stderr)
					}
					if elapsed := time.Since(start); elapsed > 8*time.Second {
						t.Errorf("%s: took %v", what, elapsed)
					}
					e.assertClean(what)
				}
			}
		})
	}
}

// TestSignalsSecondInterrupt checks that a second SIGINT is forwarded
// too (Docker's sig-proxy forwards each one): a container that traps the
// first one keeps running until the second.
func TestSignalsSecondInterrupt(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", "-q", ref)
	// The shell counts SIGINTs and exits 7 at the second; the marker on
	// stdout says the trap is set.
	script := `n=0; trap 'n=$((n+1)); [ $n -ge 2 ] && exit 7' INT; echo ready; while :; do sleep 0.1; done`
	cmd := exec.Command(berthBin, e.args("run", "--rm", "--network", "none", ref, "sh", "-c", script)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line == "ready\n" {
			close(ready)
		}
		io.Copy(io.Discard, stdout)
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("container never got ready; stderr: %s", stderr.String())
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		t.Fatalf("berth exited after the first SIGINT: %v; stderr: %s", err, stderr.String())
	case <-time.After(500 * time.Millisecond):
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("berth still running 5s after the second SIGINT")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit: %v, want status 7; stderr: %s", err, stderr.String())
	}
	e.assertClean("second SIGINT")
}
