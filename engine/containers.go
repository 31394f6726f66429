package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
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
	State    State  `json:"state"`
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
	Progress io.Writer
}

// Create makes a container: its record (with a unique name), and a
// writable snapshot on top of the image. A missing image is pulled per
// opts.Pull. Errors: errdefs.ErrConflict for a name in use,
// errdefs.ErrInvalidArgument for a bad name or options, errdefs.ErrNotFound
// for a missing image with Pull "never". On error nothing is left behind.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (Container, error) {
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
	top, err := e.unpack(ctx, cfg, layers) // no-op unless a layer went missing
	if err != nil {
		return Container{}, err
	}
	c := Container{
		ID: newID(), Name: strings.TrimPrefix(opts.Name, "/"), Created: time.Now().UTC(),
		Image: opts.Image, ImageName: rec.Name, ImageID: rec.Config,
		Path: args[0], Args: args[1:], Run: opts.Run, AutoRemove: opts.AutoRemove,
		Snapshot: top, State: State{Status: StatusCreated},
	}
	if c.Run.Hostname == "" {
		c.Run.Hostname = c.ShortID()
	}
	if err := e.db.Update(ctx, func(tx *state.Tx) error { return reserve(tx, &c) }); err != nil {
		return Container{}, err
	}
	// The record exists first, so whatever follows can be found and
	// cleaned by ID; a crash here leaves a record whose snapshot Start
	// makes on demand and rm ignores if missing.
	if _, err := e.snaps.Prepare(ctx, c.ID, c.Snapshot); err != nil {
		e.db.Update(context.WithoutCancel(ctx), func(tx *state.Tx) error { return deleteRecord(tx, c) })
		return Container{}, err
	}
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

// reconcile makes a "running" record truthful when the process that
// watched the container died (kill -9 of a foreground berth): if the
// runtime no longer runs it, the container is recorded as exited with an
// unknown status (255) and its rootfs is unmounted. While the watcher
// lives, the record is its to keep.
func (e *Engine) reconcile(ctx context.Context, c Container) Container {
	if c.State.Status != StatusRunning || c.State.Watcher.Alive() {
		return c
	}
	if st, err := e.runtime.State(ctx, c.ID); err == nil && st.Status != "stopped" {
		return c
	}
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		if cur.State.Status != StatusRunning || cur.State.StartedAt != c.State.StartedAt {
			c = cur // someone recorded the exit meanwhile
			return nil
		}
		c.State = State{Status: StatusExited, ExitCode: 255, StartedAt: cur.State.StartedAt, FinishedAt: time.Now().UTC(),
			Error: "exit status lost: the process watching the container ended first"}
		return tx.Put(containersBucket, c.ID, c)
	})
	if err == nil && c.State.Status == StatusExited {
		e.runtime.Delete(ctx, c.ID, true)
		mount.Unmount(filepath.Join(e.bundleDir(c.ID), "rootfs"))
	}
	return c
}

// Process is a started container's main process, watched by this process.
type Process struct {
	e         *Engine
	c         Container
	Pid       int // in the caller's pid namespace
	copyDone  chan struct{}
	startedAt time.Time
}

// Start starts a created (or exited) container with the given stdio and
// returns its process; the caller must call Wait, which records the exit.
// Start makes the calling process a child subreaper (so that the container
// process, which the OCI runtime leaves behind, is reaped by it).
//
// Errors: errdefs.ErrConflict if the container is running;
// runtime.ErrCommandNotFound / ErrCommandNotExecutable when its executable
// is missing or cannot run (Docker's 127 and 126).
func (e *Engine) Start(ctx context.Context, ref string, stdio runtime.Stdio) (p *Process, err error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("set child subreaper: %w", err)
	}
	var c Container
	err = e.db.Update(ctx, func(tx *state.Tx) error {
		if c, err = lookupContainer(tx, ref); err != nil {
			return err
		}
		switch c.State.Status {
		case StatusRunning:
			return fmt.Errorf("container %s is already running: %w", c.ShortID(), errdefs.ErrConflict)
		case StatusRemoving:
			return fmt.Errorf("container %s is marked for removal and cannot be started: %w", c.ShortID(), errdefs.ErrConflict)
		}
		c.State = State{Status: StatusRunning, StartedAt: time.Now().UTC(), Watcher: self()}
		return tx.Put(containersBucket, c.ID, c)
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.finish(context.WithoutCancel(ctx), c, -1, err)
		}
	}()
	pid, copyDone, err := e.start(ctx, c, stdio)
	if err != nil {
		return nil, err
	}
	return &Process{e: e, c: c, Pid: pid, copyDone: copyDone, startedAt: c.State.StartedAt}, nil
}

func (e *Engine) start(ctx context.Context, c Container, stdio runtime.Stdio) (int, chan struct{}, error) {
	bundle := e.bundleDir(c.ID)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return 0, nil, err
	}
	e.runtime.Delete(ctx, c.ID, true) // state left by an earlier run
	os.Remove(filepath.Join(bundle, "runtime.log"))
	mounts, err := e.snaps.Mounts(ctx, c.ID)
	if errdefs.IsNotFound(err) {
		mounts, err = e.snaps.Prepare(ctx, c.ID, c.Snapshot)
	}
	if err != nil {
		return 0, nil, err
	}
	mount.Unmount(rootfs)
	if err := mount.All(mounts, rootfs); err != nil {
		return 0, nil, err
	}
	imgCfg, err := e.containerImageConfig(c)
	if err != nil {
		return 0, nil, err
	}
	opts := c.Run
	opts.CgroupsPath = "/berth/" + c.ID
	spec, err := runtime.Spec(rootfs, imgCfg, opts)
	if err != nil {
		return 0, nil, err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return 0, nil, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, nil, err
	}
	// The runtime writes its errors to the stderr it is given, which the
	// container inherits: hand it a pipe and forward the pipe to the real
	// stderr only once the container runs.
	copyDone := make(chan struct{})
	var pr *os.File
	if stdio.Stderr != nil {
		var pw *os.File
		if pr, pw, err = os.Pipe(); err != nil {
			return 0, nil, err
		}
		realStderr := stdio.Stderr
		stdio.Stderr = pw
		defer pw.Close()
		defer func() {
			go func() {
				if err == nil {
					io.Copy(realStderr, pr)
				} else {
					io.Copy(io.Discard, pr)
				}
				pr.Close()
				close(copyDone)
			}()
		}()
	} else {
		close(copyDone)
	}
	pid, err := e.runtime.Start(ctx, c.ID, bundle, stdio)
	if err != nil {
		return 0, nil, err
	}
	err = e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		cur.State.Pid = pid
		return tx.Put(containersBucket, c.ID, cur)
	})
	return pid, copyDone, err
}

// containerImageConfig returns the image config c was created from.
func (e *Engine) containerImageConfig(c Container) (imgCfg ocispec.ImageConfig, err error) {
	data, err := e.content.ReadAll(c.ImageID)
	if err != nil {
		return imgCfg, fmt.Errorf("image of container %s: %w", c.ShortID(), err)
	}
	var cfg struct {
		Config ocispec.ImageConfig `json:"config"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return imgCfg, err
	}
	return cfg.Config, nil
}

// Signal sends sig to the container's main process.
func (p *Process) Signal(sig syscall.Signal) error {
	return unix.Kill(p.Pid, sig)
}

// Wait waits for the process to exit, records its exit code (128+N when
// killed by signal N, as Docker), releases the rootfs mount and the
// runtime state, and removes the container if it was created with
// AutoRemove. It returns the exit code.
func (p *Process) Wait(ctx context.Context) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(p.Pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for container %s: %w", p.c.ShortID(), err)
		}
		break
	}
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	<-p.copyDone
	return code, p.e.finish(context.WithoutCancel(ctx), p.c, code, nil)
}

// finish records an exit (code -1 with startErr: the start failed),
// releases runtime state and mounts, and applies AutoRemove.
func (e *Engine) finish(ctx context.Context, c Container, code int, startErr error) error {
	e.runtime.Delete(ctx, c.ID, true)
	unmountErr := mount.Unmount(filepath.Join(e.bundleDir(c.ID), "rootfs"))
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, c.ID, &cur); err != nil {
			return err
		}
		cur.State.Status = StatusExited
		cur.State.Pid = 0
		cur.State.FinishedAt = time.Now().UTC()
		cur.State.ExitCode = code
		if startErr != nil {
			cur.State.Status = StatusCreated
			cur.State.ExitCode = startExitCode(startErr)
			cur.State.Error = startErr.Error()
		}
		return tx.Put(containersBucket, c.ID, cur)
	})
	if c.AutoRemove {
		return errors.Join(err, e.Remove(ctx, c.ID, true))
	}
	return errors.Join(err, unmountErr)
}

// startExitCode is the exit code Docker reports for a failed start.
func startExitCode(err error) int {
	switch {
	case errors.Is(err, runtime.ErrCommandNotFound):
		return 127
	case errors.Is(err, runtime.ErrCommandNotExecutable):
		return 126
	}
	return 128
}

// Remove deletes a container: its runtime state, rootfs mount, bundle,
// snapshot and record, in that order, so that a crash part-way leaves a
// record (status "removing") that the next Remove finishes. A running
// container is refused with errdefs.ErrConflict unless force, which kills
// it first.
func (e *Engine) Remove(ctx context.Context, ref string, force bool) error {
	var c Container
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		var err error
		if c, err = lookupContainer(tx, ref); err != nil {
			return err
		}
		if c.State.Status == StatusRunning && !force {
			if st, err := e.runtime.State(ctx, c.ID); err == nil && st.Status != "stopped" {
				return fmt.Errorf("cannot remove container %q: container is running: stop the container before removing or force remove: %w", ref, errdefs.ErrConflict)
			}
		}
		c.State.Status = StatusRemoving
		return tx.Put(containersBucket, c.ID, c)
	})
	if err != nil {
		return err
	}
	if err := e.runtime.Delete(ctx, c.ID, true); err != nil {
		return err
	}
	bundle := e.bundleDir(c.ID)
	if err := mount.Unmount(filepath.Join(bundle, "rootfs")); err != nil {
		return err
	}
	if err := os.RemoveAll(bundle); err != nil {
		return err
	}
	if err := e.snaps.Remove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return e.db.Update(ctx, func(tx *state.Tx) error { return deleteRecord(tx, c) })
}
