package containerops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions are the settings of `exec`, Docker's flags.
type ExecOptions struct {
	// Cmd is the command and its arguments; it must not be empty.
	Cmd []string
	// Env entries ("KEY=VALUE") are laid over the container's environment.
	Env []string
	// User overrides the container's user (runtime.ResolveUser syntax,
	// resolved against the container's /etc/passwd and /etc/group).
	User string
	// WorkingDir overrides the container's working directory; absolute.
	WorkingDir string
	// Tty allocates a pseudo-terminal (-t); Interactive keeps stdin open
	// (-i); Detach leaves the process running in the background (-d).
	Tty, Interactive, Detach bool
}

// ExecIO is where an exec'd process's streams go. Stdin is read only with
// Interactive; nil writers discard.
type ExecIO struct {
	Stdin          *os.File
	Stdout, Stderr io.Writer
}

// ExecProcess is a process started by Exec.
type ExecProcess struct {
	// Pid is the process's pid in the caller's pid namespace.
	Pid int
	// Console is the pty master of a Tty process (nil otherwise); Exec
	// copies it to and from the ExecIO itself.
	Console  *os.File
	copyDone chan struct{}
	detached bool
	claimed  bool // its pid is in orphans.claimed until Wait reaps it
}

// Exec runs a new process in the running container c (its bundle
// directory at bundle), as `docker exec`,
// through the OCI runtime's `exec --detach`: the process gets the
// container's environment, user and working directory (overridden by
// opts), its capabilities and security settings. In the foreground
// (!opts.Detach) the caller becomes a child subreaper and must call Wait;
// from then on it also reaps the orphans re-parented to it (daemonized
// monitors, for one) that nobody waits for: see reap.go.
// A detached process with a terminal (-d -t) runs under a monitor (in exec
// mode) that holds its terminal, since this process will not.
//
// Errors: errdefs.ErrNotFound for an unknown container; errdefs.ErrConflict
// when it is not running ("container ID is not running") or is paused;
// errdefs.ErrInvalidArgument for an empty command, a relative working
// directory or an unknown user (the latter also matches
// runtime.ErrCommandNotExecutable: Docker's 126); runtime.ErrCommandNotFound and
// runtime.ErrCommandNotExecutable when the command is missing or cannot be
// run (Docker's 127 and 126); any other failure of the OCI runtime to
// start the process (a missing working directory) also matches
// runtime.ErrCommandNotExecutable, as Docker's exec exits 126 then.
func Exec(ctx context.Context, r runtime.Runtime, c record.Container, bundle string, opts ExecOptions, stdio ExecIO) (*ExecProcess, error) {
	if len(opts.Cmd) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if c.State.Status != record.StatusRunning {
		return nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	if c.State.Paused {
		return nil, fmt.Errorf("container %s is paused, unpause the container before exec: %w", c.ID, errdefs.ErrConflict)
	}
	rt, err := OCI(r, "exec")
	if err != nil {
		return nil, err
	}
	proc, err := execProcessSpec(filepath.Join(bundle, "config.json"), filepath.Join(bundle, "rootfs"), opts)
	if err != nil {
		return nil, err
	}
	p := &ExecProcess{copyDone: make(chan struct{}), detached: opts.Detach}
	if !opts.Detach {
		if err := becomeSubreaper(); err != nil {
			return nil, err
		}
		// No orphan is reaped until the process's pid is claimed below:
		// it is re-parented here once the runtime exits, and may end
		// before its pid file is read.
		orphans.gate.RLock()
		defer func() {
			if !p.claimed {
				orphans.gate.RUnlock()
			}
		}()
	}
	tmp, err := os.MkdirTemp("", "berth-exec-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	data, err := json.Marshal(proc)
	if err != nil {
		return nil, err
	}
	procFile, pidFile, logFile := filepath.Join(tmp, "process.json"), filepath.Join(tmp, "pid"), filepath.Join(tmp, "log")
	if err := os.WriteFile(procFile, data, 0o600); err != nil {
		return nil, err
	}
	if opts.Detach && opts.Tty {
		// The terminal must outlive this process: a monitor holds it.
		if p.Pid, err = execUnderMonitor(ctx, rt, c, tmp, procFile, logFile); err != nil {
			return nil, err
		}
		return p, nil
	}
	args := []string{"--log", logFile, "--log-format", "json", "exec", "--process", procFile, "--detach", "--pid-file", pidFile}
	cmd := rt.Command(ctx)
	var consoleCh chan consoleResult
	var ends []*os.File
	var sinks []func()
	if opts.Tty {
		sock := filepath.Join(tmp, "console.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
		if err != nil {
			return nil, err
		}
		defer l.Close()
		consoleCh = make(chan consoleResult, 1)
		go func() { f, err := receiveConsole(l); consoleCh <- consoleResult{f, err} }()
		args = append(args, "--tty", "--console-socket", sock)
	} else if !opts.Detach {
		if opts.Interactive {
			cmd.Stdin = stdio.Stdin
		}
		// Output goes through pipes read only once the process runs, so
		// that the runtime's own error text (it writes it to its stderr
		// too) is dropped; the error returned says it once.
		for _, dst := range []io.Writer{stdio.Stdout, stdio.Stderr} {
			r, w, err := os.Pipe()
			if err != nil {
				closeAll(ends)
				return nil, err
			}
			ends = append(ends, w)
			if dst == nil {
				dst = io.Discard
			}
			sinks = append(sinks, func() { io.Copy(dst, r); r.Close() })
			defer func() {
				if p.Pid == 0 {
					r.Close()
				}
			}()
		}
		cmd.Stdout, cmd.Stderr = ends[0], ends[1]
	}
	cmd.Args = append(cmd.Args, append(args, c.ID)...)
	runErr := cmd.Run()
	closeAll(ends)
	if runErr != nil {
		return nil, execError(c.ID, logFile, runErr)
	}
	pidData, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: runtime wrote no pid file: %w", c.ShortID(), err)
	}
	if p.Pid, err = strconv.Atoi(strings.TrimSpace(string(pidData))); err != nil {
		return nil, fmt.Errorf("exec in %s: bad pid file: %w", c.ShortID(), err)
	}
	if !opts.Detach {
		orphans.claim(p.Pid)
		p.claimed = true
		orphans.gate.RUnlock()
	}
	if opts.Tty {
		var res consoleResult
		select {
		case res = <-consoleCh:
		case <-time.After(10 * time.Second):
			res.err = fmt.Errorf("the OCI runtime sent no terminal")
		}
		if res.err != nil {
			unix.Kill(p.Pid, unix.SIGKILL)
			orphans.release(p.Pid) // nobody waits for it: the reaper will
			return nil, fmt.Errorf("exec in %s: %w", c.ShortID(), res.err)
		}
		p.Console = res.f
		out := stdio.Stdout
		if out == nil {
			out = io.Discard
		}
		sinks = append(sinks, func() { io.Copy(out, res.f) })
		if opts.Interactive && stdio.Stdin != nil {
			go io.Copy(res.f, stdio.Stdin)
		}
	}
	Drain(sinks, p.copyDone)
	return p, nil
}

// cannotExec is an error that keeps err's text and categories and also
// matches runtime.ErrCommandNotExecutable: Docker's exec exits 126 when
// the process cannot be started once the exec was accepted (an unknown
// user, for one).
type cannotExec struct{ err error }

func (e cannotExec) Error() string   { return e.err.Error() }
func (e cannotExec) Unwrap() []error { return []error{e.err, runtime.ErrCommandNotExecutable} }

type consoleResult struct {
	f   *os.File
	err error
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// receiveConsole accepts one connection on l and reads the pty master the
// OCI runtime sends over it (SCM_RIGHTS), as its --console-socket
// protocol specifies.
func receiveConsole(l *net.UnixListener) (*os.File, error) {
	l.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: no file descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive terminal: no file descriptor in message")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// execError turns a failed `runtime exec` into Docker's "OCI runtime exec
// failed" error, classified as ErrCommandNotFound/ErrCommandNotExecutable
// when the command cannot be found or run.
func execError(id, logFile string, runErr error) error {
	msg := ociruntime.LogError(logFile)
	if msg == "" {
		msg = runErr.Error()
	}
	msg = ociruntime.DockerWording(strings.Join(strings.Fields(msg), " "))
	cls := ociruntime.ClassifyStartError(id, msg)
	switch {
	case errors.Is(cls, runtime.ErrCommandNotFound):
		return fmt.Errorf("OCI runtime exec failed: %s: %w", msg, runtime.ErrCommandNotFound)
	case errors.Is(cls, runtime.ErrCommandNotExecutable):
		return fmt.Errorf("OCI runtime exec failed: %s: %w", msg, runtime.ErrCommandNotExecutable)
	}
	// Any other failure to start the process (a missing -w directory, for
	// one) is Docker's exec exit code 126 too.
	return cannotExec{fmt.Errorf("OCI runtime exec failed: %s", msg)}
}

// execProcessSpec derives the exec'd process from the container's own
// (its config.json): same capabilities, rlimits and security settings;
// environment, user and working directory as Docker's exec sets them.
func execProcessSpec(configPath, rootfs string, opts ExecOptions) (*specs.Process, error) {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return nil, fmt.Errorf("read container config: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("container config has no process: %w", errdefs.ErrDataLoss)
	}
	p := *spec.Process
	p.Args = slices.Clone(opts.Cmd)
	p.Terminal = opts.Tty
	p.ConsoleSize = nil
	env := slices.Clone(p.Env)
	if opts.Tty {
		env = execSetEnv(env, "TERM=xterm", false)
	}
	for _, kv := range opts.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" {
			return nil, fmt.Errorf("invalid environment variable: %s: %w", kv, errdefs.ErrInvalidArgument)
		}
		env = execSetEnv(env, kv, true)
	}
	p.Env = env
	if opts.User != "" {
		u, err := runtime.ResolveUser(rootfs, opts.User)
		if err != nil {
			return nil, cannotExec{err}
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	if opts.WorkingDir != "" {
		if !path.IsAbs(opts.WorkingDir) {
			return nil, fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path: %w", opts.WorkingDir, errdefs.ErrInvalidArgument)
		}
		p.Cwd = path.Clean(opts.WorkingDir)
	}
	return &p, nil
}

// execSetEnv sets "KEY=VALUE" kv in env, replacing an existing KEY when
// replace is true and appending when KEY is absent.
func execSetEnv(env []string, kv string, replace bool) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			if replace {
				env[i] = kv
			}
			return env
		}
	}
	return append(env, kv)
}

// Wait waits for a foreground process to exit and for its output to be
// copied, and returns its exit code (128+N when killed by signal N).
func (p *ExecProcess) Wait(ctx context.Context) (int, error) {
	if p.detached {
		return 0, fmt.Errorf("a detached exec cannot be waited for: %w", errdefs.ErrFailedPrecondition)
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		orphans.release(p.Pid)
		if err != nil {
			return -1, fmt.Errorf("wait for exec'd process %d: %w", p.Pid, err)
		}
		break
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if p.Console != nil {
		// Output still in the terminal is read until the slave side is
		// gone (EIO); do not wait for ever for a grandchild holding it.
		select {
		case <-p.copyDone:
		case <-time.After(2 * time.Second):
		}
		p.Console.Close()
	} else {
		<-p.copyDone
	}
	return code, nil
}

// Signal sends sig to the exec'd process.
func (p *ExecProcess) Signal(sig syscall.Signal) error { return unix.Kill(p.Pid, sig) }

// Resize sets the terminal size of a Tty process (rows, columns); a no-op
// otherwise.
func (p *ExecProcess) Resize(rows, cols uint16) error {
	if p.Console == nil {
		return nil
	}
	return unix.IoctlSetWinsize(int(p.Console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// Drain runs every copy in a goroutine of its own and closes done once
// all have returned.
func Drain(copies []func(), done chan struct{}) {
	var wg sync.WaitGroup
	for _, c := range copies {
		wg.Go(c)
	}
	go func() {
		wg.Wait()
		close(done)
	}()
}

// execUnderMonitor starts the process described by procFile in container
// c with a terminal, under the default monitor (monitor.StartExec), as
// Docker's daemon does for `exec -d -t`. It returns the process's pid
// once the OCI runtime has started it; a failure to start is classified
// as execError does. dir is a scratch directory for the terminal socket;
// logFile receives the runtime's JSON log.
func execUnderMonitor(ctx context.Context, rt *ociruntime.Runtime, c record.Container, dir, procFile, logFile string) (int, error) {
	mon, err := monitor.New("")
	if err != nil {
		return 0, err
	}
	program, rtArgs := rt.MonitorArgs("--log", logFile, "--log-format", "json")
	pid, err := mon.StartExec(ctx, monitor.ExecConfig{
		ID: c.ID, Session: fmt.Sprintf("%s-exec-%d", c.ID[:12], time.Now().UnixNano()),
		Runtime: program, RuntimeArgs: rtArgs, ProcessSpec: procFile, Dir: dir,
	})
	var ce *monitor.CreateError
	if errors.As(err, &ce) {
		return 0, execError(c.ID, logFile, errors.New(ce.Message))
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", c.ShortID(), err)
	}
	return pid, nil
}
