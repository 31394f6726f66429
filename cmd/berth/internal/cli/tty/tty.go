// Package tty connects berth's own terminal to a container's, as the
// docker CLI does for `attach`, `run -t`, `start -a` and `exec -t`: the
// local terminal in raw mode while attached and restored on every way
// out, window size changes forwarded, Docker's detach keys, and signals
// forwarded to a container without a terminal (--sig-proxy).
package tty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/engine"
	"golang.org/x/term"
)

// DetachKeys resolves the detach key sequence: flag (--detach-keys, ""
// when not given), else the "detachKeys" key of Docker's config.json
// (optional), else Docker's default ctrl-p,ctrl-q. A malformed sequence
// gives errdefs.ErrInvalidArgument (engine.ParseDetachKeys).
func DetachKeys(flag string) ([]byte, error) {
	if flag == "" {
		flag = configDetachKeys(engine.DockerConfigPath())
	}
	return engine.ParseDetachKeys(flag)
}

// configDetachKeys reads "detachKeys" from the config.json at path; ""
// when the file or the key is absent or unreadable.
func configDetachKeys(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var cfg struct {
		DetachKeys string `json:"detachKeys"`
	}
	if json.Unmarshal(data, &cfg) != nil {
		return ""
	}
	return cfg.DetachKeys
}

// Raw puts f, a terminal, in raw mode and returns the function that
// restores its settings; it may be called any number of times. When f is
// not a terminal nothing changes.
func Raw(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return func() {}, nil
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("unable to set the terminal in raw mode: %w", err)
	}
	return sync.OnceFunc(func() { term.Restore(fd, old) }), nil
}

// WatchSize calls resize with the size (rows, columns) of the terminal
// out now and again on every SIGWINCH, until the returned function is
// called. The first call is retried for up to two seconds while resize
// fails (a container still starting); later failures are ignored. Nothing
// happens when out is not a terminal.
func WatchSize(out *os.File, resize func(rows, cols uint16) error) (stop func()) {
	fd := int(out.Fd())
	if !term.IsTerminal(fd) {
		return func() {}
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	size := func() (uint16, uint16, bool) {
		w, h, err := term.GetSize(fd)
		return uint16(h), uint16(w), err == nil
	}
	go func() {
		if h, w, ok := size(); ok {
			for deadline := time.Now().Add(2 * time.Second); resize(h, w) != nil && time.Now().Before(deadline); {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		for {
			select {
			case <-done:
				return
			case <-winch:
				if h, w, ok := size(); ok {
					resize(h, w)
				}
			}
		}
	}()
	return sync.OnceFunc(func() { signal.Stop(winch); close(done) })
}

// Options are the settings of an attached session.
type Options struct {
	// Start starts the container first (run, start -a); otherwise it must
	// be running (attach).
	Start bool
	// Stdin attaches berth's stdin (when the container has OpenStdin):
	// attach without --no-stdin, run -i, start -i.
	Stdin bool
	// DetachKeys is --detach-keys ("" when not given, see DetachKeys).
	DetachKeys string
	// SigProxy forwards the signals berth receives to a container without
	// a terminal (with one, Ctrl-C reaches it through the terminal).
	SigProxy bool
}

// ErrNotATTY is Docker's refusal to attach a non-terminal stdin to a
// container's terminal.
var ErrNotATTY = errors.New("the input device is not a TTY")

// Attach runs an attached session with container ref on berth's own
// stdio and returns the container's exit status. engine.ErrDetached (with
// status 0) means the user typed the detach keys; the container runs on.
// The terminal is restored before Attach returns, whatever the outcome.
func Attach(ctx context.Context, e *engine.Engine, ref string, o Options) (int, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return 0, err
	}
	stdin := o.Stdin && c.Run.OpenStdin
	opts := engine.AttachOptions{Stdout: os.Stdout, Stderr: os.Stderr, Start: o.Start}
	if stdin {
		opts.Stdin = os.Stdin
	}
	if c.Run.Tty && stdin {
		if !cli.IsTerminal(os.Stdin) {
			return 0, ErrNotATTY
		}
		if opts.DetachKeys, err = DetachKeys(o.DetachKeys); err != nil {
			return 0, err
		}
		restore, err := Raw(os.Stdin)
		if err != nil {
			return 0, err
		}
		defer restore()
	}
	if c.Run.Tty {
		// docker attach first resizes to one more row and column to force
		// a redraw; conmon applies only the first of two control messages
		// read at once, so berth sends the one true size.
		stop := WatchSize(os.Stdout, func(rows, cols uint16) error { return e.ResizeTTY(ctx, c.ID, rows, cols) })
		defer stop()
	} else if o.SigProxy {
		// Signals go to the container, which decides; the session lasts
		// until its output ends.
		bg := context.WithoutCancel(ctx)
		stop := cli.ForwardSignals(func(s syscall.Signal) error { return e.Kill(bg, c.ID, s) })
		defer stop()
		ctx = bg
	}
	return e.Attach(ctx, c.ID, opts)
}

// Run is Attach for `run -t` and `start -a` of a container with a
// terminal: it starts the container attached; detaching (status 0, no
// error) and a signal that ended berth's context (128+N, no error, the
// container runs on) are not errors there, as with the docker CLI.
// Other errors are Attach's, start errors included.
func Run(ctx context.Context, e *engine.Engine, ref string, o Options) (int, error) {
	o.Start = true
	code, err := Attach(ctx, e, ref, o)
	if errors.Is(err, engine.ErrDetached) {
		return 0, nil
	}
	if err != nil && ctx.Err() != nil {
		var ee cli.ExitError
		if errors.As(cli.Interrupted(ctx), &ee) {
			return ee.Code, nil
		}
	}
	return code, err
}
