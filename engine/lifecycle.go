package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine/internal/lifecycle"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
)

// ParseRestartPolicy parses --restart's value ("no", "always",
// "unless-stopped", "on-failure[:N]"); errdefs.ErrInvalidArgument else.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	var p RestartPolicy
	name, count, hasCount := strings.Cut(s, ":")
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

// The container lifecycle (start, stop, wait, logs, pause, rename,
// remove, prune) is package lifecycle's; its types are re-exported here.
type (
	// Process is a container started in the foreground by Start: Pid,
	// Signal, and Wait, which records the exit.
	Process = lifecycle.Process
	// LogOptions select what Logs returns, as `docker logs` flags: Follow,
	// Tail (lines from the end; < 0 for all), Since, Until, Timestamps.
	LogOptions = lifecycle.LogOptions
	// ContainerPruneReport is what PruneContainers removed: full IDs and
	// the bytes their writable layers held.
	ContainerPruneReport = lifecycle.ContainerPruneReport
)

// lifecycleManager is what package lifecycle needs of the engine.
func (e *Engine) lifecycleManager() *lifecycle.Manager {
	return &lifecycle.Manager{
		Root: e.opts.Root, RunRoot: e.opts.RunRoot, RuntimeName: e.opts.Runtime, Snapshotter: e.opts.Snapshotter,
		Monitor: e.opts.Monitor, CleanupBinary: e.opts.CleanupBinary,
		DB: e.db, Content: e.content, Snaps: e.snaps, Runtime: e.runtime, Nets: e.nets,
		Emit: e.emitContainer,
	}
}

// bundleDir is the OCI bundle directory of container id.
func (e *Engine) bundleDir(id string) string { return e.life.BundleDir(id) }

// runningContainer returns ref if it is running, else errdefs.ErrConflict.
func (e *Engine) runningContainer(ctx context.Context, ref string) (Container, error) {
	c, err := e.Container(ctx, ref)
	if err == nil && c.State.Status != StatusRunning {
		err = fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c, err
}

// Container returns the container ref names (ID, name or unique ID prefix),
// its state reconciled with the OCI runtime.
func (e *Engine) Container(ctx context.Context, ref string) (Container, error) {
	return e.life.Container(ctx, ref)
}

// Containers lists containers, newest first: all of them, or only running
// ones when all is false.
func (e *Engine) Containers(ctx context.Context, all bool) ([]Container, error) {
	return e.life.Containers(ctx, all)
}

// Remove deletes a container: its runtime state, network, rootfs mount,
// bundle, snapshot, files and record, so that a crash part-way leaves a
// record (status "removing") that the next Remove finishes. A running
// container is refused with errdefs.ErrConflict unless force, which kills
// it first.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	return e.life.Remove(ctx, ref, force)
}

// LogPath is the container's log file: Docker's json-file format (CRI
// k8s-file under conmon), rotated files beside it as LogPath.1 …; see
// package monitor.
func (e *Engine) LogPath(id string) string {
	return e.life.LogPath(id)
}

// Start starts a created (or exited) container in the foreground: the OCI
// runtime runs as this process's child, the container's output goes to
// stdio and to its log, and the caller must call Wait, which records the
// exit. For a container that outlives its caller, use StartDetached.
//
// Errors: errdefs.ErrConflict if the container is running. Errors of the
// start itself come from Wait: runtime.ErrCommandNotFound /
// ErrCommandNotExecutable when the executable is missing or cannot run
// (Docker's 127 and 126). A failed start leaves the container "created"
// (and removes it if AutoRemove).
//
// ctx bounds only finding the container: once it is marked running, the
// start is carried through or undone whatever becomes of ctx, so a caller
// that is interrupted (a signal) never leaves it half-started; such a
// caller keeps the Process and relays the signal instead.
func (e *Engine) Start(ctx context.Context, ref string, stdio runtime.Stdio) (*Process, error) {
	return e.life.Start(ctx, ref, stdio)
}

// StartDetached starts a created (or exited) container under its own
// monitor process, which holds its output (into its log), records its exit
// and applies --rm and the restart policy after every berth process has
// gone. Errors and ctx as Start.
func (e *Engine) StartDetached(ctx context.Context, ref string) error {
	return e.life.StartDetached(ctx, ref)
}

// Cleanup records the exit of a container whose monitor reported one,
// releases its mounts and runtime state, and applies AutoRemove and the
// restart policy. It is what the monitor's exit command runs; calling it
// again, or for a running container, changes nothing.
func (e *Engine) Cleanup(ctx context.Context, ref string) error {
	return e.life.Cleanup(ctx, ref)
}

// Kill sends sig to a running container's main process. errdefs.ErrConflict
// if it is not running.
func (e *Engine) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	return e.life.Kill(ctx, ref, sig)
}

// Stop sends the container's stop signal (SIGTERM unless --stop-signal),
// waits up to timeout (nil: the container's --stop-timeout, else 10 s) for
// it to exit, then kills it with SIGKILL. Stopping a container that is not
// running is not an error. Returns once the exit is recorded.
func (e *Engine) Stop(ctx context.Context, ref string, timeout *time.Duration) error {
	return e.life.Stop(ctx, ref, timeout)
}

// StopWithSignal is Stop with sig (a name or number; "" for the
// container's stop signal) in place of the stop signal. A malformed sig
// gives errdefs.ErrInvalidArgument.
func (e *Engine) StopWithSignal(ctx context.Context, ref, sigName string, timeout *time.Duration) error {
	return e.life.StopWithSignal(ctx, ref, sigName, timeout)
}

// Wait blocks until the container stops and returns its exit code, as
// `docker wait`.
func (e *Engine) Wait(ctx context.Context, ref string) (int, error) {
	return e.life.Wait(ctx, ref)
}

// Restart stops the container (as Stop) and starts it detached.
func (e *Engine) Restart(ctx context.Context, ref string, timeout *time.Duration) error {
	return e.life.Restart(ctx, ref, timeout)
}

// Logs writes the container's logged output to stdout and stderr (each
// stream to its own), as `docker logs`. With Follow it keeps going until
// the container stops or ctx ends.
func (e *Engine) Logs(ctx context.Context, ref string, opts LogOptions, stdout, stderr io.Writer) error {
	return e.life.Logs(ctx, ref, opts, stdout, stderr)
}

// Pause freezes every process of the running container ref (the OCI
// runtime's pause: the cgroup freezer), as `docker pause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not running or
// already paused.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	return e.life.Pause(ctx, ref)
}

// Unpause thaws a paused container, as `docker unpause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not paused.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	return e.life.Unpause(ctx, ref)
}

// Rename gives container ref the name newName (with or without Docker's
// leading "/"), as `docker rename`; the old name is free at once.
// Errors: errdefs.ErrNotFound; errdefs.ErrInvalidArgument for a malformed
// name or the container's own name; errdefs.ErrConflict when another
// container has it.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	return e.life.Rename(ctx, ref, newName)
}

// PruneContainers removes every container that is not running (created
// or exited) for which keep (nil: none) returns false, as `docker
// container prune`. Containers that fail to go are skipped; the first
// such error is returned with the report of the others.
func (e *Engine) PruneContainers(ctx context.Context, keep func(Container) bool) (ContainerPruneReport, error) {
	return e.life.PruneContainers(ctx, keep)
}
