package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// Execer runs exec'd processes for the API server: in-process over the
// engine (NewLocal), or through the privileged helper (privsep.Client).
type Execer interface {
	// RunExec starts opts.Cmd in the running container id (a full ID) as
	// engine.Exec does (opts.Detach must be false), calls started once the
	// process runs with its pid and a function that sets its terminal size
	// (rows, columns; a no-op without Tty), copies its output to
	// stdio.Stdout and stdio.Stderr (nil: discarded) and, with
	// opts.Interactive, stdio.Stdin to it, and returns its exit code
	// (128+N when killed by signal N) once it has exited and its output
	// has been copied. execID (64 hex digits) names the process while it
	// runs. stdio.Stdin stays the caller's to close. Errors are
	// engine.Exec's: errdefs.ErrConflict when the container is not
	// running or paused, runtime.ErrCommandNotFound and
	// runtime.ErrCommandNotExecutable when the command cannot start.
	RunExec(ctx context.Context, id, execID string, opts engine.ExecOptions, stdio engine.ExecIO, started func(pid int, resize func(height, width int) error)) (int, error)
}

// EngineExec is what NewLocal needs of the engine; *engine.Engine
// satisfies it.
type EngineExec interface {
	Exec(ctx context.Context, ref string, opts engine.ExecOptions, stdio engine.ExecIO) (*engine.ExecProcess, error)
}

// NewLocal returns the in-process Execer: engine.Exec in this process,
// which becomes the child subreaper of the processes it starts.
func NewLocal(e EngineExec) Execer { return local{e} }

type local struct{ e EngineExec }

func (l local) RunExec(ctx context.Context, id, execID string, opts engine.ExecOptions, stdio engine.ExecIO, started func(int, func(int, int) error)) (int, error) {
	opts.Detach = false
	p, err := l.e.Exec(ctx, id, opts, stdio)
	if err != nil {
		return -1, err
	}
	started(p.Pid, func(h, w int) error { return p.Resize(uint16(h), uint16(w)) })
	return p.Wait(context.WithoutCancel(ctx))
}

// StartExitCode is the exit code Docker records for an exec whose
// process could not start: 127 when the command was not found, 126
// otherwise.
func StartExitCode(err error) int {
	if errors.Is(err, runtime.ErrCommandNotFound) {
		return 127
	}
	return 126
}

// Config is an exec instance's settings: Docker's ExecCreateRequest with
// the container resolved to its full ID. Privileged and DetachKeys are
// recorded only (the process gets the container's privileges).
type Config struct {
	ContainerID                             string
	Cmd, Env                                []string
	User, WorkingDir                        string
	Tty, Privileged                         bool
	AttachStdin, AttachStdout, AttachStderr bool
	// ConsoleSize is the initial terminal size [height, width] (nil: none).
	ConsoleSize *[2]uint
}

// Exec is one exec instance, as dockerd keeps them: created, then started
// once, then ended with an exit code. Safe for concurrent use.
type Exec struct {
	// ID is 64 random hex digits.
	ID     string
	Config Config

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
	ended    time.Time
	resize   func(h, w int) error
	size     *[2]uint // asked for before the process ran
}

// Inspect is GET /exec/{id}/json's answer.
func (x *Exec) Inspect() containertypes.ExecInspectResponse {
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.Config
	pc := &containertypes.ExecProcessConfig{Tty: c.Tty, User: c.User, Privileged: &c.Privileged, Arguments: []string{}}
	if len(c.Cmd) > 0 {
		pc.Entrypoint, pc.Arguments = c.Cmd[0], append(pc.Arguments, c.Cmd[1:]...)
	}
	return containertypes.ExecInspectResponse{
		ID: x.ID, Running: x.running, ExitCode: x.exitCode, ProcessConfig: pc,
		OpenStdin: c.AttachStdin, OpenStdout: c.AttachStdout, OpenStderr: c.AttachStderr,
		CanRemove: x.exitCode != nil, ContainerID: c.ContainerID, Pid: x.pid,
	}
}

// Begin marks the instance started, which it can be once:
// errdefs.ErrConflict when it is running or has run (dockerd's messages).
func (x *Exec) Begin() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.exitCode != nil:
		return fmt.Errorf("Error: Exec command %s has already run: %w", x.ID, errdefs.ErrConflict)
	case x.started:
		return fmt.Errorf("Error: Exec command %s is already running: %w", x.ID, errdefs.ErrConflict)
	}
	x.started = true
	return nil
}

// Resize sets the terminal size of the running process, or remembers it
// for when the process starts (the docker CLI resizes right after the
// start request, which may be before the process runs).
func (x *Exec) Resize(height, width int) error {
	x.mu.Lock()
	resize := x.resize
	if resize == nil {
		x.size = &[2]uint{uint(height), uint(width)}
	}
	x.mu.Unlock()
	if resize == nil || !x.Config.Tty {
		return nil
	}
	return resize(height, width)
}

func (x *Exec) run(pid int, resize func(h, w int) error) {
	x.mu.Lock()
	x.running, x.pid, x.resize = true, pid, resize
	size := x.size
	if size == nil {
		size = x.Config.ConsoleSize
	}
	x.mu.Unlock()
	if size != nil && x.Config.Tty && size[0] > 0 && size[1] > 0 {
		resize(int(size[0]), int(size[1]))
	}
}

func (x *Exec) finish(code int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.running, x.resize, x.ended = false, nil, time.Now()
	x.exitCode = &code
}

func (x *Exec) options() engine.ExecOptions {
	c := x.Config
	return engine.ExecOptions{Cmd: c.Cmd, Env: c.Env, User: c.User, WorkingDir: c.WorkingDir, Tty: c.Tty, Interactive: c.AttachStdin}
}

// RunAttached runs the instance (after Begin) with its streams on the
// hijacked connection conn: its output as multiplexed frames (raw with
// a TTY), the client's bytes from in to its stdin when AttachStdin, the
// client's EOF as the end of its stdin. It returns once the process has
// exited and its output is written, with the exit code recorded; a start
// failure is returned (with exit code 126 or 127 recorded), for the
// caller to write on the stream as dockerd does. The caller closes conn.
func (x *Exec) RunAttached(ctx context.Context, ex Execer, conn net.Conn, in io.Reader) error {
	c := x.Config
	mux := NewMux(conn, !c.Tty, nil)
	var stdio engine.ExecIO
	if c.AttachStdout {
		stdio.Stdout = mux.Stream(Stdout)
	}
	if c.AttachStderr {
		stdio.Stderr = mux.Stream(Stderr)
	}
	if c.AttachStdin {
		r, w, err := os.Pipe()
		if err != nil {
			x.finish(126)
			return err
		}
		defer r.Close()
		stdio.Stdin = r
		go func() {
			io.Copy(w, in)
			w.Close()
		}()
	} else {
		// The CLI half-closes when it sends no stdin: EOF is no hang-up.
		go io.Copy(io.Discard, in)
	}
	code, err := ex.RunExec(ctx, c.ContainerID, x.ID, x.options(), stdio, x.run)
	if err != nil {
		code = StartExitCode(err)
	}
	x.finish(code)
	return err
}

// RunDetached starts the instance (after Begin) with no streams and
// returns once the process runs, or its start error (exit code recorded
// as by RunAttached). The exit code is recorded when the process ends.
func (x *Exec) RunDetached(ctx context.Context, ex Execer) error {
	runs := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		code, err := ex.RunExec(context.WithoutCancel(ctx), x.Config.ContainerID, x.ID, x.options(), engine.ExecIO{}, func(pid int, resize func(int, int) error) {
			x.run(pid, resize)
			close(runs)
		})
		if err != nil {
			code = StartExitCode(err)
		}
		x.finish(code)
		errc <- err
	}()
	select {
	case <-runs:
		return nil
	case err := <-errc:
		return err
	}
}

// Table is the server's exec instances, in memory as dockerd keeps them.
// Instances that ended more than Keep ago are dropped as new ones are
// added. Safe for concurrent use.
type Table struct {
	mu sync.Mutex
	m  map[string]*Exec
}

// Keep is how long an ended exec instance stays inspectable.
const Keep = 10 * time.Minute

// Add records a new instance with a fresh ID.
func (t *Table) Add(c Config) (*Exec, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	x := &Exec{ID: hex.EncodeToString(b[:]), Config: c}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*Exec{}
	}
	for id, old := range t.m {
		old.mu.Lock()
		gone := old.exitCode != nil && time.Since(old.ended) > Keep
		old.mu.Unlock()
		if gone {
			delete(t.m, id)
		}
	}
	t.m[x.ID] = x
	return x, nil
}

// Get returns the instance id (its full ID): errdefs.ErrNotFound "No
// such exec instance: ID" when there is none.
func (t *Table) Get(id string) (*Exec, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if x, ok := t.m[id]; ok {
		return x, nil
	}
	return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
}
