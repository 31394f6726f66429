package privsep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
)

// The exec ops (`docker exec` through the service, Berth issue 6). The
// helper runs the process (engine.Exec, so it is the process's child
// subreaper) and relays its output as stream frames; the unprivileged
// server relays them to the hijacked HTTP connection. SPEC.md describes
// them and their rules, which package privsep/helper enforces.
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

// ResizeArgs is exec.resize's argument: the exec's ID and the terminal's
// height and width in characters (0..65535).
type ResizeArgs struct {
	ID     string `json:"id"`
	Height int    `json:"height"`
	Width  int    `json:"width"`
}

// KindStarted is exec.start's stream frame sent once the process runs;
// its Result is ExecStarted.
const KindStarted = "started"

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
