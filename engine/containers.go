package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berthproject/berth/monitor"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Buckets of the container records and the name index (name → ID).
const (
	containersBucket = "containers"
	namesBucket      = "container-names"
)

// Container statuses, Docker's words.
const (
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusExited   = "exited"
	StatusRemoving = "removing"
	// StatusPaused is what inspect and ps show for a running container
	// whose processes are frozen (State.Paused); records keep "running".
	StatusPaused = "paused"
)

// Container is the stored record of one container.
type Container struct {
	ID      string    `json:"id"`   // 64 hex digits
	Name    string    `json:"name"` // without Docker's leading "/"
	Created time.Time `json:"created"`
	// Image is the image as the user named it; ImageName its normalized
	// reference; ImageID the config digest it was created from.
	Image     string        `json:"image"`
	ImageName string        `json:"imageName"`
	ImageID   digest.Digest `json:"imageId"`
	// Path and Args are the process to run (entrypoint + cmd resolved).
	Path string   `json:"path"`
	Args []string `json:"args"`
	// Run holds the options the container was created with.
	Run        runtime.RunOptions `json:"run"`
	AutoRemove bool               `json:"autoRemove"`
	// Snapshot is the chain ID the rootfs snapshot starts from.
	Snapshot string `json:"snapshot"`
	// Net holds the network mode, published ports, DNS and extra hosts.
	Net NetworkSettings `json:"net"`
	// Restart is the restart policy the monitor applies.
	Restart RestartPolicy `json:"restart,omitempty"`
	// StopSignal (a name or number, "" for SIGTERM) and StopTimeout (in
	// seconds, nil for 10) are what Stop uses.
	StopSignal  string `json:"stopSignal,omitempty"`
	StopTimeout *int   `json:"stopTimeout,omitempty"`
	// LogMaxSize bounds the log file in bytes (0: unbounded).
	LogMaxSize int64             `json:"logMaxSize,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	State      State             `json:"state"`
}

// State is the container's lifecycle state, as Docker's State object.
type State struct {
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Error      string    `json:"error,omitempty"`
	// Watcher identifies the process that started the container and
	// records its exit: pid and start time (clock ticks since boot, from
	// /proc/PID/stat) so that a reused pid is not mistaken for it.
	Watcher ProcessID `json:"watcher,omitempty"`
	// RestartCount counts restarts by the restart policy.
	RestartCount int `json:"restartCount,omitempty"`
	// StoppedByUser is set by stop and kill: the restart policy then
	// leaves the container stopped.
	StoppedByUser bool `json:"stoppedByUser,omitempty"`
	// ExitHandled is set once the exit's --rm or restart policy ran.
	ExitHandled bool `json:"exitHandled,omitempty"`
	// Paused is set by Pause and cleared by Unpause; it means something
	// only while Status is "running" (see Container.DisplayStatus).
	Paused bool `json:"paused,omitempty"`
}

// ProcessID names one process across pid reuse.
type ProcessID struct {
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
}

// self identifies the calling process.
func self() ProcessID {
	pid := os.Getpid()
	st, _ := procStartTime(pid)
	return ProcessID{Pid: pid, StartTime: st}
}

// Alive reports whether the process still exists (and is not a zombie).
func (p ProcessID) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	st, err := procStartTime(p.Pid)
	return err == nil && st == p.StartTime
}

// procStartTime reads field 22 (starttime) of /proc/PID/stat; a zombie
// counts as gone.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it follow ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return 0, fmt.Errorf("process %d is gone", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ShortID is the 12-digit ID Docker prints.
func (c Container) ShortID() string { return c.ID[:12] }

// CreateOptions are the settings of `create` and `run`.
type CreateOptions struct {
	Name       string // "" for a generated one
	Image      string
	Run        runtime.RunOptions
	AutoRemove bool
	// Pull is Docker's --pull: "missing" (default), "always" or "never".
	Pull string
	// Progress receives pull progress and the "Unable to find image"
	// notice; nil for none.
	Progress    io.Writer
	Network     NetworkRequest
	Restart     RestartPolicy
	StopSignal  string
	StopTimeout *int
	LogMaxSize  int64
	Labels      map[string]string
}

// Create makes a container: its record (with a unique name), and a
// writable snapshot on top of the image. A missing image is pulled per
// opts.Pull. Errors: errdefs.ErrConflict for a name in use,
// errdefs.ErrInvalidArgument for a bad name or options, errdefs.ErrNotFound
// for a missing image with Pull "never". On error nothing is left behind.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (Container, error) {
	defer trace("create")()
	if opts.Name != "" && !validName.MatchString(opts.Name) {
		return Container{}, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", opts.Name, errdefs.ErrInvalidArgument)
	}
	rec, err := e.imageForCreate(ctx, opts)
	if err != nil {
		return Container{}, err
	}
	cfg, layers, err := e.imageContent(rec)
	if err != nil {
		return Container{}, err
	}
	args, err := runtime.Args(cfg.Config, opts.Run)
	if err != nil {
		return Container{}, err
	}
	exposed := map[string]struct{}{}
	for p := range cfg.Config.ExposedPorts {
		exposed[p] = struct{}{}
	}
	netSettings, err := e.resolveNetwork(ctx, opts.Network, exposed)
	if err != nil {
		return Container{}, err
	}
	top, err := e.unpack(ctx, cfg, layers) // no-op unless a layer went missing
	if err != nil {
		return Container{}, err
	}
	c := Container{
		ID: newID(), Name: strings.TrimPrefix(opts.Name, "/"), Created: time.Now().UTC(),
		Image: opts.Image, ImageName: rec.Name, ImageID: rec.Config,
		Path: args[0], Args: args[1:], Run: opts.Run, AutoRemove: opts.AutoRemove,
		Snapshot: top, State: State{Status: StatusCreated},
		Restart: opts.Restart, StopSignal: opts.StopSignal, StopTimeout: opts.StopTimeout,
		LogMaxSize: opts.LogMaxSize, Labels: opts.Labels, Net: netSettings,
	}
	if c.StopSignal == "" {
		c.StopSignal = cfg.Config.StopSignal
	}
	if c.AutoRemove && c.Restart.Name != "" && c.Restart.Name != "no" {
		return Container{}, fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument)
	}
	if c.Run.Hostname == "" {
		c.Run.Hostname = c.ShortID()
	}
	if err := e.db.Update(ctx, func(tx *state.Tx) error { return reserve(tx, &c) }); err != nil {
		return Container{}, err
	}
	crashPoint("create-recorded")
	// The record exists first, so whatever follows can be found and
	// cleaned by ID; a crash here leaves a record whose snapshot Start
	// makes on demand and rm ignores if missing.
	if _, err := e.snaps.Prepare(ctx, c.ID, c.Snapshot); err != nil {
		e.db.Update(context.WithoutCancel(ctx), func(tx *state.Tx) error { return deleteRecord(tx, c) })
		return Container{}, err
	}
	crashPoint("create-snapshot")
	return c, nil
}

func (e *Engine) imageForCreate(ctx context.Context, opts CreateOptions) (image.Record, error) {
	if opts.Pull != "always" {
		rec, err := e.resolveImage(ctx, opts.Image)
		if err == nil || !errdefs.IsNotFound(err) {
			return rec, err
		}
		if named, perr := image.ParseReference(opts.Image); perr == nil && isBuiltin(named) {
			return e.builtin(ctx, named)
		}
		if opts.Pull == "never" {
			return rec, err
		}
		if _, perr := image.ParseReference(opts.Image); perr != nil {
			return rec, perr
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "Unable to find image '%s' locally\n", opts.Image)
		}
	}
	return e.Pull(ctx, opts.Image, PullOptions{Progress: opts.Progress})
}

// reserve stores c under a unique name, generating one if c.Name is empty.
func reserve(tx *state.Tx, c *Container) error {
	if c.Name == "" {
		for i := 0; ; i++ {
			c.Name = generateName(i)
			if !tx.Has(namesBucket, c.Name) {
				break
			}
		}
	}
	var owner string
	if tx.Get(namesBucket, c.Name, &owner) == nil {
		return fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", c.Name, owner, errdefs.ErrConflict)
	}
	if err := tx.Put(namesBucket, c.Name, c.ID); err != nil {
		return err
	}
	return tx.Put(containersBucket, c.ID, c)
}

func deleteRecord(tx *state.Tx, c Container) error {
	if err := tx.Delete(namesBucket, c.Name); err != nil {
		return err
	}
	return tx.Delete(containersBucket, c.ID)
}

// lookupContainer resolves a full ID, a name, or a unique ID prefix, in
// Docker's order. Unknown: errdefs.ErrNotFound ("No such container: x").
func lookupContainer(tx *state.Tx, ref string) (Container, error) {
	var c Container
	if tx.Get(containersBucket, ref, &c) == nil {
		return c, nil
	}
	var id string
	if tx.Get(namesBucket, strings.TrimPrefix(ref, "/"), &id) == nil && tx.Get(containersBucket, id, &c) == nil {
		return c, nil
	}
	if ref != "" && isHex(ref) {
		var matches []string
		tx.ForEach(containersBucket, func(k string, _ []byte) error {
			if strings.HasPrefix(k, ref) {
				matches = append(matches, k)
			}
			return nil
		})
		if len(matches) > 1 {
			return c, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
		}
		if len(matches) == 1 {
			return c, tx.Get(containersBucket, matches[0], &c)
		}
	}
	return c, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

func containersUsing(tx *state.Tx, imageID digest.Digest) ([]string, error) {
	var ids []string
	err := tx.ForEach(containersBucket, func(k string, data []byte) error {
		var c Container
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		if c.ImageID == imageID {
			ids = append(ids, c.ID)
		}
		return nil
	})
	return ids, err
}

// Container returns the container ref names (ID, name or unique ID prefix),
// its state reconciled with the OCI runtime.
func (e *Engine) Container(ctx context.Context, ref string) (Container, error) {
	var c Container
	err := e.db.View(ctx, func(tx *state.Tx) error {
		var err error
		c, err = lookupContainer(tx, ref)
		return err
	})
	if err != nil {
		return c, err
	}
	return e.reconcile(ctx, c), nil
}

// Containers lists containers, newest first: all of them, or only running
// ones when all is false.
func (e *Engine) Containers(ctx context.Context, all bool) ([]Container, error) {
	var out []Container
	err := e.db.View(ctx, func(tx *state.Tx) error {
		return tx.ForEach(containersBucket, func(_ string, data []byte) error {
			var c Container
			if err := json.Unmarshal(data, &c); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, c := range out {
		c = e.reconcile(ctx, c)
		if all || c.State.Status == StatusRunning {
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
func (e *Engine) reconcile(ctx context.Context, c Container) Container {
	if c.State.Status != StatusRunning {
		return c
	}
	code, at, exitErr := monitor.ExitStatus(e.exitDir(), c.ID)
	if exitErr != nil {
		if c.State.Watcher.Alive() {
			return c
		}
		// Still running under the runtime: truthful. "created" means the
		// starter died between create and start: nobody will start it.
		if st, err := e.runtime.State(ctx, c.ID); err == nil && st.Status != "stopped" && st.Status != "created" {
			return c
		}
		code, at = 255, time.Now().UTC()
	}
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.State.Status != StatusRunning || !cur.State.StartedAt.Equal(c.State.StartedAt) {
			c = cur // someone recorded the exit meanwhile
			return nil
		}
		cur.State.Status, cur.State.ExitCode, cur.State.FinishedAt = StatusExited, code, at
		cur.State.Pid, cur.State.Watcher = 0, ProcessID{}
		if exitErr != nil {
			cur.State.Error = "exit status lost: the process watching the container ended first"
		}
		c = cur
		return tx.Put(containersBucket, c.ID, c)
	})
	if err == nil && c.State.Status == StatusExited {
		e.runtime.Delete(ctx, c.ID, true)
		mount.Unmount(filepath.Join(e.bundleDir(c.ID), "rootfs"))
		e.teardownNetwork(ctx, c)
	}
	return c
}

// Remove deletes a container: its runtime state, network, rootfs mount,
// bundle, snapshot, files and record, so that a crash part-way leaves a
// record (status "removing") that the next Remove finishes. A running
// container is refused with errdefs.ErrConflict unless force, which kills
// it first.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	return e.remove(ctx, ref, force, false)
}

// remove is Remove; stopped says the caller knows the container's
// process has exited, so that deleting the runtime state can overlap
// with the rest.
func (e *Engine) remove(ctx context.Context, ref string, force, stopped bool) error {
	defer trace("remove")()
	var c Container
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var err error
		if c, err = lookupContainer(tx, ref); err != nil {
			return err
		}
		if c.State.Status == StatusRunning && !stopped {
			if st, err := e.runtime.State(ctx, c.ID); err == nil && st.Status != "stopped" {
				if !force {
					return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", ref, errdefs.ErrConflict)
				}
			} else {
				stopped = true
			}
		} else if c.State.Status != StatusRunning {
			stopped = true
		}
		c.State.Status = StatusRemoving
		return tx.Put(containersBucket, c.ID, c)
	})
	if err != nil {
		return err
	}
	crashPoint("remove-marked")
	deleted := make(chan error, 1)
	if stopped {
		go func() { deleted <- e.runtime.Delete(ctx, c.ID, true) }()
	} else if err := e.runtime.Delete(ctx, c.ID, true); err != nil {
		return err // kills a running container before its files go
	} else {
		deleted <- nil
	}
	crashPoint("remove-runtime")
	errs := []error{e.teardownNetwork(ctx, c)}
	bundle := e.bundleDir(c.ID)
	if err := mount.Unmount(filepath.Join(bundle, "rootfs")); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, os.RemoveAll(bundle))
		if err := e.snaps.Remove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
		crashPoint("remove-snapshot")
		errs = append(errs, e.removeFiles(c.ID))
	}
	errs = append(errs, <-deleted)
	if err := errors.Join(errs...); err != nil {
		return err // the record stays "removing"; the next Remove retries
	}
	return e.db.Update(ctx, func(tx *state.Tx) error { return deleteRecord(tx, c) })
}
