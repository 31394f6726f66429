package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Attach pipe numbers of the monitor's attach socket: each message it
// sends starts with one byte naming the stream (conmon's protocol).
const (
	attachStdout = 2
	attachStderr = 3
)

// Attach connects to a detached container's monitor and copies the
// container's output to stdout and stderr (a TTY container has only
// stdout) and, when stdin is not nil and the container was created with
// OpenStdin, stdin to the container. It returns when the container's
// output ends (it exited) or ctx ends; the caller then reads the exit
// status with Wait. errdefs.ErrConflict if the container is not running,
// errdefs.ErrNotImplemented for a container run in the foreground (its
// output belongs to the berth process that runs it).
func (e *Engine) Attach(ctx context.Context, ref string, stdin io.Reader, stdout, stderr io.Writer) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusRunning {
		return fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
	}
	conn, err := dialAttach(filepath.Join(e.bundleDir(c.ID), "attach"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("container %s runs in the foreground of another berth process: attaching needs a detached container: %w", c.ShortID(), errdefs.ErrNotImplemented)
		}
		return err
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	if stdin != nil && c.Run.OpenStdin {
		go func() {
			io.Copy(conn, stdin)
			conn.CloseWrite()
		}()
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
					return werr
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("attach to %s: %w", c.ShortID(), err)
		}
	}
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
