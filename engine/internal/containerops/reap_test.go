package containerops

import (
	"errors"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitZombie waits until pid is a zombie child of this process.
func waitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(zombieChildren(), pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not become a zombie child", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReapOrphans: with this process a subreaper, an orphan re-parented
// here is reaped, while a child os/exec waits for and a claimed exec'd
// process are left to their waiters (their exit codes survive).
func TestReapOrphans(t *testing.T) {
	if !goHoldsPidfds() {
		t.Skip("os/exec holds no pidfds here: the reaper would not run")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	// An orphan: sh prints its background child's pid and exits.
	out, err := exec.Command("sh", "-c", "sleep 0.3 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	// A child os/exec will wait for.
	goChild := exec.Command("sh", "-c", "exit 3")
	if err := goChild.Start(); err != nil {
		t.Fatal(err)
	}
	// A claimed process (as Exec claims the process runc leaves): its
	// parent exits, so it is re-parented here as the orphan is.
	// (Each background process outlives its shell, which could otherwise
	// reap it before exiting.)
	out, err = exec.Command("sh", "-c", "sh -c 'sleep 0.3; exit 5' & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	claimedPid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	orphans.claim(claimedPid)
	waitZombie(t, orphan)
	waitZombie(t, goChild.Process.Pid)
	waitZombie(t, claimedPid)

	reaped := orphans.reapOnce()
	if !slices.Contains(reaped, orphan) {
		t.Errorf("orphan %d not reaped (reaped %v)", orphan, reaped)
	}
	if slices.Contains(reaped, goChild.Process.Pid) || slices.Contains(reaped, claimedPid) {
		t.Errorf("reaped a child somebody waits for: %v", reaped)
	}
	if slices.Contains(zombieChildren(), orphan) {
		t.Errorf("orphan %d is still a zombie", orphan)
	}
	var ee *exec.ExitError
	if err := goChild.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("os/exec's child: %v, want exit status 3", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(claimedPid, &ws, 0, nil); err != nil || ws.ExitStatus() != 5 {
		t.Errorf("claimed process: %v status %d, want 5", err, ws.ExitStatus())
	}
	orphans.release(claimedPid)

	// While an exec is starting (the gate held), nothing is reaped.
	out, _ = exec.Command("sh", "-c", "sleep 0.3 & echo $!").Output()
	late, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	waitZombie(t, late)
	orphans.gate.RLock()
	if r := orphans.reapOnce(); len(r) != 0 {
		t.Errorf("reaped %v while an exec was starting", r)
	}
	orphans.gate.RUnlock()
	if r := orphans.reapOnce(); !slices.Contains(r, late) {
		t.Errorf("orphan %d not reaped once the gate was free: %v", late, r)
	}
}
