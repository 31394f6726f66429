package ociruntime

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestReceptive reads real processes' signal masks: the Go test binary
// catches SIGURG, a plain sleep leaves SIGTERM at its default, a process
// whose exe is the "runtime" counts as not yet exec'd, a gone pid counts
// as receptive (nothing to wait for).
func TestReceptive(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !receptive(os.Getpid(), syscall.SIGURG, "/no/such/runtime") {
		t.Error("the Go runtime catches SIGURG, receptive said no")
	}
	if receptive(os.Getpid(), syscall.SIGURG, self) {
		t.Error("a process running the runtime's binary counted as receptive")
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	pid := cmd.Process.Pid
	if receptive(pid, syscall.SIGTERM, "/no/such/runtime") {
		t.Error("sleep leaves SIGTERM at its default, receptive said yes")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !receptive(pid, syscall.SIGTERM, "/no/such/runtime") {
		t.Error("a gone process counted as not receptive")
	}
}
