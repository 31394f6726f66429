package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAttach: attach to a detached container under its monitor: output
// streams, stdin with -i, and the container's exit status as berth's.
func TestAttach(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "-i", "--name", "echoer", "--network", "none", ref, "sh", "-c", "read x; echo got $x; echo oops >&2; exit 2")
	cmd := exec.Command(berthBin, e.args("attach", "echoer")...)
	cmd.Stdin = strings.NewReader("hello\n")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("attach: %v (stderr %q), want exit 2", err, errb.String())
	}
	if out.String() != "got hello\n" || errb.String() != "oops\n" {
		t.Fatalf("attach: stdout %q stderr %q", out.String(), errb.String())
	}
	if r := e.berth("attach", "echoer"); r.code != 1 || !strings.Contains(r.stderr, "You cannot attach to a stopped container") {
		t.Fatalf("attach to a stopped container: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "echoer")
}
