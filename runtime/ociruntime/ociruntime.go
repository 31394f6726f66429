// Package ociruntime drives an OCI runtime binary (runc, crun, …) through
// its standard command line, as containerd's runc shim and Podman do.
package ociruntime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Runtime is an OCI runtime CLI. Binary is the runtime's absolute path;
// Root is the runtime's state directory (its --root). Wrapper, when set,
// is the argv the invocations that create a container (run, and create
// through a monitor) run under (see New: crun on a cgroup v1 hybrid
// host); Binary follows it.
//
// BPFCache (crun only) is the directory of compiled seccomp programs (see
// AdjustSpec); "" for none.
type Runtime struct {
	Binary   string
	Root     string
	Wrapper  []string
	BPFCache string

	crun         bool      // the binary is crun (New)
	binaryID     string    // the binary's and libseccomp's identity (bpfCacheKey)
	binaryIDOnce sync.Once // binaryID is computed on first use
	pendingBPF   sync.Map  // container id → cache key of a program to keep
}

var _ runtime.Runtime = (*Runtime)(nil)

// New finds binary (a name looked up in $PATH or a path) and returns a
// Runtime keeping its state under root. A missing binary gives
// errdefs.ErrNotFound.
//
// crun refuses to run on a cgroup v1 host whose cgroup2 hierarchy is also
// mounted at /sys/fs/cgroup/unified ("hybrid" mode, systemd's default on
// older distributions) when it creates a container: on such a host
// `crun run` and `crun create` run in a mount namespace of their own
// where that cgroup2 mount is detached, which leaves crun the v1
// hierarchies it drives (hybridWrapper). Its other commands (start,
// state, kill, delete, exec, pause, resume, ps) work unwrapped.
func New(binary, root string) (*Runtime, error) {
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("OCI runtime %q not found in $PATH (install it, e.g. apt-get install runc): %w", binary, errdefs.ErrNotFound)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, err
	}
	r := &Runtime{Binary: path, Root: root}
	if isCrun(path) {
		r.crun = true
		if cgroupHybrid() {
			if r.Wrapper, err = hybridWrapper(); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Open is New with Berth's layout under runRoot: the runtime's state in
// runRoot/runtime/NAME (NAME the binary's base name) and, for crun, the
// compiled seccomp programs in runRoot/cache/seccomp-bpf.
func Open(binary, runRoot string) (*Runtime, error) {
	r, err := New(binary, filepath.Join(runRoot, "runtime", filepath.Base(binary)))
	if err == nil && r.crun {
		r.BPFCache = filepath.Join(runRoot, "cache", "seccomp-bpf")
	}
	return r, err
}

// isCrun reports whether the runtime binary at path is crun (by its name,
// symlinks resolved).
func isCrun(path string) bool {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return filepath.Base(path) == "crun"
}

// cgroupHybrid reports whether /sys/fs/cgroup is a cgroup v1 tree (a
// tmpfs of hierarchies) with the cgroup2 hierarchy mounted beside them at
// /sys/fs/cgroup/unified.
func cgroupHybrid() bool {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) != nil || st.Type != unix.TMPFS_MAGIC {
		return false
	}
	return unix.Statfs(unifiedMount, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

const unifiedMount = "/sys/fs/cgroup/unified"

// hybridWrapper is the argv prefix that runs a command in a new mount
// namespace (util-linux unshare, recursively private so nothing leaks
// back to the host) with the cgroup2 mount at /sys/fs/cgroup/unified
// detached: `unshare --mount sh -c 'umount -l …; exec "$0" "$@"'`. The
// namespace lives as long as the wrapped runtime process; the containers
// it makes get mount namespaces of their own, as always. A missing
// unshare or sh gives errdefs.ErrNotFound.
func hybridWrapper() ([]string, error) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return nil, fmt.Errorf("crun on a cgroup v1 hybrid host needs unshare (util-linux): %w", errdefs.ErrNotFound)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, fmt.Errorf("crun on a cgroup v1 hybrid host needs sh: %w", errdefs.ErrNotFound)
	}
	return []string{unshare, "--mount", "--propagation", "private", sh, "-c",
		`umount -l ` + unifiedMount + ` && exec "$0" "$@"`}, nil
}

// stateFile is the file the runtime keeps a container's state in, under
// Root/ID: crun's "status", runc's "state.json". Until it exists the
// runtime knows no such container.
func (r *Runtime) stateFile() string {
	if r.crun {
		return "status"
	}
	return "state.json"
}

// Argv is the command line that runs the runtime with args: Binary,
// --root Root, args; with creates, which the args make a container, under
// Wrapper.
func (r *Runtime) Argv(creates bool, args ...string) []string {
	argv := make([]string, 0, len(r.Wrapper)+3+len(args))
	if creates {
		argv = append(argv, r.Wrapper...)
	}
	argv = append(argv, r.Binary, "--root", r.Root)
	return append(argv, args...)
}

// Command is an exec.Cmd for Argv(false, args...): a command on an
// existing container (start, state, kill, delete, exec, pause …).
func (r *Runtime) Command(ctx context.Context, args ...string) *exec.Cmd {
	argv := r.Argv(false, args...)
	return exec.CommandContext(ctx, argv[0], argv[1:]...)
}

// MonitorArgs splits Argv(true, args...) into the program and the
// arguments a monitor passes before its subcommand (conmon's -r and
// --runtime-arg), for a monitor that creates the container.
func (r *Runtime) MonitorArgs(args ...string) (program string, globalArgs []string) {
	argv := r.Argv(true, args...)
	return argv[0], argv[1:]
}

// Run runs `RUNTIME run --pid-file --log … ID` on the bundle: one runtime
// process creates and starts the container, forwards signals to it, waits
// for it and deletes its state (no `delete` is needed afterwards). The
// container's stdio are stdio's files. The runtime also writes its errors
// to that stderr; Wait's error is read from the runtime's JSON log
// instead, so a caller that hides the runtime's text holds back what
// arrives on stderr until Started and drops it on failure (the pid file
// appears only once the container's process runs).
func (r *Runtime) Run(ctx context.Context, id, bundle string, stdio runtime.Stdio) (runtime.Process, error) {
	pidFile := filepath.Join(bundle, "init.pid")
	logFile := filepath.Join(bundle, "runtime.log")
	os.Remove(pidFile)
	argv := r.Argv(true, "--log", logFile, "--log-format", "json",
		"run", "--pid-file", pidFile, "--bundle", bundle, id)
	cmd := exec.Command(argv[0], argv[1:]...)
	// A nil *os.File must stay a nil interface (exec then gives /dev/null).
	if stdio.Stdin != nil {
		cmd.Stdin = stdio.Stdin
	}
	if stdio.Stdout != nil {
		cmd.Stdout = stdio.Stdout
	}
	if stdio.Stderr != nil {
		cmd.Stderr = stdio.Stderr
	}
	// A process group of its own: a terminal's Ctrl-C must reach only the
	// caller, which relays it to the container once that runs (a SIGINT
	// to the runtime while it creates the container breaks the start).
	// Not with a terminal as stdin: the container must stay able to read
	// it, which a background process group cannot.
	if stdio.Stdin == nil || !isTerminal(stdio.Stdin) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start OCI runtime: %w", err)
	}
	p := &process{id: id, logFile: logFile, started: make(chan struct{}), done: make(chan struct{}),
		onPid: func() { r.keepBPF(id) }}
	if exe, err := filepath.EvalSymlinks(r.Binary); err == nil {
		p.runtimeExe = exe
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	go p.watchPidFile(pidFile)
	return p, nil
}

// process is a container under `RUNTIME run`.
type process struct {
	id, logFile string
	started     chan struct{}
	pid         atomic.Int64
	done        chan struct{} // closed when the runtime exited
	waitErr     error
	runtimeExe  string    // the runtime binary's real path
	onPid       func()    // if set, runs once the pid is known
	settleUntil time.Time // see awaitReceptive; set before pid
}

// watchPidFile closes started once the pid file appears or the runtime
// has exited. It waits on inotify events of the bundle directory (runc
// renames the pid file into place, crun writes it), so that the pid is
// known the moment it is written; where inotify is unavailable it polls.
func (p *process) watchPidFile(path string) {
	defer close(p.started)
	if p.readPid(path) {
		return
	}
	if ev, err := watchDir(filepath.Dir(path)); err == nil {
		defer ev.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-p.done:
				ev.SetReadDeadline(time.Now()) // ends the Read below
			case <-stop:
			}
		}()
		buf := make([]byte, 4096)
		for !p.readPid(path) {
			if _, err := ev.Read(buf); err != nil {
				return // the runtime exited (or inotify failed: Wait tells)
			}
		}
		return
	}
	delay := min(500*time.Microsecond, maxPollDelay)
	for !p.readPid(path) {
		select {
		case <-p.done:
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, maxPollDelay)
	}
}

// maxPollDelay bounds the polling interval where inotify is unavailable
// (the pid file shows up within tens of milliseconds); tests raise it.
var maxPollDelay = 20 * time.Millisecond

// readPid stores the pid the file at path holds and reports whether it
// held one.
func (p *process) readPid(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return false
	}
	p.settleUntil = time.Now().Add(settleTime)
	if p.onPid != nil {
		p.onPid()
	}
	p.pid.Store(int64(pid)) // publishes settleUntil to Signal
	return true
}

// watchDir returns a non-blocking inotify descriptor (read through Go's
// poller, so that deadlines work) watching dir for files written or
// renamed into it.
func watchDir(dir string) (*os.File, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "inotify:"+dir), nil
}

func (p *process) Started() <-chan struct{} { return p.started }
func (p *process) Done() <-chan struct{}    { return p.done }
func (p *process) Pid() int                 { return int(p.pid.Load()) }

// Signal sends sig to the container's process; errdefs.ErrNotFound
// before its pid is known and once the runtime has exited (the pid may
// then belong to another process). Just after the start it waits, briefly,
// until the process can receive sig (see awaitReceptive).
func (p *process) Signal(sig syscall.Signal) error {
	pid := p.Pid()
	if pid <= 0 {
		return fmt.Errorf("container %s has no process yet: %w", p.id, errdefs.ErrNotFound)
	}
	p.awaitReceptive(pid, sig)
	select {
	case <-p.done:
		return fmt.Errorf("container %s has exited: %w", p.id, errdefs.ErrNotFound)
	default:
	}
	return syscall.Kill(pid, sig)
}

func (p *process) Wait() (int, error) {
	<-p.done
	<-p.started
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		return 0, nil
	case !errors.As(p.waitErr, &ee):
		return -1, fmt.Errorf("OCI runtime: %w", p.waitErr)
	}
	// The runtime logs an error only when it failed; otherwise its exit
	// status is the container's.
	if msg := LogError(p.logFile); msg != "" {
		return -1, ClassifyStartError(p.id, msg)
	}
	return ee.ExitCode(), nil
}

// Start runs `RUNTIME start ID` on a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.keepBPF(id)
	out, err := r.Command(ctx, "start", id).CombinedOutput()
	if err != nil {
		return r.wrap(id, "start", out, err)
	}
	return nil
}

// ClassifyStartError turns an OCI runtime's create/start error text into
// an error matching runtime.ErrCommandNotFound or ErrCommandNotExecutable
// when the container's executable is missing or cannot run (Docker exits
// 127 and 126 for those); other text gives a plain error.
func ClassifyStartError(id, msg string) error {
	msg = DockerWording(strings.Join(strings.Fields(msg), " "))
	short := id[:min(12, len(id))]
	switch {
	case strings.Contains(msg, "executable file not found"), // runc
		strings.Contains(msg, "executable file `") && strings.Contains(msg, "not found"), // crun
		strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "exec"):
		return fmt.Errorf("failed to create container %s: %s: %w", short, msg, runtime.ErrCommandNotFound)
	case strings.Contains(msg, "permission denied") && strings.Contains(msg, "exec"), strings.Contains(msg, "is a directory"),
		strings.HasPrefix(msg, "open executable: "): // crun: a directory or a file without x bits
		return fmt.Errorf("failed to create container %s: %s: %w", short, msg, runtime.ErrCommandNotExecutable)
	}
	return fmt.Errorf("OCI runtime failed to start container %s: %s", short, msg)
}

// DockerWording rewrites crun's text for a command that cannot be run
// into the words runc (and so Docker) uses, so that the message does not
// depend on the runtime: "executable file `X` not found in $PATH: …"
// becomes `exec: "X": executable file not found in $PATH` (or, for a path,
// `exec: "X": stat X: no such file or directory`), "open executable:
// Permission denied" (a file without x bits) and "open executable:
// Operation not permitted" (a directory) become "exec: permission
// denied". Other text is returned unchanged.
func DockerWording(msg string) string {
	const pre, post = "executable file `", "` not found in $PATH"
	if rest, ok := strings.CutPrefix(msg, pre); ok {
		if name, _, ok := strings.Cut(rest, post); ok {
			if strings.Contains(name, "/") {
				return fmt.Sprintf("exec: %q: stat %s: no such file or directory", name, name)
			}
			return fmt.Sprintf("exec: %q: executable file not found in $PATH", name)
		}
	}
	if msg == "open executable: Permission denied" || msg == "open executable: Operation not permitted" {
		return "exec: permission denied" // a file without x bits; a directory
	}
	return msg
}

// startError builds the error for a failed run from the runtime's JSON
// log (its last "error" entry).
func startError(id, logFile string, runErr error) error {
	msg := LogError(logFile)
	if msg == "" {
		msg = runErr.Error()
	}
	return ClassifyStartError(id, msg)
}

// LogError is the message of the last "error" or "fatal" entry of an OCI
// runtime's JSON log (--log-format json) at path; "" when there is none.
func LogError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var last string
	for _, line := range bytes.Split(data, []byte("\n")) {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			last = entry.Msg
		}
	}
	return last
}

// Kill runs `RUNTIME kill [--all] ID SIG`.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	out, err := r.Command(ctx, append(args, id, strconv.Itoa(int(sig)))...).CombinedOutput()
	if err != nil {
		return r.wrap(id, "kill", out, err)
	}
	return nil
}

// Delete runs `RUNTIME delete [--force] ID`; an unknown id is not an error.
// When the runtime keeps no state directory for id (Root/ID, as runc and
// crun do) there is nothing to delete and no process is started.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	if _, err := os.Stat(filepath.Join(r.Root, id)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	out, err := r.Command(ctx, append(args, id)...).CombinedOutput()
	if err != nil {
		if err := r.wrap(id, "delete", out, err); !errdefs.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// State runs `RUNTIME state ID`.
func (r *Runtime) State(ctx context.Context, id string) (runtime.State, error) {
	var st runtime.State
	out, err := r.Command(ctx, "state", id).Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		return st, r.wrap(id, "state", stderr, err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("runtime state of %s: %w", id, err)
	}
	return st, nil
}

func (r *Runtime) wrap(id, op string, out []byte, err error) error {
	msg := strings.TrimSpace(string(out))
	if _, serr := os.Stat(filepath.Join(r.Root, id, r.stateFile())); errors.Is(serr, os.ErrNotExist) || strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") || strings.Contains(msg, "container not running") || strings.Contains(msg, "process already finished") {
		return fmt.Errorf("runtime %s %s: %s: %w", op, id, msg, errdefs.ErrNotFound)
	}
	if msg == "" {
		msg = err.Error()
	}
	return fmt.Errorf("runtime %s %s: %s", op, id, msg)
}
