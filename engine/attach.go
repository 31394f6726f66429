package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/berthproject/berth/engine/internal/attach"
	"github.com/containerd/errdefs"
)

// Attach sessions; the work (the monitor's attach socket and control
// FIFO, detach keys, the log replay after a reset) is package attach's.

// ErrDetached is what Attach returns when the user typed the detach key
// sequence: the attachment ended and the container keeps running. Its
// text is the one the docker CLI prints on `docker attach` ("read escape
// sequence").
var ErrDetached = attach.ErrDetached

// AttachOptions select the streams of Attach and what it does first.
type AttachOptions struct {
	// Stdin is copied to the container's stdin when not nil and the
	// container was created with OpenStdin (-i).
	Stdin io.Reader
	// Stdout and Stderr receive the container's output (a TTY container
	// has only stdout); nil discards.
	Stdout, Stderr io.Writer
	// DetachKeys, when not empty, is the key sequence (bytes, as
	// ParseDetachKeys gives) that, read from Stdin, ends the attachment
	// with ErrDetached; the keys are not passed on. A partial match is
	// passed on once it stops matching (Docker's escape proxy).
	DetachKeys []byte
	// Start starts the created (or exited) container under its monitor
	// before attaching, connected from before its process runs so that
	// no output is missed: `docker run` and `docker start -a`.
	Start bool
}

// Attach connects to a detached container's monitor and copies the
// container's output to opts.Stdout and opts.Stderr and opts.Stdin to the
// container, as `docker attach` (with opts.Start, `docker start -a`). It
// returns when the container's output ends (it exited), with its exit
// status (128+N for a death by signal N); when the user detaches
// (ErrDetached, status 0); or when ctx ends (ctx's error). Output an
// attach connection reset at the container's exit lost is replayed from
// the container's log (best effort: a container already removed, --rm,
// or a rotated log gives nothing).
//
// Errors: errdefs.ErrNotFound for an unknown container;
// errdefs.ErrConflict when it is not running (without Start), is paused,
// or already runs (with Start); errdefs.ErrNotImplemented for a container
// run in the foreground of another berth process (its output belongs to
// that process); errors of StartDetached with Start.
func (e *Engine) Attach(ctx context.Context, ref string, opts AttachOptions) (int, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return 0, err
	}
	path := filepath.Join(e.bundleDir(c.ID), "attach")
	// The exit status and the log stay until they are read, even when
	// an --rm cleanup runs the moment the container exits.
	release, err := e.life.HoldExit(ctx, c.ID)
	if err != nil {
		return 0, err
	}
	defer release()
	var conn *net.UnixConn
	if opts.Start {
		e.emitContainer(c, "attach", nil) // Docker's order: attach, start
		if conn, err = attach.StartAndDial(ctx, c.ID, path, func(ctx context.Context) error { return e.StartDetached(ctx, c.ID) }); err != nil {
			return 0, err
		}
	} else {
		switch {
		case c.State.Status != StatusRunning:
			return 0, fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
		case c.State.Paused:
			return 0, fmt.Errorf("You cannot attach to a paused container, unpause it first: %w", errdefs.ErrConflict)
		}
		if conn, err = attach.Dial(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("container %s runs in the foreground of another berth process: attaching needs a detached container: %w", c.ShortID(), errdefs.ErrNotImplemented)
			}
			return 0, err
		}
		e.emitContainer(c, "attach", nil)
	}
	defer conn.Close()
	streams := attach.Streams{Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, DetachKeys: opts.DetachKeys}
	got, err := attach.Copy(ctx, conn, c.Run.OpenStdin, streams)
	if err != nil {
		return 0, err
	}
	if got.Reset {
		var out, errOut bytes.Buffer
		if c, err := e.Container(ctx, c.ID); err == nil && !c.State.StartedAt.IsZero() &&
			e.Logs(ctx, c.ID, LogOptions{Tail: -1, Since: c.State.StartedAt}, &out, &errOut) == nil {
			got.WriteMissed(out.Bytes(), errOut.Bytes(), streams)
		}
	}
	return attach.ExitCode(ctx, filepath.Join(e.opts.RunRoot, "exits"), c.ID, e.Container)
}

// ResizeTTY sets the terminal size (rows, columns) of a running container
// created with a TTY, through its monitor's control FIFO, as `POST
// /containers/{id}/resize`. A container without a TTY is left alone.
// errdefs.ErrNotFound for an unknown container, errdefs.ErrConflict when
// it is not running.
func (e *Engine) ResizeTTY(ctx context.Context, ref string, height, width uint16) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusRunning {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	if !c.Run.Tty {
		return nil
	}
	return attach.Resize(filepath.Join(e.bundleDir(c.ID), "ctl"), c.ShortID(), height, width)
}

// ParseDetachKeys turns Docker's detach key syntax into the bytes Attach
// matches: comma-separated keys, each one character or "ctrl-X" (X one
// of a-z, @, [, \, ], ^, _). "" gives Docker's default, ctrl-p,ctrl-q.
// errdefs.ErrInvalidArgument for anything else, with the daemon's message.
func ParseDetachKeys(keys string) ([]byte, error) { return attach.ParseDetachKeys(keys) }
