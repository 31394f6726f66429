package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/engine/internal/attach"
	"github.com/berthproject/berth/engine/internal/containerops"
	"github.com/berthproject/berth/engine/internal/netops"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// Process verbs on containers (exec, top, stats, inspect); the work is
// package containerops's. Its types are re-exported here.
type (
	// ExecOptions are the settings of `exec`, Docker's flags: Cmd (not
	// empty), Env ("KEY=VALUE" laid over the container's), User,
	// WorkingDir (absolute), Tty (-t), Interactive (-i), Detach (-d).
	ExecOptions = containerops.ExecOptions
	// ExecIO is where an exec'd process's streams go. Stdin is read only
	// with Interactive; nil writers discard.
	ExecIO = containerops.ExecIO
	// ExecProcess is a process started by Exec: its Pid in the caller's
	// pid namespace and, for a Tty process, the pty master (Console).
	ExecProcess = containerops.ExecProcess
	// Stats is one reading of a container's resource use, the numbers of
	// `docker stats`. Byte counts are in bytes; CPUPercent and MemPercent
	// are percentages (CPUPercent of one CPU, so up to 100×CPUs).
	Stats = containerops.Stats
	// TopResult is `docker top` output: ps's column titles and one row per
	// container process.
	TopResult = containerops.TopResult
)

// Exec runs a new process in the running container ref, as `docker exec`,
// through the OCI runtime's `exec --detach`: the process gets the
// container's environment, user and working directory (overridden by
// opts), its capabilities and security settings. In the foreground
// (!opts.Detach) the caller becomes a child subreaper and must call Wait.
//
// Errors: errdefs.ErrNotFound for an unknown container; errdefs.ErrConflict
// when it is not running ("container ID is not running") or is paused;
// errdefs.ErrInvalidArgument for an empty command, a relative working
// directory or an unknown user; runtime.ErrCommandNotFound and
// runtime.ErrCommandNotExecutable when the command is missing or cannot be
// run (Docker's 127 and 126).
func (e *Engine) Exec(ctx context.Context, ref string, opts ExecOptions, stdio ExecIO) (*ExecProcess, error) {
	if len(opts.Cmd) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	return containerops.Exec(ctx, e.life.RuntimeOf(c), c, e.bundleDir(c.ID), opts, stdio)
}

// DialAttach connects to the stdin socket of container id's monitor (id
// a full ID): a SOCK_SEQPACKET connection whose messages (at most 8 KiB
// each) go to the container's stdin, and whose half-close the monitor
// reads as the end of the client's input. The socket is reached through
// /proc/self/fd, so a long RunRoot does not hit the 108-byte limit of
// socket addresses. An error matching os.ErrNotExist means the container
// has no monitor socket (not started yet, or run in the foreground).
// SHARED: added for the API service's attach (api, privsep).
func (e *Engine) DialAttach(id string) (*net.UnixConn, error) {
	return attach.Dial(filepath.Join(e.bundleDir(id), "attach"))
}

// Stats reads the resource use of the containers refs (running ones give
// numbers, others zeros), sampling CPU time twice, interval apart, to
// compute CPU %, as `docker stats --no-stream`. Counters come from the
// cgroup v1 memory, cpuacct, pids and blkio hierarchies under
// /sys/fs/cgroup/CONTROLLER/berth/ID and the network from
// /proc/PID/net/dev (every interface but lo). Memory use excludes the
// inactive file cache, as Docker's. Unknown refs: errdefs.ErrNotFound.
func (e *Engine) Stats(ctx context.Context, refs []string, interval time.Duration) ([]Stats, error) {
	var cs []Container
	for _, ref := range refs {
		c, err := e.Container(ctx, ref)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return containerops.ReadStats(ctx, cs, interval)
}

// Top runs ps on the host with psArgs (default "-ef") and keeps the rows
// of the running container's processes, as `docker top`. Errors:
// errdefs.ErrNotFound; errdefs.ErrConflict when not running;
// errdefs.ErrInvalidArgument when ps fails on psArgs or prints no PID
// column.
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) (TopResult, error) {
	c, err := e.runningContainer(ctx, ref)
	if err != nil {
		return TopResult{}, err
	}
	return containerops.Top(ctx, e.life.RuntimeOf(c), c.ID, psArgs)
}

// InspectContainer describes container ref in the shape of Docker's GET
// /containers/{id}/json (`docker container inspect`). Config holds the
// container's settings merged with its image's (env, cmd, entrypoint,
// user, working dir, labels), as Docker stores them. With size, SizeRw
// (bytes in the writable layer) and SizeRootFs (that plus the image's
// unpacked layers) are filled in. Unknown ref: errdefs.ErrNotFound.
func (e *Engine) InspectContainer(ctx context.Context, ref string, size bool) (container.InspectResponse, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return container.InspectResponse{}, err
	}
	in := containerops.InspectInput{
		C:              c,
		ResolvConfPath: e.nets.EtcFile(c.ID, "resolv.conf"),
		HostnamePath:   e.nets.EtcFile(c.ID, "hostname"),
		HostsPath:      e.nets.EtcFile(c.ID, "hosts"),
		LogPath:        e.LogPath(c.ID),
		SandboxKey:     e.nets.NetnsPath(c.ID),
		MergedDir:      e.bundleDir(c.ID) + "/rootfs",
		Snapshotter:    e.opts.Snapshotter,
		Runtime:        runtimeName(c.Runtime),
		VolumeName:     e.volumeNameOf,
	}
	if data, err := e.content.ReadAll(c.ImageID); err == nil {
		json.Unmarshal(data, &in.Image)
	}
	e.db.View(ctx, func(tx *state.Tx) error {
		all, _ := image.List(tx)
		for _, r := range all {
			if r.Config == c.ImageID {
				t := r.Target
				in.Manifest, in.ImageSize = &t, r.Size
				break
			}
		}
		return nil
	})
	if ms, err := e.snaps.Mounts(ctx, c.ID); err == nil {
		in.Mounts, in.HasSnapshot = ms, true
	}
	if c.State.Status == StatusRunning && netops.IsBridgeMode(c.Net.Mode) {
		if m, err := e.Networks(); err == nil {
			in.Endpoints, _ = m.Endpoints(ctx, c.ID)
		}
	}
	if size {
		u, _ := e.snaps.Usage(ctx, c.ID)
		rw, rootfs := u.Size, u.Size
		for _, ch := range chainIDs(in.Image.RootFS.DiffIDs) {
			if lu, err := e.snaps.Usage(ctx, ch.String()); err == nil {
				rootfs += lu.Size
			}
		}
		in.SizeRw, in.SizeRootFs = &rw, &rootfs
	}
	return containerops.Inspect(in), nil
}
