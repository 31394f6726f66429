package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/internal/flock"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
)

// applyRestartPolicy runs once per exit (guarded by State.ExitHandled):
// it removes an AutoRemove container, or restarts one whose policy says
// so after Docker's back-off (100 ms doubling per consecutive restart).
func (m *Manager) applyRestartPolicy(ctx context.Context, c record.Container) error {
	first := false
	err := m.DB.Update(ctx, func(tx *state.Tx) error {
		var cur record.Container
		if err := tx.Get(record.Bucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.State.Status != record.StatusExited || cur.State.ExitHandled || !cur.State.StartedAt.Equal(c.State.StartedAt) {
			return nil
		}
		first = true
		cur.State.ExitHandled = true
		// Docker's "restarting" state covers the back-off: ps and inspect
		// show it until the next start (or a stop) clears it.
		cur.State.Restarting = !cur.AutoRemove && cur.ShouldRestart()
		c = cur
		return tx.Put(record.Bucket, c.ID, cur)
	})
	if err != nil || !first {
		return err
	}
	if c.AutoRemove {
		return m.Remove(ctx, c.ID, true)
	}
	if !c.State.Restarting {
		return nil
	}
	time.Sleep(min(100*time.Millisecond<<min(c.State.RestartCount, 10), time.Minute))
	// A stop during the back-off ends the restart loop, as in Docker.
	stopped := false
	if err := record.Update(ctx, m.DB, c.ID, func(cur *record.Container) error {
		if cur.State.StoppedByUser || !cur.State.Restarting || !cur.State.StartedAt.Equal(c.State.StartedAt) {
			stopped = true
			cur.State.Restarting = false
			return nil
		}
		cur.State.RestartCount++
		return nil
	}); err != nil || stopped {
		return err
	}
	return m.StartDetached(ctx, c.ID)
}

// Kill sends sig to a running container's main process. errdefs.ErrConflict
// if it is not running. A paused container is unpaused after the signal
// is sent, so that it is delivered, when sig is SIGKILL, the container's
// stop signal, or any signal for a container without a --stop-signal
// (moby's daemon/kill.go rule).
func (m *Manager) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != record.StatusRunning {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	if err := m.markStopped(ctx, c.ID); err != nil {
		return ignoreGone(err)
	}
	if err := m.RuntimeOf(c).Kill(ctx, c.ID, sig, false); err != nil {
		// The process ended (and an --rm container may be gone) since
		// it was read: Docker's kill succeeds then too.
		return ignoreGone(err)
	}
	m.emitKill(c, sig)
	m.resumeForSignal(ctx, c, sig)
	return nil
}

// emitKill appends Docker's kill event: the signal's number.
func (m *Manager) emitKill(c record.Container, sig syscall.Signal) {
	m.emit(c, "kill", map[string]string{"signal": strconv.Itoa(int(sig))})
}

// resumeForSignal unpauses c, paused when it was read, if sig is one that
// ends it (see Kill): the frozen processes then receive the signal
// already queued. A failure to unpause is not the caller's: the signal
// was sent, and the container stays paused as it was.
func (m *Manager) resumeForSignal(ctx context.Context, c record.Container, sig syscall.Signal) {
	if !c.State.Paused {
		return
	}
	if sig != syscall.SIGKILL && c.StopSignal != "" {
		if s, err := signal.ParseSignal(c.StopSignal); err != nil || s != sig {
			return
		}
	}
	m.Unpause(ctx, c.ID)
}

// markStopped records that the user stopped the container, so that the
// restart policy leaves it stopped (Docker's rule for always and
// unless-stopped); a container waiting to be restarted is no longer
// "restarting".
func (m *Manager) markStopped(ctx context.Context, id string) error {
	return record.Update(ctx, m.DB, id, func(cur *record.Container) error {
		cur.State.StoppedByUser = true
		cur.State.Restarting = false
		return nil
	})
}

// Stop sends the container's stop signal (SIGTERM unless --stop-signal),
// waits up to timeout (nil: the container's --stop-timeout, else 10 s) for
// it to exit, then kills it with SIGKILL. A paused container is unpaused
// after the signal is sent (as Kill), so that it can exit at once rather
// than at the end of the timeout. Stopping a container that is not
// running is not an error. Returns once the exit is recorded.
func (m *Manager) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return m.StopWithSignal(ctx, ref, "", timeout)
}

// StopWithSignal is Stop with sig (a name or number; "" for the
// container's stop signal) in place of the stop signal. A malformed sig
// gives errdefs.ErrInvalidArgument.
func (m *Manager) StopWithSignal(ctx context.Context, ref, sigName string, timeout *time.Duration) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != record.StatusRunning {
		// Not running, perhaps between restarts: no restart after this.
		if c.Restart.Name != "" && c.Restart.Name != "no" {
			return m.markStopped(ctx, c.ID)
		}
		return nil
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
	if err := m.markStopped(ctx, c.ID); err != nil {
		return ignoreGone(err)
	}
	// A paused container is unpaused once signalled (as moby's stop does
	// through its kill): frozen, it would sit out the whole timeout.
	if wait > 0 {
		if err := m.RuntimeOf(c).Kill(ctx, c.ID, sig, false); err == nil {
			m.emitKill(c, sig)
			m.resumeForSignal(ctx, c, sig)
			if _, err := m.waitExit(ctx, c.ID, wait); err == nil || errdefs.IsNotFound(err) {
				m.emit(c, "stop", nil)
				return nil
			}
		}
	}
	if err := m.RuntimeOf(c).Kill(ctx, c.ID, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	m.emitKill(c, syscall.SIGKILL)
	if cur, err := m.Container(ctx, c.ID); err == nil && cur.State.Status == record.StatusRunning {
		m.resumeForSignal(ctx, cur, syscall.SIGKILL)
	}
	if _, err = m.waitExit(ctx, c.ID, 30*time.Second); err != nil {
		return ignoreGone(err)
	}
	m.emit(c, "stop", nil)
	return nil
}

// ignoreGone is err, or nil when it is errdefs.ErrNotFound: the
// container's process or, for an --rm container, its record went away
// while stop, kill or wait acted on it. It has then exited, which is
// what they do or wait for, and Docker's succeed.
func ignoreGone(err error) error {
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// waitExit polls until the container is no longer running (or timeout,
// errdefs.ErrUnavailable; 0 for no timeout) and returns it. When the
// record goes away meanwhile (an --rm container removed itself) the
// error is errdefs.ErrNotFound and the container returned is the last
// seen, with status exited and the exit file's code if the exit was
// seen before the removal.
func (m *Manager) waitExit(ctx context.Context, id string, timeout time.Duration) (record.Container, error) {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	delay := 5 * time.Millisecond
	var last record.Container
	for {
		c, err := m.Container(ctx, id)
		if err != nil {
			return last, err
		}
		if c.State.Status != record.StatusRunning && (c.State.Status != record.StatusCreated || c.State.Error != "" || !c.State.FinishedAt.IsZero()) {
			return c, nil
		}
		last = c
		if code, _, err := monitor.ExitStatus(m.exitDir(), id); err == nil {
			last.State.Status, last.State.ExitCode = record.StatusExited, code
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return c, fmt.Errorf("container %s did not exit within %s: %w", c.ShortID(), timeout, errdefs.ErrUnavailable)
		}
		// Between reads of the record, the exit file is looked at every
		// few milliseconds (a read of a small file, where the record costs
		// a database open): an --rm container's cleanup removes both soon
		// after the exit, and its code must be seen first.
		for end, seen := time.Now().Add(delay), false; !seen && time.Now().Before(end); {
			select {
			case <-ctx.Done():
				return c, ctx.Err()
			case <-time.After(3 * time.Millisecond):
			}
			if code, _, err := monitor.ExitStatus(m.exitDir(), id); err == nil {
				last.State.Status, last.State.ExitCode, seen = record.StatusExited, code, true
			}
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// Wait blocks until the container stops and returns its exit code, as
// `docker wait`.
func (m *Manager) Wait(ctx context.Context, ref string) (int, error) {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return 0, err
	}
	c, err = m.waitExit(ctx, c.ID, 0)
	if errdefs.IsNotFound(err) && c.State.Status == record.StatusExited {
		return c.State.ExitCode, nil // removed (--rm) after its exit was seen
	}
	return c.State.ExitCode, err
}

// Restart stops the container (as Stop) and starts it detached.
func (m *Manager) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	if err := m.Stop(ctx, ref, timeout); err != nil {
		return err
	}
	if err := m.StartDetached(ctx, ref); err != nil {
		return err
	}
	if c, err := m.Container(ctx, ref); err == nil {
		m.emit(c, "restart", nil)
	}
	return nil
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
func (m *Manager) Logs(ctx context.Context, ref string, opts LogOptions, stdout, stderr io.Writer) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	path := m.LogPath(c.ID)
	mopts := monitor.LogOptions{Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Follow: opts.Follow}
	if opts.Follow {
		mopts.Done = func() bool {
			cur, err := m.Container(ctx, c.ID)
			return err != nil || cur.State.Status != record.StatusRunning
		}
	}
	return monitor.ReadLog(ctx, path, mopts, func(le monitor.LogEntry) error {
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

// removeFiles deletes what a container keeps outside its snapshot: its
// log and /etc files and its exit file, once no client that attached to
// it (HoldExit) still has to read them.
func (m *Manager) removeFiles(id string) error {
	hold := m.exitHoldPath(id)
	if l, err := flock.Acquire(context.Background(), hold, true); err == nil {
		defer l.Unlock()
		defer os.Remove(hold)
	}
	os.Remove(filepath.Join(m.exitDir(), id))
	return os.RemoveAll(m.containerDir(id))
}

func (m *Manager) exitHoldPath(id string) string {
	return filepath.Join(m.exitDir(), id+".hold")
}

// HoldExit keeps container id's exit file and log from being removed
// (by the cleanup of an --rm container, which may run in the monitor the
// moment the container exits) until release is called: a client attached
// to the container reads its exit status, and the output the attach
// connection lost, before they go. It is a shared flock, so any number of
// clients may hold it, and a client that dies lets go. Errors are those of
// creating the lock file under RUNROOT/exits.
func (m *Manager) HoldExit(ctx context.Context, id string) (release func(), err error) {
	if err := os.MkdirAll(m.exitDir(), 0o700); err != nil {
		return nil, err
	}
	hold := m.exitHoldPath(id)
	l, err := flock.Acquire(ctx, hold, false)
	if err != nil {
		return nil, err
	}
	return func() {
		l.Unlock()
		if _, err := os.Stat(filepath.Join(m.exitDir(), id)); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(m.containerDir(id)); errors.Is(err, os.ErrNotExist) {
				os.Remove(hold) // the container is gone: nobody else removes it
			}
		}
	}, nil
}
