package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/privsep"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
)

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
	case privsep.OpExecStart:
		res, err = h.execStart(ctx, req.Args.(*privsep.ExecStartArgs), s)
		return res, err, true
	case privsep.OpExecResize:
		a := req.Args.(*privsep.ResizeArgs)
		return nil, h.execs.resize(a.ID, a.Height, a.Width), true
	}
	return nil, nil, false
}

// execStart runs the process, sends `started`, relays its output as
// stdout/stderr frames and waits for it. It runs to its end even if the
// client goes away (then the output is dropped).
func (h *Helper) execStart(ctx context.Context, a *privsep.ExecStartArgs, s *sender) (privsep.ExecStartResult, error) {
	if a.Stdin != (s.in != nil) {
		return privsep.ExecStartResult{}, bad("exec.start: stdin without its descriptor")
	}
	if !h.execs.reserve(a.ID) {
		return privsep.ExecStartResult{}, fmt.Errorf("exec %s is already running: %w", a.ID, errdefs.ErrConflict)
	}
	defer h.execs.release(a.ID)
	keep := context.WithoutCancel(ctx)
	stdio := engine.ExecIO{Stdout: s.stream(privsep.KindStdout), Stderr: s.stream(privsep.KindStderr)}
	if a.Stdin {
		stdio.Stdin = s.in
	}
	p, err := h.Engine.Exec(keep, a.Container, engine.ExecOptions{
		Cmd: a.Cmd, Env: a.Env, User: a.User, WorkingDir: a.WorkingDir, Tty: a.Tty, Interactive: a.Stdin,
	}, stdio)
	if err != nil {
		for code, cat := range map[int]error{127: runtime.ErrCommandNotFound, 126: runtime.ErrCommandNotExecutable} {
			if errors.Is(err, cat) {
				return privsep.ExecStartResult{ExitCode: code, StartError: strings.TrimSuffix(err.Error(), ": "+cat.Error())}, nil
			}
		}
		return privsep.ExecStartResult{}, err
	}
	h.execs.set(a.ID, p)
	started, _ := json.Marshal(privsep.ExecStarted{Pid: p.Pid})
	s.send(privsep.Reply{Kind: privsep.KindStarted, Result: started}, -1)
	code, err := p.Wait(keep)
	return privsep.ExecStartResult{ExitCode: code}, err
}
