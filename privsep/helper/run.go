package helper

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/privsep"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// run executes one validated request. Requests that change state run to
// completion even when the client goes away (as the API handlers ask).
func (h *Helper) run(ctx context.Context, req Request, s *sender, fd *int) (any, error) {
	if res, err, ok := h.runVerb(ctx, req, s); ok {
		return res, err
	}
	if res, err, ok := h.runExec(ctx, req, s); ok {
		return res, err
	}
	if res, err, ok := h.runImageOp(ctx, req, s); ok {
		return res, err
	}
	e := h.Engine
	keep := context.WithoutCancel(ctx)
	switch a := req.Args.(type) {
	case *privsep.CreateArgs:
		return e.Create(keep, engine.CreateOptions{
			Name: a.Name, Image: a.Image, Run: a.Run, AutoRemove: a.AutoRemove, Pull: a.Pull,
			Progress: s.stream(privsep.KindProgress), Network: a.Network, Restart: a.Restart,
			StopSignal: a.StopSignal, StopTimeout: a.StopTimeout, LogDriver: a.LogDriver, LogOpts: a.LogOpts, Labels: a.Labels,
			MakeBindSources: a.MakeBindSources, Runtime: a.Runtime,
		})
	case *privsep.ListArgs:
		return e.Containers(ctx, a.All)
	case *privsep.StopArgs:
		return nil, e.StopWithSignal(keep, a.Ref, a.Signal, a.Timeout)
	case *privsep.KillArgs:
		return nil, e.Kill(keep, a.Ref, syscall.Signal(a.Signal))
	case *privsep.RemoveArgs:
		switch {
		case req.Op == privsep.OpImageRemove:
			return e.RemoveImage(keep, a.Ref, a.Force)
		case a.Volumes:
			return nil, e.RemoveWithVolumes(keep, a.Ref, a.Force)
		}
		return nil, e.Remove(keep, a.Ref, a.Force)
	case *privsep.InspectArgs:
		return e.InspectContainer(ctx, a.Ref, a.Size)
	case *privsep.LogsArgs:
		return nil, e.Logs(ctx, a.Ref, engine.LogOptions{Follow: a.Follow, Tail: a.Tail, Since: a.Since, Until: a.Until, Timestamps: a.Timestamps},
			s.stream(privsep.KindStdout), s.stream(privsep.KindStderr))
	case *privsep.FollowArgs:
		return nil, h.followLog(ctx, a, s)
	case *privsep.ResizeTTYArgs:
		return nil, e.ResizeTTY(keep, a.Ref, uint16(a.Height), uint16(a.Width))
	case *privsep.PullArgs:
		o := engine.PullOptions{Platform: a.Platform, Progress: s.stream(privsep.KindProgress)}
		if a.Auth != nil {
			o.Keychain = *a.Auth // the client's credential, for this pull only
		}
		return e.Pull(keep, a.Ref, o)
	case *privsep.TagArgs:
		return nil, e.Tag(keep, a.Source, a.Target)
	case *privsep.NetworkCreateArgs:
		return h.network(keep, func(m *network.Manager) (any, error) {
			n, err := m.Create(keep, a.Options)
			return view(n), err
		})
	case *privsep.VolumeCreateArgs:
		return h.volumes(func(v *volume.Store) (any, error) { return v.Create(a.Name, a.Driver, a.Labels, a.Options) })
	case *privsep.VolumeRemoveArgs:
		return h.volumes(func(v *volume.Store) (any, error) { return nil, v.Remove(a.Name, a.InUse) })
	case *privsep.EventAppendArgs:
		if h.Events == nil {
			return nil, nil
		}
		return nil, h.Events.Append(a.Event)
	case *privsep.EventReadArgs:
		if h.Events == nil {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, h.Events.Read(ctx, events.ReadOptions{Since: a.Since, Until: a.Until, Follow: a.Follow}, func(ev events.Event) error {
			return s.send(privsep.Reply{Kind: privsep.KindEvent, Event: &ev}, -1)
		})
	case *privsep.IDArgs:
		return h.byID(ctx, req.Op, a.ID, fd)
	case *privsep.RefArgs:
		return h.byRef(ctx, keep, req.Op, a.Ref)
	case *privsep.NoArgs:
		return h.noArgs(ctx, keep, req.Op)
	}
	return nil, fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
}

func (h *Helper) noArgs(ctx, keep context.Context, op privsep.Op) (any, error) {
	switch op {
	case privsep.OpOptions:
		return h.Engine.Options(), nil
	case privsep.OpImageList:
		return h.Engine.Images(ctx)
	case privsep.OpNetworkDefault:
		return h.network(keep, func(m *network.Manager) (any, error) {
			n, err := m.EnsureDefault(keep)
			return view(n), err
		})
	case privsep.OpNetworkList:
		return h.network(ctx, func(m *network.Manager) (any, error) {
			ns, err := m.List(ctx)
			out := make([]privsep.NetworkView, 0, len(ns))
			for _, n := range ns {
				out = append(out, view(n))
			}
			return out, err
		})
	case privsep.OpNetworkPrune:
		return h.network(keep, func(m *network.Manager) (any, error) {
			names, err := m.Prune(keep)
			return privsep.PruneResult{Names: names}, err
		})
	case privsep.OpVolumeList:
		return h.volumes(func(v *volume.Store) (any, error) {
			vs, err := v.List()
			return privsep.VolumeList{Volumes: vs}, err
		})
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

func (h *Helper) byRef(ctx, keep context.Context, op privsep.Op, ref string) (any, error) {
	e := h.Engine
	switch op {
	case privsep.OpContainerGet:
		return e.Container(ctx, ref)
	case privsep.OpContainerStart:
		// The bind sources are checked again here, closer to the mount:
		// a symbolic link may have been changed since create (SPEC.md).
		c, err := e.Container(ctx, ref)
		if err != nil {
			return nil, err
		}
		if err := checkBindSources(c.Run.Mounts, confOf(e)); err != nil {
			return nil, err
		}
		return nil, e.StartDetached(keep, ref)
	case privsep.OpImageInspect:
		r, err := e.InspectImage(ctx, ref)
		return privsep.ImageInspectResult{Image: r}, err
	case privsep.OpNetworkInspect:
		return h.network(ctx, func(m *network.Manager) (any, error) {
			n, err := m.Inspect(ctx, ref)
			return view(n), err
		})
	case privsep.OpNetworkRemove:
		return h.network(keep, func(m *network.Manager) (any, error) { return nil, m.Remove(keep, ref) })
	case privsep.OpVolumeGet:
		return h.volumes(func(v *volume.Store) (any, error) { return v.Get(ref) })
	case privsep.OpVolumeSize:
		return h.volumes(func(v *volume.Store) (any, error) { return privsep.VolumeSizeResult{Size: v.Size(ref)}, nil })
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

// containerFile is a file of the container's bundle directory, named from
// a validated ID.
func (h *Helper) containerFile(id, name string) string {
	return filepath.Join(h.Engine.Options().RunRoot, "containers", id, name)
}

func (h *Helper) byID(ctx context.Context, op privsep.Op, id string, fd *int) (any, error) {
	e := h.Engine
	switch op {
	case privsep.OpContainerExit:
		code, _, err := monitor.ExitStatus(filepath.Join(e.Options().RunRoot, "exits"), id)
		if errdefs.IsNotFound(err) {
			return privsep.ExitResult{}, nil
		}
		return privsep.ExitResult{Code: code, OK: err == nil}, err
	case privsep.OpContainerLogReady:
		_, err := os.Lstat(e.LogPath(id))
		return err == nil, nil
	case privsep.OpContainerStdin:
		path := h.containerFile(id, "attach")
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("container %s has no attach socket yet: %w", id, errdefs.ErrNotFound)
		}
		// Dialled through /proc/self/fd (a long RunRoot exceeds the 108
		// bytes of a socket address).
		c, err := e.DialAttach(id)
		if err != nil {
			return nil, fmt.Errorf("attach to %s: %v: %w", id, err, errdefs.ErrUnavailable)
		}
		defer c.Close()
		// File is a duplicate; the call closes *fd after sending it.
		f, err := c.File()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		*fd, err = unix.Dup(int(f.Fd()))
		return nil, err
	case privsep.OpNetworkEndpoints:
		return h.network(ctx, func(m *network.Manager) (any, error) { return m.Endpoints(ctx, id) })
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

// followLog streams the container's log from Since until the container
// no longer runs.
func (h *Helper) followLog(ctx context.Context, a *privsep.FollowArgs, s *sender) error {
	e := h.Engine
	return monitor.ReadLog(ctx, e.LogPath(a.ID), monitor.LogOptions{Follow: true, Tail: -1, Since: a.Since, Done: func() bool {
		c, err := e.Container(ctx, a.ID)
		return err != nil || c.State.Status != engine.StatusRunning
	}}, func(le monitor.LogEntry) error {
		return s.send(privsep.Reply{Kind: privsep.KindLog, Entry: &privsep.LogEntry{Time: le.Time, Stream: le.Stream, Data: le.Data}}, -1)
	})
}

func (h *Helper) network(ctx context.Context, fn func(*network.Manager) (any, error)) (any, error) {
	m, err := h.Engine.Networks()
	if err != nil {
		return nil, err
	}
	return fn(m)
}

func (h *Helper) volumes(fn func(*volume.Store) (any, error)) (any, error) {
	if h.Volumes == nil {
		return nil, fmt.Errorf("volumes are not available: %w", errdefs.ErrNotImplemented)
	}
	return fn(h.Volumes)
}

func view(n network.Network) privsep.NetworkView {
	return privsep.NetworkView{Network: n, Endpoints: n.Endpoints}
}

// runVerb runs the ops isVerb names; ok is false for any other op.
// State-changing ones run to completion even if the client goes away.
func (h *Helper) runVerb(ctx context.Context, req Request, s *sender) (res any, err error, ok bool) {
	if !isVerb(req.Op) {
		return nil, nil, false
	}
	e := h.Engine
	keep := context.WithoutCancel(ctx)
	switch a := req.Args.(type) {
	case *privsep.TopArgs:
		res, err = e.Top(ctx, a.Ref, a.PsArgs)
	case *privsep.StatsArgs:
		res, err = e.Stats(ctx, a.Refs, a.Interval)
	case *privsep.RefArgs:
		switch req.Op {
		case privsep.OpContainerPause:
			err = e.Pause(keep, a.Ref)
		case privsep.OpContainerUnpause:
			err = e.Unpause(keep, a.Ref)
		}
	case *privsep.RenameArgs:
		err = e.Rename(keep, a.Ref, a.Name)
	case *privsep.PathArgs:
		if req.Op == privsep.OpContainerPathStat {
			res, err = e.StatContainerPath(ctx, a.Ref, a.Path, a.FollowLink)
			break
		}
		err = e.CopyFromContainer(ctx, a.Ref, a.Path, engine.CopyOptions{FollowLink: a.FollowLink, Rename: a.Rename, KeepOwner: a.KeepOwner}, s.stream(privsep.KindStdout))
	case *privsep.CopyToArgs:
		if s.in == nil {
			return nil, bad("copy-to: no input"), true
		}
		err = e.CopyToContainer(keep, a.Ref, a.Path, s.in, engine.CopyOptions{KeepOwner: a.KeepOwner})
	case *privsep.ConnectArgs:
		err = e.ConnectNetwork(keep, a.Network, a.Container, engine.ConnectOptions{IP: a.IP, Aliases: a.Aliases})
	case *privsep.DisconnectArgs:
		err = e.DisconnectNetwork(keep, a.Network, a.Container, a.Force)
	case *privsep.PushArgs:
		o := engine.PushOptions{Progress: s.stream(privsep.KindProgress)}
		if a.Auth != nil {
			o.Keychain = *a.Auth // the client's credential, for this push only
		}
		res, err = e.Push(keep, a.Ref, o)
	default:
		err = fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
	}
	return res, err, true
}
