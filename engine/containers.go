package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/imageops"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// The container record and its parts are package record's, re-exported
// so that callers of the engine need no other import.
type (
	// Container is the stored record of one container.
	Container = record.Container
	// State is the container's lifecycle state, as Docker's State object.
	State = record.State
	// ProcessID names one process across pid reuse.
	ProcessID = record.ProcessID
	// RestartPolicy is Docker's --restart: Name is "no" (or ""), "always",
	// "unless-stopped" or "on-failure" (with MaximumRetryCount, 0 = no
	// limit).
	RestartPolicy = record.RestartPolicy
	// NetworkSettings are a container's network requests, as `run` takes
	// them.
	NetworkSettings = record.NetworkSettings
	// Attachment is one network a container joined with `network connect`.
	Attachment = record.Attachment
	// NetworkRequest is what CreateOptions carries for the network: the
	// settings plus the raw -p/-P/--expose flags.
	NetworkRequest = record.NetworkRequest
)

// Container statuses, Docker's words.
const (
	StatusCreated  = record.StatusCreated
	StatusRunning  = record.StatusRunning
	StatusExited   = record.StatusExited
	StatusRemoving = record.StatusRemoving
	// StatusPaused is what inspect and ps show for a running container
	// whose processes are frozen (State.Paused); records keep "running".
	StatusPaused = record.StatusPaused
)

// CreateOptions are the settings of `create` and `run`. Named and
// anonymous volumes are entries of Run.Mounts made by VolumeMount.
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
	// LogDriver ("" for json-file) and LogOpts are Docker's --log-driver
	// and --log-opt (HostConfig.LogConfig), checked by ParseLogConfig;
	// inspect shows the options as given.
	LogDriver string
	LogOpts   map[string]string
	Labels    map[string]string
	// MakeBindSources are the host paths of the bind mounts among
	// Run.Mounts that Docker's -v (HostConfig.Binds) asked for: Create
	// makes a missing one a directory, as Docker does. Every other bind
	// source must exist (runtime.ValidateBindSources).
	MakeBindSources []string
	// Runtime is the OCI runtime for this container (Docker's
	// HostConfig.Runtime: a name in $PATH or a path); "" for the
	// engine's. One that cannot be found is errdefs.ErrInvalidArgument.
	Runtime string
}

// Create makes a container: its record (with a unique name), and a
// writable snapshot on top of the image. Volume mounts (VolumeMount) and
// the image's VOLUME paths not otherwise mounted become bind mounts of
// volumes, created when missing (anonymous ones for VOLUME) and, when
// empty, filled with the image's content at their path, as Docker does;
// the record keeps the binds, so inspect shows them as volumes. A missing image is pulled per
// opts.Pull. Resource limits, bind sources and devices are checked first, as
// Docker's create does (runtime.ValidateResources,
// runtime.ValidateBindSources, runtime.ValidateDevices). Errors: errdefs.ErrConflict for a name in use,
// errdefs.ErrInvalidArgument for a bad name or options, errdefs.ErrNotFound
// for a missing image with Pull "never". On error nothing is left behind.
func (e *Engine) Create(ctx context.Context, opts CreateOptions) (Container, error) {
	rtPath, err := e.runtimeFor(opts.Runtime)
	if err != nil {
		return Container{}, err
	}
	defer trace("create")()
	if opts.Name != "" && !record.ValidName.MatchString(opts.Name) {
		return Container{}, fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", opts.Name, errdefs.ErrInvalidArgument)
	}
	if err := runtime.ValidateStopSignal(opts.StopSignal); err != nil {
		return Container{}, err
	}
	if err := runtime.ValidateResources(opts.Run); err != nil {
		return Container{}, err
	}
	if err := runtime.ValidateBindSources(opts.Run.Mounts, opts.MakeBindSources); err != nil {
		return Container{}, err
	}
	if err := runtime.ValidateDevices(opts.Run.Devices); err != nil {
		return Container{}, err
	}
	logLimits, err := ParseLogConfig(opts.LogDriver, opts.LogOpts)
	if err != nil {
		return Container{}, err
	}
	if logLimits.MaxFiles > 1 { // refused at create too, not only when started
		if mon, err := monitor.New(e.opts.Monitor); err == nil {
			if err := mon.CheckLogFiles(logLimits.MaxFiles); err != nil {
				return Container{}, err
			}
		}
	}
	rec, err := e.imageForCreate(ctx, opts)
	if err != nil {
		return Container{}, err
	}
	cfg, layers, err := e.images.Manifest(rec)
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
	netSettings, err := e.nets.Resolve(ctx, opts.Network, exposed)
	if err != nil {
		return Container{}, err
	}
	top, err := e.images.Layers.Unpack(ctx, cfg, layers) // no-op unless a layer went missing
	if err != nil {
		return Container{}, err
	}
	c := Container{
		ID: newID(), Name: strings.TrimPrefix(opts.Name, "/"), Created: time.Now().UTC(),
		Image: opts.Image, ImageName: rec.Name, ImageID: rec.Config,
		Path: args[0], Args: args[1:], Run: opts.Run, AutoRemove: opts.AutoRemove,
		Snapshot: top, State: State{Status: StatusCreated},
		Restart: opts.Restart, StopSignal: opts.StopSignal, StopTimeout: opts.StopTimeout,
		LogMaxSize: logLimits.MaxSize, LogMaxFiles: logLimits.MaxFiles, LogOpts: opts.LogOpts, Labels: opts.Labels, Net: netSettings,
		Runtime: rtPath,
	}
	if c.StopSignal == "" {
		c.StopSignal = cfg.Config.StopSignal
	}
	if c.AutoRemove && c.Restart.Name != "" && c.Restart.Name != "no" {
		return Container{}, fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument)
	}
	// Docker's rules: the requested name, else the host's (--network host)
	// or the joined container's (container:X, where -h is refused), else
	// the short ID.
	if c.Run.Hostname, err = e.nets.Hostname(ctx, c.Net.Mode, c.Run.Hostname, c.ShortID()); err != nil {
		return Container{}, err
	}
	vols, resolved, err := e.resolveVolumes(&opts, cfg.Config.Volumes)
	if err != nil {
		return Container{}, err
	}
	c.Run.Mounts = resolved.Mounts
	if err := e.db.Update(ctx, func(tx *state.Tx) error { return record.Reserve(tx, &c) }); err != nil {
		vols.Undo(resolved)
		return Container{}, err
	}
	crashPoint("create-recorded")
	// The record exists first, so whatever follows can be found and
	// cleaned by ID; a crash here leaves a record whose snapshot Start
	// makes on demand and rm ignores if missing.
	undo := func() {
		e.db.Update(context.WithoutCancel(ctx), func(tx *state.Tx) error { return record.Delete(tx, c) })
		vols.Undo(resolved)
	}
	if _, err := e.snaps.Prepare(ctx, c.ID, c.Snapshot); err != nil {
		undo()
		return Container{}, err
	}
	crashPoint("create-snapshot")
	for _, cp := range resolved.Copies {
		if err := e.fs.CopyUp(ctx, c, cp.Target, cp.Dir); err != nil {
			e.snaps.Remove(context.WithoutCancel(ctx), c.ID)
			undo()
			return Container{}, fmt.Errorf("copying image content to the volume at %s: %w", cp.Target, err)
		}
	}
	for _, n := range resolved.Created {
		e.emit("volume", "create", n, map[string]string{"driver": "local"})
	}
	e.emitContainer(c, "create", nil)
	return c, nil
}

func (e *Engine) imageForCreate(ctx context.Context, opts CreateOptions) (image.Record, error) {
	if opts.Pull != "always" {
		rec, err := e.images.Resolve(ctx, opts.Image)
		if err == nil || !errdefs.IsNotFound(err) {
			return rec, err
		}
		if named, perr := image.ParseReference(opts.Image); perr == nil && imageops.IsBuiltin(named) {
			return e.images.Builtin(ctx)
		}
		if opts.Pull == "never" {
			return rec, err
		}
		named, perr := image.ParseReference(opts.Image)
		if perr != nil {
			return rec, perr
		}
		if opts.Progress != nil { // Docker names it with its tag: 'busybox:latest'
			fmt.Fprintf(opts.Progress, "Unable to find image '%s' locally\n", image.FamiliarName(named))
		}
	}
	return e.Pull(ctx, opts.Image, PullOptions{Progress: opts.Progress})
}
