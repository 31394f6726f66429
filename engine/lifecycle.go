package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
)

// RestartPolicy is Docker's --restart: Name is "no" (or ""), "always",
// "unless-stopped" or "on-failure" (with MaximumRetryCount, 0 = no limit).
type RestartPolicy struct {
	Name              string `json:"name,omitempty"`
	MaximumRetryCount int    `json:"maximumRetryCount,omitempty"`
}

// ParseRestartPolicy parses --restart's value ("no", "always",
// "unless-stopped", "on-failure[:N]"); errdefs.ErrInvalidArgument else.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	var p RestartPolicy
	name, count, hasCount := cutString(s, ":")
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasCount {
			return p, fmt.Errorf("maximum retry count cannot be used with restart policy '%s': %w", name, errdefs.ErrInvalidArgument)
		}
	case "on-failure":
		if hasCount {
			if _, err := fmt.Sscanf(count, "%d", &p.MaximumRetryCount); err != nil || p.MaximumRetryCount < 0 {
				return p, fmt.Errorf("invalid restart policy format: maximum retry count must be a non-negative integer: %w", errdefs.ErrInvalidArgument)
			}
		}
	default:
		return p, fmt.Errorf("invalid restart policy '%s': %w", s, errdefs.ErrInvalidArgument)
	}
	p.Name = name
	return p, nil
}

func cutString(s, sep string) (string, string, bool) {
	for i := 0; i+len(sep) <= len(s); i++ {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// applyRestartPolicy runs once per exit (guarded by State.ExitHandled):
// it removes an AutoRemove container, or restarts one whose policy says
// so after Docker's back-off (100 ms doubling per consecutive restart).
func (e *Engine) applyRestartPolicy(ctx context.Context, c Container) error {
	first := false
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.State.Status != StatusExited || cur.State.ExitHandled || !cur.State.StartedAt.Equal(c.State.StartedAt) {
			return nil
		}
		first = true
		cur.State.ExitHandled = true
		c = cur
		return tx.Put(containersBucket, c.ID, cur)
	})
	if err != nil || !first {
		return err
	}
	if c.AutoRemove {
		return e.Remove(ctx, c.ID, true)
	}
	if !c.shouldRestart() {
		return nil
	}
	time.Sleep(min(100*time.Millisecond<<min(c.State.RestartCount, 10), time.Minute))
	if err := e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		cur.State.RestartCount++
		return tx.Put(containersBucket, c.ID, cur)
	}); err != nil {
		return err
	}
	return e.StartDetached(ctx, c.ID)
}

func (c Container) shouldRestart() bool {
	if c.State.StoppedByUser {
		return false
	}
	switch c.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.State.ExitCode != 0 && (c.Restart.MaximumRetryCount == 0 || c.State.RestartCount < c.Restart.MaximumRetryCount)
	}
	return false
}

// Kill sends sig to a running container's main process. errdefs.ErrConflict
// if it is not running.
func (e *Engine) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != StatusRunning {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	if err := e.markStopped(ctx, c.ID); err != nil {
		return err
	}
	return e.runtime.Kill(ctx, c.ID, sig, false)
}

// markStopped records that the user stopped the container, so that the
// restart policy leaves it stopped (Docker's rule for always and
// unless-stopped).
func (e *Engine) markStopped(ctx context.Context, id string) error {
	return e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, id, &cur); err != nil {
			return err
		}
		cur.State.StoppedByUser = true
		return tx.Put(containersBucket, id, cur)
	})
}

// Stop sends the container's stop signal (SIGTERM unless --stop-signal),
// waits up to timeout (nil: the container's --stop-timeout, else 10 s) for
// it to exit, then kills it with SIGKILL. Stopping a container that is not
// running is not an error. Returns once the exit is recorded.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return e.StopWithSignal(ctx, ref, "", timeout)
}

// StopWithSignal is Stop with sig (a name or number; "" for the
// container's stop signal) in place of the stop signal. A malformed sig
// gives errdefs.ErrInvalidArgument.
func (e *Engine) StopWithSignal(ctx context.Context, ref, sigName string, timeout *time.Duration) error {
	c, err := e.Container(ctx, ref)
	if err != nil || c.State.Status != StatusRunning {
		return err
	}
	wait := 10 * time.Second
	if c.StopTimeout != nil {
		wait = time.Duration(*c.StopTimeout) * time.Second
	}
	if timeout != nil {
		wait = *timeout
	}
	sig := syscall.SIGTERM
	if sigName == "" {
		sigName = c.StopSignal
	}
	if sigName != "" {
		s, err := signal.ParseSignal(sigName)
		if err != nil {
			return fmt.Errorf("invalid signal: %s: %w", sigName, errdefs.ErrInvalidArgument)
		}
		sig = s
	}
	if err := e.markStopped(ctx, c.ID); err != nil {
		return err
	}
	if wait > 0 {
		if err := e.runtime.Kill(ctx, c.ID, sig, false); err == nil {
			if _, err := e.waitExit(ctx, c.ID, wait); err == nil {
				return nil
			}
		}
	}
	if err := e.runtime.Kill(ctx, c.ID, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	_, err = e.waitExit(ctx, c.ID, 30*time.Second)
	return err
}

// waitExit polls until the container is no longer running (or timeout,
// errdefs.ErrUnavailable; 0 for no timeout) and returns it.
func (e *Engine) waitExit(ctx context.Context, id string, timeout time.Duration) (Container, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	delay := 5 * time.Millisecond
	for {
		c, err := e.Container(ctx, id)
		if err != nil {
			return c, err
		}
		if c.State.Status != StatusRunning && (c.State.Status != StatusCreated || c.State.Error != "" || !c.State.FinishedAt.IsZero()) {
			return c, nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return c, fmt.Errorf("container %s did not exit within %s: %w", c.ShortID(), timeout, errdefs.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// Wait blocks until the container stops and returns its exit code, as
// `docker wait`.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return 0, err
	}
	c, err = e.waitExit(ctx, c.ID, 0)
	return c.State.ExitCode, err
}

// Restart stops the container (as Stop) and starts it detached.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	if err := e.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	return e.StartDetached(ctx, ref)
}

// LogOptions select what Logs returns, as `docker logs` flags.
type LogOptions struct {
	Follow     bool
	Tail       int // lines from the end; < 0 for all
	Since      time.Time
	Until      time.Time
	Timestamps bool
}

// Logs writes the container's logged output to stdout and stderr (each
// stream to its own), as `docker logs`. With Follow it keeps going until
// the container stops or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, opts LogOptions, stdout, stderr io.Writer) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	path := e.LogPath(c.ID)
	mopts := monitor.LogOptions{Tail: opts.Tail, Since: opts.Since, Until: opts.Until}
	skip := 0
	if opts.Follow {
		if opts.Tail >= 0 {
			n := 0
			monitor.ReadLog(ctx, path, monitor.LogOptions{Tail: -1, Since: opts.Since, Until: opts.Until}, func(monitor.LogEntry) error { n++; return nil })
			skip = max(0, n-opts.Tail)
		}
		mopts.Tail, mopts.Follow = -1, true
		mopts.Done = func() bool {
			cur, err := e.Container(ctx, c.ID)
			return err != nil || cur.State.Status != StatusRunning
		}
	}
	return monitor.ReadLog(ctx, path, mopts, func(le monitor.LogEntry) error {
		if skip > 0 {
			skip--
			return nil
		}
		w := stdout
		if le.Stream == "stderr" {
			w = stderr
		}
		if opts.Timestamps {
			if _, err := io.WriteString(w, le.Time.UTC().Format(time.RFC3339Nano)+" "); err != nil {
				return err
			}
		}
		_, err := w.Write(le.Data)
		return err
	})
}

// removeFiles deletes what a container keeps outside its snapshot.
func (e *Engine) removeFiles(id string) error {
	os.Remove(filepath.Join(e.exitDir(), id))
	return os.RemoveAll(e.containerDir(id))
}
