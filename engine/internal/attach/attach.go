// Package attach is the terminal side of package engine's Attach and
// ResizeTTY: the connection to a detached container's monitor (its
// attach socket and control FIFO), the copy of its streams with the
// detach keys, the replay of output a connection reset lost, and the
// exit status read once the output ended.
package attach

import (
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

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/monitor"
	"github.com/containerd/errdefs"
	"github.com/moby/term"
	"golang.org/x/sys/unix"
)

// Attach pipe numbers of the monitor's attach socket: each message it
// sends starts with one byte naming the stream (conmon's protocol, which
// berth-monitor keeps).
const (
	pipeStdout = 2
	pipeStderr = 3
)

// ErrDetached is what Copy returns when the user typed the detach key
// sequence: the attachment ended and the container keeps running. Its
// text is the one the docker CLI prints on `docker attach` ("read escape
// sequence").
var ErrDetached = errors.New("read escape sequence")

// Streams are the caller's ends of an attachment.
type Streams struct {
	// Stdin is copied to the container's stdin when not nil and the
	// container was created with OpenStdin (-i).
	Stdin io.Reader
	// Stdout and Stderr receive the container's output; nil discards.
	Stdout, Stderr io.Writer
	// DetachKeys, when not empty, is the key sequence (bytes, as
	// ParseDetachKeys gives) that, read from Stdin, ends the attachment
	// with ErrDetached; the keys are not passed on. A partial match is
	// passed on once it stops matching (Docker's escape proxy).
	DetachKeys []byte
}

// Result is what Copy read: the bytes of each stream and whether the
// monitor reset the connection.
type Result struct {
	Stdout, Stderr int64
	Reset          bool
}

// WriteMissed writes to s.Stdout and s.Stderr what the container's logged
// output (stdout, stderr: its log since its last start) holds beyond the
// bytes r read of each stream: the monitor logs everything it sends, so
// output a connection reset at the container's exit lost is still shown.
func (r Result) WriteMissed(stdout, stderr []byte, s Streams) {
	for _, x := range []struct {
		logged []byte
		n      int64
		w      io.Writer
	}{{stdout, r.Stdout, s.Stdout}, {stderr, r.Stderr, s.Stderr}} {
		if x.w != nil && int64(len(x.logged)) > x.n {
			x.w.Write(x.logged[x.n:])
		}
	}
}

// StartAndDial runs start (which starts container id under its monitor)
// and connects to the monitor's attach socket at path as soon as it
// exists: the monitor makes it while the OCI runtime creates the
// container, before the container's process is started. start's error
// wins over a connection.
func StartAndDial(ctx context.Context, id, path string, start func(context.Context) error) (*net.UnixConn, error) {
	started := make(chan error, 1)
	go func() { started <- start(ctx) }()
	var startErr error
	done := false
	// After the start returned, the socket exists: a short grace period
	// covers a socket not yet accepted.
	var deadline time.Time
	for {
		conn, err := Dial(path)
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

// Copy copies between the monitor's attach connection and s until the
// output ends (nil), the user detaches (ErrDetached) or ctx ends (ctx's
// error); stdin is copied only when openStdin. A reset of the connection
// (the monitor closed it at the container's exit with input of ours
// unread) is reported once by the kernel, ahead of the output still
// queued: reading goes on to the end, and Result.Reset tells.
func Copy(ctx context.Context, conn *net.UnixConn, openStdin bool, s Streams) (Result, error) {
	var got Result
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	detached := make(chan struct{})
	if s.Stdin != nil && openStdin {
		in := s.Stdin
		if len(s.DetachKeys) > 0 {
			in = term.NewEscapeProxy(in, s.DetachKeys)
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
	stdout, stderr := s.Stdout, s.Stderr
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
			if buf[0] == pipeStderr {
				w = stderr
			}
			if buf[0] == pipeStdout || buf[0] == pipeStderr {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return got, werr
				}
				if buf[0] == pipeStderr {
					got.Stderr += int64(n - 1)
				} else {
					got.Stdout += int64(n - 1)
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
			if errors.Is(err, syscall.ECONNRESET) && !got.Reset {
				got.Reset = true
				continue
			}
			if errors.Is(err, io.EOF) || got.Reset {
				return got, nil
			}
			return got, fmt.Errorf("attach: %w", err)
		}
	}
}

// ExitCode is the exit status of container id, whose output has just
// ended, read from the monitor's exit files in exitDir; lookup reads the
// container's record. The monitor writes the exit file right after
// closing the attach connections and only then runs the cleanup, which
// may remove the container (--rm) and the file with it: the file is read
// first, the record next. errdefs.ErrNotFound when the container was
// removed without an exit file; errdefs.ErrUnavailable when no status
// came within a minute; ctx's error when it ends first.
func ExitCode(ctx context.Context, exitDir, id string, lookup func(ctx context.Context, id string) (record.Container, error)) (int, error) {
	delay := time.Millisecond
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		if code, _, err := monitor.ExitStatus(exitDir, id); err == nil {
			return code, nil
		}
		c, err := lookup(ctx, id)
		if errdefs.IsNotFound(err) {
			if code, _, err := monitor.ExitStatus(exitDir, id); err == nil {
				return code, nil
			}
			return 0, fmt.Errorf("container %s was removed before its exit status was read: %w", id[:12], errdefs.ErrNotFound)
		}
		if err != nil {
			return 0, err
		}
		if c.State.Status != record.StatusRunning && c.State.Status != record.StatusCreated {
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

// Resize sends the terminal size (rows, columns) to the monitor's control
// FIFO at ctlPath: the monitor's control message 1, "1 HEIGHT WIDTH\n". The
// FIFO is opened without blocking, so a monitor gone gives an error
// ("resize NAME: …", name the container's short ID).
func Resize(ctlPath, name string, height, width uint16) error {
	f, err := os.OpenFile(ctlPath, os.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("resize %s: %w", name, err)
	}
	defer f.Close()
	_, err = f.WriteString("1 " + strconv.Itoa(int(height)) + " " + strconv.Itoa(int(width)) + "\n")
	return err
}

// ParseDetachKeys turns Docker's detach key syntax into the bytes Copy
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

// Dial connects to a SOCK_SEQPACKET unix socket at path, going through
// /proc/self/fd so that a long path does not hit the 108-byte limit of
// socket addresses. An error matching os.ErrNotExist means there is no
// socket at path.
func Dial(path string) (*net.UnixConn, error) {
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
