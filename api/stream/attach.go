package stream

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/monitor"
	"github.com/containerd/errdefs"
)

// Containers is what attach and wait read of the engine; the API
// server's Backend satisfies it.
type Containers interface {
	// Container is engine.Container: errdefs.ErrNotFound for an unknown
	// ref.
	Container(ctx context.Context, ref string) (engine.Container, error)
	// Logs is engine.Logs.
	Logs(ctx context.Context, ref string, opts engine.LogOptions, stdout, stderr io.Writer) error
}

// Host is what attach and wait do with a container's files beside the
// engine: the monitor's exit status, the log while a run is attached,
// and the stdin socket. IDs are full 64-hex IDs.
type Host interface {
	// ExitStatus is the exit code the monitor recorded; ok false when
	// none is recorded (yet).
	ExitStatus(id string) (code int, ok bool)
	// LogExists reports whether the container's log file exists.
	LogExists(id string) bool
	// FollowLog calls fn with the log's entries at or after since,
	// following the log until the container no longer runs or ctx ends.
	FollowLog(ctx context.Context, id string, since time.Time, fn func(monitor.LogEntry) error) error
	// DialAttach connects to the monitor's stdin socket.
	DialAttach(ctx context.Context, id string) (net.Conn, error)
}

// AttachOptions are the query flags of POST /containers/{id}/attach:
// which streams, Logs (replay the log first) and Stream (follow the run).
type AttachOptions struct {
	Stdin, Stdout, Stderr, Logs, Stream bool
}

// Attach serves an attach of the container c0 on the hijacked conn,
// whose client bytes are read from in. Output comes from the container's
// log, which the monitor writes from the first byte of each run, so
// nothing is lost when the client attaches before the start (the CLI's
// `run` does create → attach → wait → start): multiplexed frames without
// a TTY, raw bytes with one. stdin goes to the monitor's attach socket
// once the container runs; the client's EOF reaches the monitor as a
// half-close, which ends the container's stdin. With Stream, Attach waits
// for the run to begin, follows the log until the container stops and
// half-closes conn; it returns an error only when following failed. It
// runs until then even if ctx is cancelled (the server's request context
// ends with the hijack); the caller closes conn.
//
// Limits: output arrives line by line (a prompt without a newline shows
// once the line ends) with up to 100 ms delay.
func Attach(ctx context.Context, b Containers, h Host, c0 engine.Container, conn net.Conn, in io.Reader, o AttachOptions) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	fw := NewMux(conn, !c0.Run.Tty, nil)
	stdout, stderr := io.Discard, io.Discard
	if o.Stdout {
		stdout = fw.Stream(Stdout)
	}
	if o.Stderr {
		stderr = fw.Stream(Stderr)
	}
	if o.Stdin && c0.Run.OpenStdin {
		go copyStdin(ctx, h, c0.ID, in)
	} else {
		// The CLI half-closes when it sends no stdin: EOF is no hang-up.
		go io.Copy(io.Discard, in)
	}
	if o.Logs {
		b.Logs(ctx, c0.ID, engine.LogOptions{Tail: -1}, stdout, stderr)
	}
	if !o.Stream {
		return nil
	}
	since, ok := runBegun(ctx, b, c0)
	if !ok {
		return nil
	}
	if o.Logs {
		since = time.Now()
	}
	// The run is marked before its monitor makes the log: wait for the
	// file, then follow it until the container stops.
	// The state is read rarely: every read takes the database's lock.
	for i := 1; !h.LogExists(c0.ID); i++ {
		if i%20 == 0 {
			c, err := b.Container(ctx, c0.ID)
			if err != nil || c.State.Status != engine.StatusRunning {
				break
			}
		}
		if !sleep(ctx, 2*time.Millisecond) {
			return nil
		}
	}
	err := h.FollowLog(ctx, c0.ID, since, func(le monitor.LogEntry) error {
		w := stdout
		if le.Stream == "stderr" {
			w = stderr
		}
		_, err := w.Write(le.Data)
		return err
	})
	CloseWrite(conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// runBegun waits until c0 runs, or has run since it was read, and returns
// when its run started; false when ctx ended or the container is gone.
func runBegun(ctx context.Context, b Containers, c0 engine.Container) (time.Time, bool) {
	if c0.State.Status == engine.StatusRunning {
		return time.Now(), true
	}
	for {
		c, err := b.Container(ctx, c0.ID)
		if err != nil {
			return time.Time{}, false
		}
		if c.State.Status == engine.StatusRunning || !c.State.StartedAt.Equal(c0.State.StartedAt) {
			return c.State.StartedAt, true
		}
		if !sleep(ctx, 25*time.Millisecond) {
			return time.Time{}, false
		}
	}
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// copyStdin forwards the client's stdin to the monitor's attach socket,
// waiting for the socket to appear (the container may start later). The
// client's EOF (the CLI half-closes when its stdin ends) is passed on as
// a half-close, which the monitor reads as the end of the container's
// stdin.
func copyStdin(ctx context.Context, h Host, id string, in io.Reader) {
	var conn net.Conn
	for conn == nil {
		var err error
		if conn, err = h.DialAttach(ctx, id); err != nil {
			conn = nil
			if !sleep(ctx, 20*time.Millisecond) {
				return
			}
		}
	}
	defer conn.Close()
	// Drain what the monitor sends; output is read from the log.
	go io.Copy(io.Discard, conn)
	// Messages stay below the monitor's read size (SOCK_SEQPACKET
	// truncates a longer one), so no io.Copy with its own buffer size.
	buf := make([]byte, 8192)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			CloseWrite(conn)
		}
		if err != nil {
			return
		}
	}
}

// Wait waits until the container c0 meets Docker's wait condition cond
// ("" or "not-running", "next-exit", "removed") and returns its exit
// code and error text (POST /containers/{id}/wait). A container removed
// by its monitor (--rm) can vanish between two polls: the monitor's exit
// file is watched closely (a cheap read) so that the code is seen
// between the exit and the removal, while the record is read less often
// (every read takes the database's lock). The error is ctx's when it
// ends first, or the engine's.
func Wait(ctx context.Context, b Containers, h Host, c0 engine.Container, cond string) (int, string, error) {
	code, msg := c0.State.ExitCode, ""
	if c0.State.Status == engine.StatusCreated {
		code = 0
	}
	started := c0.State.Status == engine.StatusRunning
	var next time.Time
	for {
		if started {
			if n, ok := h.ExitStatus(c0.ID); ok {
				code = n
			}
		}
		if now := time.Now(); !now.Before(next) {
			next = now.Add(25 * time.Millisecond)
			c, err := b.Container(ctx, c0.ID)
			if errdefs.IsNotFound(err) {
				return code, msg, nil
			}
			if err != nil {
				return code, msg, err
			}
			running := c.State.Status == engine.StatusRunning
			if running || !c.State.StartedAt.Equal(c0.State.StartedAt) {
				started = true
			}
			if !running && started {
				code, msg = c.State.ExitCode, c.State.Error
			}
			switch cond {
			case "", "not-running":
				if !running {
					return c.State.ExitCode, c.State.Error, nil
				}
			case "next-exit":
				if !running && started {
					return code, msg, nil
				}
			}
		}
		delay := 25 * time.Millisecond
		if started {
			delay = 3 * time.Millisecond
		}
		if !sleep(ctx, delay) {
			return code, msg, ctx.Err()
		}
	}
}
