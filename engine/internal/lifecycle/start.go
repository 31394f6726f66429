package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine/internal/containerops"
	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// containerDir holds what persists of a container besides its record: its
// log.
func (m *Manager) containerDir(id string) string {
	return filepath.Join(m.Root, "containers", id)
}

// LogPath is the container's log file (Docker's json-file format, or the
// CRI k8s-file format under conmon; see package monitor); rotated files
// are LogPath.1 … beside it.
func (m *Manager) LogPath(id string) string {
	return filepath.Join(m.containerDir(id), "container.log")
}

func (m *Manager) exitDir() string { return filepath.Join(m.RunRoot, "exits") }

// beginStart marks the container running under watcher and returns it.
// errdefs.ErrConflict if it runs already or is being removed.
func (m *Manager) beginStart(ctx context.Context, ref string) (record.Container, func(), error) {
	// Reconcile a stale "running" record first: reconcile takes the
	// store's lock itself, so it cannot run inside the transaction below.
	cur, err := m.Container(ctx, ref)
	if err != nil {
		return record.Container{}, nil, err
	}
	// The container's lock keeps a concurrent remove out until the start
	// has made everything it makes; a remove that came first leaves no
	// record, and the lookup below fails cleanly.
	unlock, err := m.lockContainer(cur.ID)
	if err != nil {
		return record.Container{}, nil, err
	}
	var c record.Container
	err = m.DB.Update(ctx, func(tx *state.Tx) error {
		var err error
		if c, err = record.Lookup(tx, cur.ID); err != nil {
			return err
		}
		switch c.State.Status {
		case record.StatusRunning:
			return fmt.Errorf("container %s is already running: %w", c.ShortID(), errdefs.ErrConflict)
		case record.StatusRemoving:
			return fmt.Errorf("container %s is marked for removal and cannot be started: %w", c.ShortID(), errdefs.ErrConflict)
		}
		c.State = c.State.Begin(time.Now().UTC(), record.Self())
		return tx.Put(record.Bucket, c.ID, c)
	})
	if err != nil {
		unlock()
		return c, nil, err
	}
	return c, unlock, nil
}

// prepareBundle mounts the rootfs and writes config.json; it returns the
// bundle directory.
func (m *Manager) prepareBundle(ctx context.Context, c record.Container) (string, error) {
	bundle := m.BundleDir(c.ID)
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return "", err
	}
	if err := os.MkdirAll(m.containerDir(c.ID), 0o700); err != nil {
		return "", err
	}
	m.RuntimeOf(c).Delete(ctx, c.ID, true) // state left by an earlier run
	for _, f := range []string{"runtime.log", "attach", "ctl", "winsz"} {
		os.Remove(filepath.Join(bundle, f))
	}
	os.Remove(filepath.Join(m.exitDir(), c.ID))
	defer probe.Trace("prepare bundle")()
	mounts, err := m.Snaps.Mounts(ctx, c.ID)
	if errdefs.IsNotFound(err) {
		mounts, err = m.Snaps.Prepare(ctx, c.ID, c.Snapshot)
	}
	if err != nil {
		return "", err
	}
	mount.Unmount(rootfs)
	if err := mount.All(mounts, rootfs); err != nil {
		return "", err
	}
	probe.Crash("start-mounted")
	imgCfg, err := m.containerImageConfig(c)
	if err != nil {
		return "", err
	}
	opts := c.Run
	opts.CgroupsPath = "/berth/" + c.ID
	if opts.Init && opts.InitPath == "" {
		opts.InitPath = InitBinary()
	}
	endNet := probe.Trace("setup network")
	nsSpec, netMounts, err := m.Nets.Setup(ctx, c)
	endNet()
	probe.Crash("start-network")
	defer probe.Trace("spec")()
	if err != nil {
		return "", err
	}
	opts.NetworkNamespace = nsSpec
	opts.Mounts = append(slices.Clone(opts.Mounts), netMounts...)
	spec, err := runtime.Spec(rootfs, imgCfg, opts)
	if err != nil {
		return "", err
	}
	if a, ok := m.RuntimeOf(c).(runtime.SpecAdjuster); ok {
		a.AdjustSpec(c.ID, spec)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return bundle, os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600)
}

// containerImageConfig returns the image config c was created from.
func (m *Manager) containerImageConfig(c record.Container) (ocispec.ImageConfig, error) {
	data, err := m.Content.ReadAll(c.ImageID)
	if err != nil {
		return ocispec.ImageConfig{}, fmt.Errorf("image of container %s: %w", c.ShortID(), err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(data, &img); err != nil {
		return ocispec.ImageConfig{}, err
	}
	return img.Config, nil
}

// Process is a container started in the foreground by Start.
type Process struct {
	m        *Manager
	c        record.Container
	rp       runtime.Process
	copyDone chan struct{}
	log      *monitor.LogWriter
	stderr   *holdWriter
}

// Pid is the container process's pid (0 if its start failed).
func (p *Process) Pid() int { return p.rp.Pid() }

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
// ctx bounds only the lookup: once the container is marked running, the
// start is carried through (or undone) whatever becomes of ctx, so that a
// cancelled caller never leaves a container half-started or unwatched.
func (m *Manager) Start(ctx context.Context, ref string, stdio runtime.Stdio) (p *Process, err error) {
	c, unlock, err := m.beginStart(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer unlock() // once the runtime runs the container (or failed)
	ctx = context.WithoutCancel(ctx)
	probe.Crash("start-recorded")
	spawned := false // from then on, Wait finishes
	defer func() {
		if err != nil && !spawned {
			m.finish(ctx, c, -1, err)
		}
	}()
	bundle, err := m.prepareBundle(ctx, c)
	if err != nil {
		return nil, err
	}
	defer probe.Trace("runtime start")()
	logw, err := monitor.OpenLogFile(m.LogPath(c.ID), monitor.LogRotation{MaxSize: c.LogMaxSize, MaxFiles: c.LogMaxFiles})
	if err != nil {
		return nil, err
	}
	// Output goes through pipes so that it reaches the log too. The
	// runtime writes its own errors to the container's stderr: stderr is
	// held back until the container runs, and dropped if it never does.
	stderrHold := &holdWriter{}
	var sinks []func()
	var ends []*os.File
	pipe := func(dst io.Writer, stream string, hold *holdWriter) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		ends = append(ends, w)
		out := logw.Stream(stream)
		if dst != nil {
			out = io.MultiWriter(dst, out)
		}
		if hold != nil {
			hold.dst = out
			out = hold
		}
		sinks = append(sinks, func() { io.Copy(out, r); r.Close() })
		return w, nil
	}
	closeEnds := func() {
		for _, f := range ends {
			f.Close()
		}
	}
	runStdio := runtime.Stdio{Stdin: stdio.Stdin}
	if runStdio.Stdout, err = pipe(stdio.Stdout, "stdout", nil); err == nil {
		runStdio.Stderr, err = pipe(stdio.Stderr, "stderr", stderrHold)
	}
	if err != nil {
		closeEnds()
		logw.Close()
		return nil, err
	}
	rp, err := m.RuntimeOf(c).Run(ctx, c.ID, bundle, runStdio)
	closeEnds()
	probe.Crash("start-spawned")
	if err != nil {
		logw.Close()
		return nil, err
	}
	p = &Process{m: m, c: c, rp: rp, copyDone: make(chan struct{}), log: logw, stderr: stderrHold}
	spawned = true
	sinks = append(sinks, func() { m.watchOOM(ctx, c.ID, rp) }) // Wait waits for it too
	containerops.Drain(sinks, p.copyDone)
	<-rp.Started()
	if rp.Pid() == 0 {
		return p, nil // failed, or already over: Wait tells
	}
	// A foreground container is attached to its caller: Docker's
	// attach, then start.
	m.emit(c, "attach", nil)
	m.emit(c, "start", nil)
	stderrHold.release()
	select {
	case <-rp.Done():
		return p, nil // over already: a pid would be stale before it is stored
	default:
	}
	if err := m.setPid(ctx, c.ID, rp.Pid(), record.Self()); err != nil {
		// A container its record does not show running must not run on:
		// kill it and let Wait record the end and release everything.
		rp.Signal(syscall.SIGKILL)
		_, werr := p.Wait(ctx)
		return nil, errors.Join(err, werr)
	}
	return p, nil
}

// holdWriter buffers writes until release, then passes them on to dst;
// what is never released is dropped.
type holdWriter struct {
	mu       sync.Mutex
	dst      io.Writer
	buf      []byte
	released bool
}

func (h *holdWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.released {
		h.buf = append(h.buf, p...)
		return len(p), nil
	}
	return h.dst.Write(p)
}

func (h *holdWriter) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	if len(h.buf) > 0 {
		h.dst.Write(h.buf)
		h.buf = nil
	}
}

func (m *Manager) setPid(ctx context.Context, id string, pid int, watcher record.ProcessID) error {
	return record.Update(ctx, m.DB, id, func(cur *record.Container) error {
		cur.State.Pid, cur.State.Watcher = pid, watcher
		return nil
	})
}

// Signal sends sig to the container's main process.
func (p *Process) Signal(sig syscall.Signal) error {
	return p.rp.Signal(sig)
}

// Wait waits for the process to exit, records its exit code (128+N when
// killed by signal N, as Docker), releases the rootfs mount and network,
// and removes the container if it was created with AutoRemove. It returns
// the exit code; a failed start gives its error (see Start).
func (p *Process) Wait(ctx context.Context) (int, error) {
	endWait := probe.Trace("container process")
	code, err := p.rp.Wait()
	endWait()
	if err == nil {
		p.stderr.release() // a container that ended before its pid was seen
	}
	<-p.copyDone
	p.log.Close()
	if err != nil {
		return -1, errors.Join(err, p.m.finish(context.WithoutCancel(ctx), p.c, -1, err))
	}
	return code, p.m.finish(context.WithoutCancel(ctx), p.c, code, nil)
}

// StartDetached starts a created (or exited) container under its own
// monitor process, which holds its output (into its log), records its exit
// and applies --rm and the restart policy after every berth process has
// gone. Errors as Start.
//
// As with Start, ctx bounds only the lookup.
func (m *Manager) StartDetached(ctx context.Context, ref string) (err error) {
	mon, err := m.monitor()
	if err != nil {
		return err
	}
	c, unlock, err := m.beginStart(ctx, ref)
	if err != nil {
		return err
	}
	defer unlock()
	ctx = context.WithoutCancel(ctx)
	defer func() {
		if err != nil {
			m.finish(ctx, c, -1, err)
		}
	}()
	bundle, err := m.prepareBundle(ctx, c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.exitDir(), 0o700); err != nil {
		return err
	}
	rt, err := containerops.OCI(m.RuntimeOf(c), "the monitor")
	if err != nil {
		return err
	}
	program, rtArgs := rt.MonitorArgs()
	st, err := mon.Start(ctx, monitor.Config{
		ID: c.ID, Name: c.Name, Bundle: bundle,
		Runtime: program, RuntimeArgs: rtArgs,
		LogPath: m.LogPath(c.ID), LogMaxSize: c.LogMaxSize, LogMaxFiles: c.LogMaxFiles,
		ExitDir: m.exitDir(), ExitCommand: m.exitCommand(c.ID),
		Terminal: c.Run.Tty, Stdin: c.Run.OpenStdin, StdinOnce: c.Run.StdinOnce,
		PidFile: filepath.Join(bundle, "init.pid"), MonitorPidFile: filepath.Join(bundle, "monitor.pid"),
	})
	if err != nil {
		var ce *monitor.CreateError
		if errors.As(err, &ce) {
			return ociruntime.ClassifyStartError(c.ID, ce.Message)
		}
		return err
	}
	mst, _ := record.ProcStartTime(st.MonitorPid)
	if err := m.setPid(ctx, c.ID, st.Pid, record.ProcessID{Pid: st.MonitorPid, StartTime: mst}); err != nil {
		return err
	}
	if err := m.RuntimeOf(c).Start(ctx, c.ID); err != nil {
		// A process that ends at once can have its exit recorded, and its
		// runtime state deleted, by the monitor's cleanup while `runtime
		// start` still runs, which then fails: the container did start.
		if _, _, xerr := monitor.ExitStatus(m.exitDir(), c.ID); xerr != nil {
			return err
		}
	}
	m.emit(c, "start", nil)
	return nil
}

func (m *Manager) monitor() (*monitor.Program, error) {
	return monitor.New(m.Monitor)
}

// exitCommand is what the monitor runs when the container exits: berth's
// hidden `container-cleanup` verb with this engine's options, so that the
// exit is recorded and --rm and the restart policy applied at once. With
// no berth binary at hand (an embedding program), there is none: the
// exit is then recorded on the next read of the container.
func (m *Manager) exitCommand(id string) []string {
	bin := m.CleanupBinary
	if bin == "" {
		return nil
	}
	return []string{bin, "--root", m.Root, "--runroot", m.RunRoot, "--runtime", m.RuntimeName,
		"--storage-driver", m.Snapshotter, "container-cleanup", id}
}

// Cleanup records the exit of a container whose monitor reported one,
// releases its mounts and runtime state, and applies AutoRemove and the
// restart policy. It is what the monitor's exit command runs; calling it
// again, or for a running container, changes nothing.
func (m *Manager) Cleanup(ctx context.Context, ref string) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Status != record.StatusExited {
		return nil
	}
	return m.applyRestartPolicy(ctx, c)
}

// finish records an exit (code -1 with startErr: the start failed),
// releases runtime state and mounts, and applies AutoRemove.
func (m *Manager) finish(ctx context.Context, c record.Container, code int, startErr error) error {
	defer probe.Trace("finish")()
	if startErr == nil {
		c.State.ExitCode = code
		m.emitExit(c, oomKilled(c.ID))
	}
	if c.AutoRemove {
		// Removing releases all the rest; recording the exit first would
		// only cost a transaction (a crash in between is reconciled).
		return m.remove(ctx, c.ID, true, true)
	}
	// The container has stopped: deleting the runtime's state (cgroups,
	// state dir) overlaps with the rest of the cleanup.
	deleted := make(chan error, 1)
	go func() { deleted <- m.RuntimeOf(c).Delete(ctx, c.ID, true) }()
	netErr := m.Nets.Teardown(ctx, c)
	unmountErr := mount.Unmount(filepath.Join(m.BundleDir(c.ID), "rootfs"))
	err := record.Update(ctx, m.DB, c.ID, func(cur *record.Container) error {
		cur.State.Status = record.StatusExited
		cur.State.Pid = 0
		cur.State.FinishedAt = time.Now().UTC()
		cur.State.ExitCode = code
		cur.State.Watcher = record.ProcessID{}
		if startErr != nil {
			cur.State.StartFailed(startExitCode(startErr), startErr.Error())
		}
		return nil
	})
	return errors.Join(err, netErr, unmountErr, <-deleted)
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

// InitBinary finds a static init for --init: Debian's tini-static, or
// docker-init where Docker's packages installed one, in $PATH; "" if none.
func InitBinary() string {
	for _, name := range []string{"tini-static", "docker-init"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
