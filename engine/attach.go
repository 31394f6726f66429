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
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/monitor"
	"github.com/containerd/errdefs"
	"github.com/moby/term"
	"golang.org/x/sys/unix"
)

// Attach pipe numbers of the monitor's attach socket: each message it
// sends starts with one byte naming the stream (conmon's protocol).
const (
	attachStdout = 2
	attachStderr = 3
)

// ErrDetached is what Attach returns when the user typed the detach key
// sequence: the attachment ended and the container keeps running. Its
// text is the one the docker CLI prints on `docker attach` ("read escape
// sequence").
var ErrDetached = errors.New("read escape sequence")

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
// (ErrDetached, status 0); or when ctx ends (ctx's error).
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
	var conn *net.UnixConn
	if opts.Start {
		e.emitContainer(c, "attach", nil) // Docker's order: attach, start
		if conn, err = e.startAttached(ctx, c.ID, path); err != nil {
			return 0, err
		}
	} else {
		switch {
		case c.State.Status != StatusRunning:
			return 0, fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
		case c.State.Paused:
			return 0, fmt.Errorf("You cannot attach to a paused container, unpause it first: %w", errdefs.ErrConflict)
		}
		if conn, err = dialAttach(path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("container %s runs in the foreground of another berth process: attaching needs a detached container: %w", c.ShortID(), errdefs.ErrNotImplemented)
			}
			return 0, err
		}
		e.emitContainer(c, "attach", nil)
	}
	defer conn.Close()
	got, err := copyAttached(ctx, conn, c.Run.OpenStdin, opts)
	if err != nil {
		return 0, err
	}
	if got.reset {
		e.replayMissedOutput(ctx, c.ID, got, opts)
	}
	return e.attachedExitCode(ctx, c.ID)
}

// attachResult is what copyAttached read: the bytes of each stream and
// whether the monitor reset the connection.
type attachResult struct {
	stdout, stderr int64
	reset          bool
}

// replayMissedOutput writes what the container's log holds, since its
// last start, beyond the got bytes of each stream read from the attach
// socket: the monitor logs everything it sends, so output an attach
// connection reset at the container's exit lost is still shown. Best
// effort: a container already removed (--rm) or a rotated log gives
// nothing.
func (e *Engine) replayMissedOutput(ctx context.Context, id string, got attachResult, opts AttachOptions) {
	c, err := e.Container(ctx, id)
	if err != nil || c.State.StartedAt.IsZero() {
		return
	}
	var out, errOut bytes.Buffer
	if e.Logs(ctx, id, LogOptions{Tail: -1, Since: c.State.StartedAt}, &out, &errOut) != nil {
		return
	}
	for _, s := range []struct {
		logged *bytes.Buffer
		n      int64
		w      io.Writer
	}{{&out, got.stdout, opts.Stdout}, {&errOut, got.stderr, opts.Stderr}} {
		if s.w != nil && int64(s.logged.Len()) > s.n {
			s.w.Write(s.logged.Bytes()[s.n:])
		}
	}
}

// startAttached starts container id under its monitor and connects to
// the monitor's attach socket at path as soon as it exists: the monitor
// makes it while the OCI runtime creates the container, before the
// container's process is started.
func (e *Engine) startAttached(ctx context.Context, id, path string) (*net.UnixConn, error) {
	started := make(chan error, 1)
	go func() { started <- e.StartDetached(ctx, id) }()
	var startErr error
	done := false
	// After the start returned, the socket exists: a short grace period
	// covers a socket not yet accepted.
	var deadline time.Time
	for {
		conn, err := dialAttach(path)
		if err == nil {
			if !done {
				startErr = <-started
			}
			if startErr != nil {
				conn.Close()
				return nil, startErr
			}
			return conn, nil
		}
		if !done {
			select {
			case startErr = <-started:
				done = true
				if startErr != nil {
					return nil, startErr
				}
				deadline = time.Now().Add(2 * time.Second)
			case <-time.After(2 * time.Millisecond):
			}
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("attach to %s: %w", id[:12], err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copyAttached copies between the monitor's attach connection and the
// caller's streams until the output ends, the user detaches or ctx ends.
// A reset of the connection (the monitor closed it at the container's
// exit with input of ours unread) is reported once by the kernel, ahead
// of the output still queued: reading goes on to the end.
func copyAttached(ctx context.Context, conn *net.UnixConn, openStdin bool, opts AttachOptions) (attachResult, error) {
	var got attachResult
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	detached := make(chan struct{})
	if opts.Stdin != nil && openStdin {
		in := opts.Stdin
		if len(opts.DetachKeys) > 0 {
			in = term.NewEscapeProxy(in, opts.DetachKeys)
		}
		go func() {
			_, err := io.Copy(conn, in)
			var esc term.EscapeError
			if errors.As(err, &esc) {
				close(detached)
				conn.Close()
				return
			}
			conn.CloseWrite()
		}()
	}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	buf := make([]byte, 8193)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			w := stdout
			if buf[0] == attachStderr {
				w = stderr
			}
			if buf[0] == attachStdout || buf[0] == attachStderr {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return got, werr
				}
				if buf[0] == attachStderr {
					got.stderr += int64(n - 1)
				} else {
					got.stdout += int64(n - 1)
				}
			}
		}
		if err != nil {
			select {
			case <-detached:
				return got, ErrDetached
			default:
			}
			if ctx.Err() != nil {
				return got, ctx.Err()
			}
			if errors.Is(err, syscall.ECONNRESET) && !got.reset {
				got.reset = true
				continue
			}
			if errors.Is(err, io.EOF) || got.reset {
				return got, nil
			}
			return got, fmt.Errorf("attach: %w", err)
		}
	}
}

// attachedExitCode is the exit status of container id, whose output has
// just ended. The monitor writes it to its exit file right after closing
// the attach connections and only then runs the cleanup, which may
// remove the container (--rm) and the file with it: the file is read
// first, the record next.
func (e *Engine) attachedExitCode(ctx context.Context, id string) (int, error) {
	exitDir := filepath.Join(e.opts.RunRoot, "exits")
	delay := time.Millisecond
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if code, _, err := monitor.ExitStatus(exitDir, id); err == nil {
			return code, nil
		}
		c, err := e.Container(ctx, id)
		if errdefs.IsNotFound(err) {
			if code, _, err := monitor.ExitStatus(exitDir, id); err == nil {
				return code, nil
			}
			return 0, fmt.Errorf("container %s was removed before its exit status was read: %w", id[:12], errdefs.ErrNotFound)
		}
		if err != nil {
			return 0, err
		}
		if c.State.Status != StatusRunning && c.State.Status != StatusCreated {
			return c.State.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
	return 0, fmt.Errorf("container %s: no exit status after its output ended: %w", id[:12], errdefs.ErrUnavailable)
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
	f, err := os.OpenFile(filepath.Join(e.bundleDir(c.ID), "ctl"), os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("resize %s: %w", c.ShortID(), err)
	}
	defer f.Close()
	// conmon's control message 1: "1 HEIGHT WIDTH\n".
	_, err = f.WriteString("1 " + strconv.Itoa(int(height)) + " " + strconv.Itoa(int(width)) + "\n")
	return err
}

// ParseDetachKeys turns Docker's detach key syntax into the bytes Attach
// matches: comma-separated keys, each one character or "ctrl-X" (X one
// of a-z, @, [, \, ], ^, _). "" gives Docker's default, ctrl-p,ctrl-q.
// errdefs.ErrInvalidArgument for anything else, with the daemon's message.
func ParseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		return []byte{16, 17}, nil
	}
	b, err := term.ToBytes(keys)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("Invalid detach keys (%s) provided: %w", keys, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// dialAttach connects to a SOCK_SEQPACKET unix socket at path, going
// through /proc/self/fd so that a long path does not hit the 108-byte
// limit of socket addresses.
func dialAttach(path string) (*net.UnixConn, error) {
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to the monitor's attach socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "attach")
	defer f.Close()
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}
