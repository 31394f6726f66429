package privsep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// The exec ops (`docker exec` through the service, Berth issue 6). The
// helper runs the process (engine.Exec, so it is the process's child
// subreaper) and relays its output as stream frames; the unprivileged
// server relays them to the hijacked HTTP connection. SPEC.md describes
// them.
const (
	// OpExecStart runs a process in a running container and waits for
	// it: ExecStartArgs; stream frames `started`, `stdout`, `stderr`;
	// result ExecStartResult. With Stdin the request frame carries one
	// descriptor, the read end of a pipe, which becomes (or, with a TTY,
	// is copied to) the process's stdin.
	OpExecStart Op = "exec.start"
	// OpExecResize sets the terminal size of a process exec.start runs:
	// ResizeArgs with the exec's ID.
	OpExecResize Op = "exec.resize"
)

// KindStarted is exec.start's stream frame sent once the process runs;
// its Result is ExecStarted.
const KindStarted = "started"

// Bounds of exec.start's argument.
const (
	maxExecArgs     = 4096      // argv entries
	maxExecEnv      = 4096      // environment entries
	maxExecArgBytes = 128 << 10 // one argv or environment entry
	maxExecPath     = 4096      // the working directory
)

// ExecStartArgs is exec.start's argument. ID is the exec instance's ID
// (64 hex digits, chosen by the client, unique among running execs: it
// names the process for exec.resize); Container is the container's full
// ID; the rest is engine.ExecOptions (never detached: the helper waits).
type ExecStartArgs struct {
	ID         string   `json:"id"`
	Container  string   `json:"container"`
	Cmd        []string `json:"cmd"`
	Env        []string `json:"env"`
	User       string   `json:"user"`
	WorkingDir string   `json:"workingDir"`
	Tty        bool     `json:"tty"`
	Stdin      bool     `json:"stdin"`
}

// ExecStarted is the `started` frame's content: the process's pid in the
// helper's pid namespace.
type ExecStarted struct {
	Pid int `json:"pid"`
}

// ExecStartResult is exec.start's result: the process's exit code (128+N
// when killed by signal N); or, when its command could not be started,
// StartError (the OCI runtime's message) with ExitCode 127 (not found)
// or 126 (not executable), as Docker records them.
type ExecStartResult struct {
	ExitCode   int    `json:"exitCode"`
	StartError string `json:"startError,omitempty"`
}

var (
	newExecStartArgs = func() any { return &ExecStartArgs{} }
	newResizeArgs    = func() any { return &ResizeArgs{} }
	execUser         = regexp.MustCompile(`^[A-Za-z0-9_.@$+-]{1,256}(:[A-Za-z0-9_.@$+-]{1,256})?$`)
)

// isExec reports whether op is one of this file's ops.
func isExec(op Op) bool { return op == OpExecStart || op == OpExecResize }

// validateExec checks the exec ops' arguments; ok is false for any other
// op. exec.start: both IDs 64 hex digits; 1…4096 argv entries, the first
// non-empty; ≤ 4096 environment entries with a non-empty key; no entry
// over 128 KiB or with NUL; the user Docker's name|uid[:group|gid]
// characters; the working directory empty or absolute and clean.
func validateExec(op Op, args any) (err error, ok bool) {
	switch a := args.(type) {
	case *ExecStartArgs:
		if op != OpExecStart {
			return nil, false
		}
		return validateExecStart(a), true
	case *ResizeArgs:
		if op != OpExecResize {
			return nil, false
		}
		if a.Height < 0 || a.Height > 65535 || a.Width < 0 || a.Width > 65535 {
			return bad("exec.resize: %dx%d out of range", a.Height, a.Width), true
		}
		return checkID("exec.resize", a.ID), true
	}
	return nil, false
}

func validateExecStart(a *ExecStartArgs) error {
	if err := checkID("exec.start: exec", a.ID); err != nil {
		return err
	}
	if err := checkID("exec.start: container", a.Container); err != nil {
		return err
	}
	if len(a.Cmd) == 0 || a.Cmd[0] == "" {
		return bad("exec.start: no command specified")
	}
	if len(a.Cmd) > maxExecArgs || len(a.Env) > maxExecEnv {
		return bad("exec.start: %d arguments, %d environment entries (at most %d, %d)", len(a.Cmd), len(a.Env), maxExecArgs, maxExecEnv)
	}
	for _, s := range a.Cmd {
		if len(s) > maxExecArgBytes || strings.ContainsRune(s, 0) {
			return bad("exec.start: malformed argument %.40q", s)
		}
	}
	for _, kv := range a.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" || len(kv) > maxExecArgBytes || strings.ContainsRune(kv, 0) {
			return bad("exec.start: invalid environment variable %.40q", kv)
		}
	}
	if a.User != "" && !execUser.MatchString(a.User) {
		return bad("exec.start: invalid user %.40q", a.User)
	}
	if w := a.WorkingDir; w != "" && (!path.IsAbs(w) || path.Clean(w) != w || len(w) > maxExecPath || strings.ContainsRune(w, 0)) {
		return bad("exec.start: the working directory %.80q must be absolute and clean", w)
	}
	return nil
}

// execInput checks the descriptor an exec op's request carried (fd, -1
// for none): exec.start with Stdin takes exactly one, which must be a
// pipe opened for reading only; any other request takes none. It returns
// the descriptor as a file (nil for none); a refusal is
// errdefs.ErrInvalidArgument, and fd is closed then.
func execInput(req Request, fd int) (*os.File, error) {
	a, _ := req.Args.(*ExecStartArgs)
	if a == nil || !a.Stdin {
		if fd >= 0 {
			unix.Close(fd)
			return nil, bad("%s: request carried a descriptor it does not take", req.Op)
		}
		return nil, nil
	}
	if fd < 0 {
		return nil, bad("exec.start: stdin needs the read end of a pipe with the request")
	}
	var st unix.Stat_t
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || fl&unix.O_ACCMODE != unix.O_RDONLY {
		unix.Close(fd)
		return nil, bad("exec.start: the stdin descriptor is not the read end of a pipe")
	}
	return os.NewFile(uintptr(fd), "exec-stdin"), nil
}

// execTable is the helper's running exec'd processes by exec ID, for
// exec.resize. The zero value is ready.
type execTable struct {
	mu sync.Mutex
	m  map[string]*engine.ExecProcess // nil value: reserved, not yet running
}

// reserve claims id; false when a process with that ID runs already.
func (t *execTable) reserve(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[id]; ok {
		return false
	}
	if t.m == nil {
		t.m = map[string]*engine.ExecProcess{}
	}
	t.m[id] = nil
	return true
}

func (t *execTable) set(id string, p *engine.ExecProcess) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[id] = p
}

func (t *execTable) release(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// resize sets the terminal size of the running process id:
// errdefs.ErrNotFound when none runs.
func (t *execTable) resize(id string, height, width int) error {
	t.mu.Lock()
	p := t.m[id]
	t.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no exec'd process %s is running: %w", id, errdefs.ErrNotFound)
	}
	return p.Resize(uint16(height), uint16(width))
}

// runExec runs the exec ops; ok is false for any other op.
func (h *Helper) runExec(ctx context.Context, req Request, s *sender) (res any, err error, ok bool) {
	switch req.Op {
	case OpExecStart:
		res, err = h.execStart(ctx, req.Args.(*ExecStartArgs), s)
		return res, err, true
	case OpExecResize:
		a := req.Args.(*ResizeArgs)
		return nil, h.execs.resize(a.ID, a.Height, a.Width), true
	}
	return nil, nil, false
}

// execStart runs the process, sends `started`, relays its output as
// stdout/stderr frames and waits for it. It runs to its end even if the
// client goes away (then the output is dropped).
func (h *Helper) execStart(ctx context.Context, a *ExecStartArgs, s *sender) (ExecStartResult, error) {
	if a.Stdin != (s.in != nil) {
		return ExecStartResult{}, bad("exec.start: stdin without its descriptor")
	}
	if !h.execs.reserve(a.ID) {
		return ExecStartResult{}, fmt.Errorf("exec %s is already running: %w", a.ID, errdefs.ErrConflict)
	}
	defer h.execs.release(a.ID)
	keep := context.WithoutCancel(ctx)
	stdio := engine.ExecIO{Stdout: s.stream(KindStdout), Stderr: s.stream(KindStderr)}
	if a.Stdin {
		stdio.Stdin = s.in
	}
	p, err := h.Engine.Exec(keep, a.Container, engine.ExecOptions{
		Cmd: a.Cmd, Env: a.Env, User: a.User, WorkingDir: a.WorkingDir, Tty: a.Tty, Interactive: a.Stdin,
	}, stdio)
	if err != nil {
		for code, cat := range map[int]error{127: runtime.ErrCommandNotFound, 126: runtime.ErrCommandNotExecutable} {
			if errors.Is(err, cat) {
				return ExecStartResult{ExitCode: code, StartError: strings.TrimSuffix(err.Error(), ": "+cat.Error())}, nil
			}
		}
		return ExecStartResult{}, err
	}
	h.execs.set(a.ID, p)
	started, _ := json.Marshal(ExecStarted{Pid: p.Pid})
	s.send(Reply{Kind: KindStarted, Result: started}, -1)
	code, err := p.Wait(keep)
	return ExecStartResult{ExitCode: code}, err
}

// RunExec runs a process in the running container id through the helper
// (exec.start), as the API server's stream.Execer: opts.Cmd with its
// settings (never detached), stdio.Stdin (with opts.Interactive) passed
// as a descriptor, the output relayed to stdio.Stdout and stdio.Stderr
// (nil: dropped; a failing writer drops the rest, the process runs on).
// started gets the pid and a resize function (exec.resize) once the
// process runs. It returns the exit code when the process has ended.
// Errors: engine.Exec's categories (conflict when the container is not
// running, invalid argument for a bad user or working directory);
// runtime.ErrCommandNotFound / ErrCommandNotExecutable when the command
// cannot start; errdefs.ErrUnavailable when the helper is unreachable.
func (c *Client) RunExec(ctx context.Context, id, execID string, opts engine.ExecOptions, stdio engine.ExecIO, started func(pid int, resize func(height, width int) error)) (int, error) {
	args := ExecStartArgs{
		ID: execID, Container: id, Cmd: opts.Cmd, Env: opts.Env, User: opts.User, WorkingDir: opts.WorkingDir,
		Tty: opts.Tty, Stdin: opts.Interactive && stdio.Stdin != nil,
	}
	if args.Stdin {
		ctx = withInput(ctx, stdio.Stdin)
	}
	out, errOut := &dropOnError{w: stdio.Stdout}, &dropOnError{w: stdio.Stderr}
	var res ExecStartResult
	err := c.doStream(ctx, OpExecStart, args, &res, func(r Reply) error {
		switch r.Kind {
		case KindStdout:
			out.Write(r.Data)
		case KindStderr:
			errOut.Write(r.Data)
		case KindStarted:
			var st ExecStarted
			if err := json.Unmarshal(r.Result, &st); err != nil {
				return fmt.Errorf("malformed started frame: %v: %w", err, errdefs.ErrUnknown)
			}
			started(st.Pid, func(height, width int) error {
				return c.do(context.Background(), OpExecResize, ResizeArgs{ID: execID, Height: height, Width: width}, nil)
			})
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	switch {
	case res.StartError != "" && res.ExitCode == 127:
		return res.ExitCode, fmt.Errorf("%s: %w", res.StartError, runtime.ErrCommandNotFound)
	case res.StartError != "":
		return res.ExitCode, fmt.Errorf("%s: %w", res.StartError, runtime.ErrCommandNotExecutable)
	}
	return res.ExitCode, nil
}

// dropOnError writes to w (nil: nowhere) until a write fails, then drops
// everything.
type dropOnError struct {
	w      io.Writer
	failed bool
}

func (d *dropOnError) Write(p []byte) (int, error) {
	if d.w != nil && !d.failed {
		if _, err := d.w.Write(p); err != nil {
			d.failed = true
		}
	}
	return len(p), nil
}
