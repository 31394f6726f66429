package ociruntime

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func newTestProcess() *process {
	return &process{id: "test", started: make(chan struct{}), done: make(chan struct{})}
}

// TestPidFileSeenAtOnce checks that Started closes as soon as the pid file
// is renamed into place (as runc writes it) or written in place (as crun
// does), not at a polling interval (made 10 s here, so that a poller
// fails), and that Pid then reports it.
func TestPidFileSeenAtOnce(t *testing.T) {
	defer func(d time.Duration) { maxPollDelay = d }(maxPollDelay)
	maxPollDelay = 10 * time.Second
	for _, how := range []string{"rename", "write"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "init.pid")
			p := newTestProcess()
			go p.watchPidFile(path)
			time.Sleep(20 * time.Millisecond)                                      // past a poller's first look
			os.WriteFile(filepath.Join(dir, "runtime.log"), []byte("{}\n"), 0o600) // an unrelated event
			written := time.Now()
			var err error
			if how == "rename" {
				tmp := filepath.Join(dir, ".init.pid")
				if err = os.WriteFile(tmp, []byte("4242"), 0o600); err == nil {
					err = os.Rename(tmp, path)
				}
			} else {
				err = os.WriteFile(path, []byte("4242"), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.Started():
			case <-time.After(3 * time.Second):
				t.Fatal("Started not closed 3 s after the pid file appeared")
			}
			t.Logf("pid file seen %v after it was written", time.Since(written))
			if p.Pid() != 4242 {
				t.Errorf("Pid = %d, want 4242", p.Pid())
			}
		})
	}
}

// TestPidFileRuntimeExits checks that Started closes with no pid when the
// runtime exits without writing the pid file (a failed start).
func TestPidFileRuntimeExits(t *testing.T) {
	p := newTestProcess()
	go p.watchPidFile(filepath.Join(t.TempDir(), "init.pid"))
	time.Sleep(20 * time.Millisecond)
	close(p.done)
	select {
	case <-p.Started():
	case <-time.After(5 * time.Second):
		t.Fatal("Started not closed after the runtime exited")
	}
	if p.Pid() != 0 {
		t.Errorf("Pid = %d after a failed start, want 0", p.Pid())
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after the runtime exited")
	}
}
