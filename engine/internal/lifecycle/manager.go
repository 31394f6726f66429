// Package lifecycle is the engine's container state machine: start (in
// the foreground under the caller, or detached under a monitor), stop,
// kill, wait, restart policies, logs, pause, rename, remove and prune,
// and the reconciliation that makes a "running" record truthful after a
// crash. It works on package record's container records and does not
// import package engine: the engine hands it a Manager with its stores
// and forwards its methods to it. Crash ordering (ARCHITECTURE.md) is
// kept here: each step is recorded before it is made.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/berthproject/berth/engine/internal/netops"
	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// Manager is what the lifecycle needs of the engine. Every field must be
// set.
type Manager struct {
	// Root and RunRoot are the engine's directories: logs and /etc files
	// under ROOT/containers/ID, bundles under RUNROOT/containers/ID, exit
	// files under RUNROOT/exits.
	Root, RunRoot string
	// RuntimeName (the OCI runtime binary as configured), Snapshotter,
	// Monitor (monitor.New's argument) and CleanupBinary (berth, run by the monitor at
	// exit; "" for none) are the engine's options.
	RuntimeName, Snapshotter, Monitor, CleanupBinary string
	// DB holds the container records; Content the image configs; Snaps
	// the containers' snapshots; Runtime runs them.
	DB      *state.DB
	Content *content.Store
	Snaps   snapshot.Snapshotter
	Runtime runtime.Runtime
	// Nets sets up and tears down the containers' networks.
	Nets *netops.Networking
	// RemoveVolumes, if set, removes the anonymous volumes of a removed
	// container (`run --rm`, `rm -v`); see RemoveWithVolumes.
	RemoveVolumes func(ctx context.Context, c record.Container)
	// Emit, if set, appends Docker's container event action for c (the
	// engine's event log), with extra attributes (exitCode, signal …).
	Emit func(c record.Container, action string, extra map[string]string)

	otherMu sync.Mutex
	other   map[string]runtime.Runtime // RuntimeOf's runtimes by binary path
}

// emit appends a container event if the Manager has an Emit.
func (m *Manager) emit(c record.Container, action string, extra map[string]string) {
	if m.Emit != nil {
		m.Emit(c, action, extra)
	}
}

// emitExit appends an exit's events: oom when the kernel killed the
// container for memory (newly, for this exit), then die with exitCode.
func (m *Manager) emitExit(c record.Container, oom bool) {
	if oom {
		m.emit(c, "oom", nil)
	}
	m.emit(c, "die", map[string]string{"exitCode": strconv.Itoa(c.State.ExitCode)})
}

// BundleDir is the OCI bundle directory of container id.
func (m *Manager) BundleDir(id string) string {
	return filepath.Join(m.RunRoot, "containers", id)
}

// Container returns the container ref names (ID, name or unique ID prefix),
// its state reconciled with the OCI runtime.
func (m *Manager) Container(ctx context.Context, ref string) (record.Container, error) {
	var c record.Container
	err := m.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		c, err = record.Lookup(tx, ref)
		return err
	})
	if err != nil {
		return c, err
	}
	return m.reconcile(ctx, c), nil
}

// Containers lists containers, newest first: all of them, or only running
// ones when all is false.
func (m *Manager) Containers(ctx context.Context, all bool) ([]record.Container, error) {
	var out []record.Container
	err := m.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		out, err = record.List(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, c := range out {
		c = m.reconcile(ctx, c)
		if all || c.State.Status == record.StatusRunning {
			kept = append(kept, c)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Created.After(kept[j].Created) })
	return kept, nil
}

// reconcile makes a "running" record truthful. A container whose monitor
// wrote an exit status has exited with it. One whose watcher (monitor, or
// the foreground berth) died while the runtime no longer runs it has
// exited with an unknown status (255). Either way its rootfs is unmounted
// and its runtime state deleted. While the watcher lives and no exit
// status exists, the record is the watcher's to keep.
func (m *Manager) reconcile(ctx context.Context, c record.Container) record.Container {
	if c.State.Status != record.StatusRunning {
		return c
	}
	code, at, exitErr := monitor.ExitStatus(m.exitDir(), c.ID)
	if exitErr == nil && at.Before(c.State.StartedAt) {
		// The exit of an earlier run (a restart marks the record running
		// before its bundle preparation removes the old exit file): not
		// this run's.
		exitErr = fmt.Errorf("stale exit status of %s: %w", c.ID, errdefs.ErrNotFound)
	}
	if exitErr != nil {
		if c.State.Watcher.Alive() {
			return c
		}
		// Still running under the runtime: truthful. "created" means the
		// starter died between create and start: nobody will start it.
		rt := m.RuntimeOf(c)
		if st, err := rt.State(ctx, c.ID); (err == nil && st.Status != "stopped" && st.Status != "created") || runtime.IsUnavailable(rt) {
			return c // running, or nobody can tell
		}
		code, at = 255, time.Now().UTC()
	}
	// The runtime keeps the cgroup until the Delete below.
	oom := oomKilled(c.ID)
	recorded := false
	err := m.DB.Update(ctx, func(tx *state.Tx) error {
		var cur record.Container
		if err := tx.Get(record.Bucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.State.Status != record.StatusRunning || !cur.State.StartedAt.Equal(c.State.StartedAt) {
			c = cur // someone recorded the exit meanwhile
			return nil
		}
		cur.State.Status, cur.State.ExitCode, cur.State.FinishedAt = record.StatusExited, code, at
		cur.State.Pid, cur.State.Watcher = 0, record.ProcessID{}
		cur.State.OOMKilled = cur.State.OOMKilled || oom
		if exitErr != nil {
			cur.State.Error = "exit status lost: the process watching the container ended first"
		}
		c = cur
		recorded = true
		return tx.Put(record.Bucket, c.ID, c)
	})
	if err == nil && recorded {
		m.emitExit(c, oom)
	}
	if err == nil && c.State.Status == record.StatusExited {
		m.releaseExited(ctx, c)
	}
	return c
}

// releaseExited deletes the runtime state, rootfs mount and network of c,
// whose exit reconcile saw, under the container's lock and only while the
// record still shows that exit: the monitor's cleanup and any command
// that reads the record race to do it, and a start that came in between
// (which holds the lock while it sets the container up again) must not
// lose its new network or mount.
func (m *Manager) releaseExited(ctx context.Context, c record.Container) {
	stillExited := func() bool {
		var cur record.Container
		return m.DB.View(ctx, func(tx *state.Tx) error { return tx.Get(record.Bucket, c.ID, &cur) }) == nil &&
			cur.State.Status == record.StatusExited && cur.State.StartedAt.Equal(c.State.StartedAt)
	}
	if !stillExited() { // removed or started again: no lock file to make
		return
	}
	unlock, err := m.lockContainer(c.ID)
	if err != nil {
		return
	}
	defer unlock()
	if !stillExited() {
		return
	}
	m.RuntimeOf(c).Delete(ctx, c.ID, true)
	mount.Unmount(filepath.Join(m.BundleDir(c.ID), "rootfs"))
	m.Nets.Teardown(ctx, c)
}

// Remove deletes a container: its runtime state, network, rootfs mount,
// bundle, snapshot, files and record, so that a crash part-way leaves a
// record (status "removing") that the next Remove finishes. A running
// container is refused with errdefs.ErrConflict unless force, which kills
// it first.
func (m *Manager) Remove(ctx context.Context, ref string, force bool) error {
	return m.remove(ctx, ref, force, false)
}

// remove is Remove; stopped says the caller knows the container's
// process has exited, so that deleting the runtime state can overlap
// with the rest.
func (m *Manager) remove(ctx context.Context, ref string, force, stopped bool) error {
	defer probe.Trace("remove")()
	var c record.Container
	if err := m.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		c, err = record.Lookup(tx, ref)
		return err
	}); err != nil {
		return err
	}
	unlock, err := m.lockContainer(c.ID)
	if err != nil {
		return err
	}
	defer unlock()
	// After an exit the caller watched (--rm), the record is not marked
	// "removing" first: a crash part-way leaves a record whose dead
	// watcher makes the next read reconcile it as exited, and rm finishes.
	wasStopped := stopped
	if !stopped {
		err = m.markRemoving(ctx, &c, ref, force, &stopped)
	}
	if err != nil {
		return err
	}
	if !wasStopped && !stopped {
		// rm -f of a running container: Docker's kill and die (SIGKILL).
		m.emit(c, "kill", map[string]string{"signal": "9"})
		m.emit(c, "die", map[string]string{"exitCode": "137"})
	}
	probe.Crash("remove-marked")
	return m.removeContainerFiles(ctx, c, stopped)
}

// markRemoving records that c is being removed, refusing a running
// container unless force; stopped is set when its process is gone.
func (m *Manager) markRemoving(ctx context.Context, c *record.Container, ref string, force bool, stopped *bool) error {
	return m.DB.Update(ctx, func(tx *state.Tx) error {
		cur, err := record.Lookup(tx, c.ID)
		if err != nil {
			return err
		}
		*c = cur
		if rt := m.RuntimeOf(*c); runtime.IsUnavailable(rt) {
			return rt.(runtime.Unavailable).Err // nothing of it could be released
		}
		if c.State.Status == record.StatusRunning {
			if st, err := m.RuntimeOf(*c).State(ctx, c.ID); err == nil && st.Status != "stopped" {
				if !force {
					return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", ref, errdefs.ErrConflict)
				}
			} else {
				*stopped = true
			}
		} else {
			*stopped = true
		}
		c.State.Status = record.StatusRemoving
		return tx.Put(record.Bucket, c.ID, c)
	})
}

// removeContainerFiles deletes the runtime state, network, rootfs mount,
// bundle, snapshot, files and finally the record of c (stopped: its
// process is known to be gone, so the runtime state is deleted alongside).
func (m *Manager) removeContainerFiles(ctx context.Context, c record.Container, stopped bool) error {
	deleted := make(chan error, 1)
	if stopped {
		go func() { deleted <- m.RuntimeOf(c).Delete(ctx, c.ID, true) }()
	} else if err := m.RuntimeOf(c).Delete(ctx, c.ID, true); err != nil {
		return err // kills a running container before its files go
	} else {
		deleted <- nil
	}
	probe.Crash("remove-runtime")
	// The network, the container's files (log, /etc files, exit status)
	// and the rootfs go side by side: unmounting waits for an RCU grace
	// period, and none of them needs another. The record goes last.
	netDone, filesDone := make(chan error, 1), make(chan error, 1)
	go func() { netDone <- m.Nets.Teardown(ctx, c) }()
	go func() { filesDone <- m.removeFiles(c.ID) }()
	var errs []error
	bundle := m.BundleDir(c.ID)
	endUnmount := probe.Trace("remove: unmount")
	err := mount.Unmount(filepath.Join(bundle, "rootfs"))
	endUnmount()
	if err != nil {
		errs = append(errs, err)
	} else {
		endSnap := probe.Trace("remove: bundle, snapshot")
		errs = append(errs, os.RemoveAll(bundle))
		if err := m.Snaps.Remove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
		endSnap()
		probe.Crash("remove-snapshot")
	}
	endWait := probe.Trace("remove: wait network, files, runtime")
	errs = append(errs, <-netDone, <-filesDone, <-deleted)
	endWait()
	if err := errors.Join(errs...); err != nil {
		return err // the record stays "removing"; the next Remove retries
	}
	endRecord := probe.Trace("remove: record")
	defer endRecord()
	if err := m.DB.Update(ctx, func(tx *state.Tx) error { return record.Delete(tx, c) }); err != nil {
		return err
	}
	m.emit(c, "destroy", nil)
	m.removeLock(c.ID)
	if c.AutoRemove {
		m.removeVolumes(ctx, c)
	}
	return nil
}

// RuntimeOf is the OCI runtime that created c: Runtime when c names the
// engine's own (or names none and the engine's is runc, the runtime of
// records older than the field), else that runtime opened with its own
// state directory under RunRoot/runtime, so that a container outlives a
// change of the engine's runtime. If that runtime can no longer be found,
// a runtime.Unavailable whose calls fail with ErrFailedPrecondition: the
// engine's runtime knows nothing of c, and must not be taken to say c
// has stopped.
func (m *Manager) RuntimeOf(c record.Container) runtime.Runtime {
	name := c.Runtime
	if name == "" {
		name = "runc"
	}
	rt, err := m.OpenRuntime(name)
	if err != nil {
		return runtime.Unavailable{Err: fmt.Errorf("container %s was created with the OCI runtime %s, which is not installed: install it again to manage the container: %w",
			c.ShortID(), name, errdefs.ErrFailedPrecondition)}
	}
	return rt
}

// OpenRuntime is the OCI runtime name (a name in $PATH or a path):
// Runtime when name names the engine's own, else that runtime opened
// once per process with its own state directory under RunRoot/runtime.
// errdefs.ErrNotFound when it cannot be found.
func (m *Manager) OpenRuntime(name string) (runtime.Runtime, error) {
	if oci, ok := m.Runtime.(*ociruntime.Runtime); !ok || name == oci.Binary || name == m.RuntimeName {
		return m.Runtime, nil
	}
	m.otherMu.Lock()
	defer m.otherMu.Unlock()
	if rt, ok := m.other[name]; ok {
		return rt, nil
	}
	rt, err := ociruntime.Open(name, m.RunRoot)
	if err != nil {
		return nil, err
	}
	if m.other == nil {
		m.other = map[string]runtime.Runtime{}
	}
	m.other[name] = rt
	return rt, nil
}
