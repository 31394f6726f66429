package integration

import (
	"strings"
	"testing"
	"time"
)

// TestStopEndsRestartLoop: `stop` of a container between two restarts of
// --restart always ends the loop, as in Docker.
func TestStopEndsRestartLoop(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "--name", "looper", "--network", "none", "--restart", "always", ref, "sh", "-c", "exit 1")
	deadline := time.Now().Add(20 * time.Second)
	for strings.TrimSpace(e.ok("inspect", "-f", "{{.RestartCount}}", "looper")) < "2" {
		if time.Now().After(deadline) {
			t.Fatal("the container never restarted twice")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.ok("stop", "looper")
	time.Sleep(300 * time.Millisecond) // a restart already under way settles
	e.ok("stop", "looper")
	before := strings.TrimSpace(e.ok("inspect", "-f", "{{.RestartCount}}", "looper"))
	time.Sleep(4 * time.Second) // longer than the back-off at this count
	// A stop that lands inside a restart's start can leave "created"
	// rather than Docker's "exited" (noted); either way the loop is over.
	after := strings.Fields(e.ok("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", "looper"))
	if len(after) != 2 || after[0] != before || after[1] == "running" {
		t.Fatalf("after stop: restart count and status %q, want %s and not running", after, before)
	}
	e.ok("rm", "-f", "looper")
}
