package ociruntime

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/runtime"
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

// TestClassifyStartError checks that runc's and crun's texts for a missing
// and for a non-executable command map to Docker's 127 and 126 errors,
// and that other text does not.
func TestClassifyStartError(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want error
	}{
		{`runc create failed: unable to start container process: exec: "/nope": stat /nope: no such file or directory`, runtime.ErrCommandNotFound},
		{`exec: "nope": executable file not found in $PATH`, runtime.ErrCommandNotFound},
		{"executable file `/nope` not found in $PATH: No such file or directory", runtime.ErrCommandNotFound},
		{`runc create failed: unable to start container process: exec: "/etc/passwd": permission denied`, runtime.ErrCommandNotExecutable},
		{"open executable: Permission denied", runtime.ErrCommandNotExecutable},
		{"open executable: Operation not permitted", runtime.ErrCommandNotExecutable},
		{"mount `proc` to `/proc`: Operation not permitted", nil},
	} {
		err := ClassifyStartError("0123456789abcdef", tc.msg)
		for _, sentinel := range []error{runtime.ErrCommandNotFound, runtime.ErrCommandNotExecutable} {
			if got := errors.Is(err, sentinel); got != (sentinel == tc.want) {
				t.Errorf("ClassifyStartError(%q) = %v; errors.Is(%v) = %v", tc.msg, err, sentinel, got)
			}
		}
		if !strings.Contains(err.Error(), "0123456789ab") || strings.Contains(err.Error(), "0123456789abc") {
			t.Errorf("error %q does not name the short id", err)
		}
	}
	// crun's words become runc's (Docker's).
	for msg, want := range map[string]string{
		"executable file `nope` not found in $PATH: No such file or directory":    `exec: "nope": executable file not found in $PATH`,
		"executable file `/no/bin` not found in $PATH: No such file or directory": `exec: "/no/bin": stat /no/bin: no such file or directory`,
		"open executable: Permission denied":                                      "exec: permission denied",
		"open executable: Operation not permitted":                                "exec: permission denied",
	} {
		if err := ClassifyStartError("0123456789abcdef", msg); !strings.Contains(err.Error(), "0123456789ab: "+want+": ") {
			t.Errorf("ClassifyStartError(%q) = %q, want it to hold %q", msg, err, want)
		}
	}
}

// TestArgvWrapper checks the command lines of a plain runtime and of one
// under a wrapper, and how a monitor receives them.
func TestArgvWrapper(t *testing.T) {
	r := &Runtime{Binary: "/usr/bin/runc", Root: "/run/x"}
	if got, want := r.Argv(true, "state", "id"), []string{"/usr/bin/runc", "--root", "/run/x", "state", "id"}; !slices.Equal(got, want) {
		t.Errorf("Argv = %q, want %q", got, want)
	}
	r = &Runtime{Binary: "/usr/bin/crun", Root: "/run/y", Wrapper: []string{"/usr/bin/unshare", "--mount", "/bin/sh", "-c", `exec "$0" "$@"`}}
	prog, args := r.MonitorArgs("--log", "l")
	if want := []string{"--mount", "/bin/sh", "-c", `exec "$0" "$@"`, "/usr/bin/crun", "--root", "/run/y", "--log", "l"}; prog != "/usr/bin/unshare" || !slices.Equal(args, want) {
		t.Errorf("MonitorArgs = %q %q, want /usr/bin/unshare %q", prog, args, want)
	}
	if got, want := r.Command(t.Context(), "kill", "id").Args, []string{"/usr/bin/crun", "--root", "/run/y", "kill", "id"}; !slices.Equal(got, want) {
		t.Errorf("Command args = %q, want %q (no wrapper for a command on an existing container)", got, want)
	}
}

// TestHybridWrapperRunsCommand runs a command under hybridWrapper, as root
// on a host with /sys/fs/cgroup/unified mounted: the command runs, gets
// its arguments, and sees no cgroup2 mount there, while the caller's
// mount namespace still has it.
func TestHybridWrapperRunsCommand(t *testing.T) {
	if os.Geteuid() != 0 || !cgroupHybrid() {
		t.Skip("needs root on a cgroup v1 hybrid host")
	}
	w, err := hybridWrapper()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(w, "/bin/sh", "-c", `echo "$1"; grep -c " /sys/fs/cgroup/unified " /proc/self/mountinfo || true`, "sh", "arg one")
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		t.Fatalf("%q: %v", argv, err)
	}
	if got := string(out); got != "arg one\n0\n" {
		t.Errorf("output %q, want the argument and no unified mount", got)
	}
	if !cgroupHybrid() {
		t.Error("the caller lost its cgroup2 mount")
	}
}
