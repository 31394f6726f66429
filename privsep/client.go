package privsep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	"golang.org/x/sys/unix"
)

// Client is the unprivileged side: it implements the API server's Backend
// by sending requests to the helper. NetworkManager, VolumeStore,
// EventLog and Host give the API server's other dependencies over the
// same control socket. Safe for concurrent use.
type Client struct {
	ctrl *net.UnixConn
	opts engine.Options
}

// NewClient returns a client over ctrl (the unprivileged end of the
// SOCK_SEQPACKET control socketpair) and fetches the engine's options.
// An unreachable helper gives errdefs.ErrUnavailable.
func NewClient(ctx context.Context, ctrl *net.UnixConn) (*Client, error) {
	c := &Client{ctrl: ctrl}
	if err := c.do(ctx, OpOptions, NoArgs{}, &c.opts); err != nil {
		return nil, err
	}
	return c, nil
}

// call runs one request: onStream gets every stream frame; the result is
// the result frame's JSON and the descriptor it carried (-1 for none).
func (c *Client) call(ctx context.Context, op Op, args any, onStream func(Reply) error) (json.RawMessage, int, error) {
	body, err := EncodeRequest(op, args)
	if err != nil {
		return nil, -1, err
	}
	if len(body) > MaxRequest {
		return nil, -1, fmt.Errorf("%s request of %d bytes exceeds %d: %w", op, len(body), MaxRequest, errdefs.ErrInvalidArgument)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, -1, err
	}
	_, _, err = c.ctrl.WriteMsgUnix([]byte{'c'}, unix.UnixRights(fds[1]), nil)
	unix.Close(fds[1])
	if err != nil {
		unix.Close(fds[0])
		return nil, -1, fmt.Errorf("privileged helper: %v: %w", err, errdefs.ErrUnavailable)
	}
	conn, err := CallConn(fds[0])
	if err != nil {
		return nil, -1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	in := -1
	if f := inputOf(ctx); f != nil {
		in = int(f.Fd())
	}
	if err := WriteFrameFD(conn, body, in); err != nil {
		return nil, -1, c.connErr(ctx, err)
	}
	for {
		data, fd, err := ReadFrameFD(conn, MaxReply)
		if err != nil {
			return nil, -1, c.connErr(ctx, err)
		}
		var r Reply
		if err := DecodeStrict(data, &r); err != nil {
			CloseFDs([]int{fd})
			return nil, -1, fmt.Errorf("malformed reply from the helper: %v: %w", err, errdefs.ErrUnknown)
		}
		switch r.Kind {
		case KindResult:
			return r.Result, fd, nil
		case KindError:
			CloseFDs([]int{fd})
			return nil, -1, replyError(r)
		}
		CloseFDs([]int{fd})
		if onStream != nil {
			if err := onStream(r); err != nil {
				return nil, -1, err
			}
		}
	}
}

func (c *Client) connErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("privileged helper: %v: %w", err, errdefs.ErrUnavailable)
}

// do runs a request without streams and decodes its result into out (nil:
// ignore it).
func (c *Client) do(ctx context.Context, op Op, args, out any) error {
	return c.doStream(ctx, op, args, out, nil)
}

func (c *Client) doStream(ctx context.Context, op Op, args, out any, onStream func(Reply) error) error {
	res, fd, err := c.call(ctx, op, args, onStream)
	CloseFDs([]int{fd})
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			return fmt.Errorf("malformed %s result: %v: %w", op, err, errdefs.ErrUnknown)
		}
	}
	return nil
}

// progressTo forwards progress frames to w (nil: dropped).
func progressTo(w io.Writer) func(Reply) error {
	return func(r Reply) error {
		if w != nil && r.Kind == KindProgress {
			w.Write(r.Data)
		}
		return nil
	}
}

// Options returns the helper's engine options.
func (c *Client) Options() engine.Options { return c.opts }

// Create is engine.Create through the helper; pull progress goes to
// opts.Progress.
func (c *Client) Create(ctx context.Context, o engine.CreateOptions) (engine.Container, error) {
	var out engine.Container
	err := c.doStream(ctx, OpContainerCreate, CreateArgs{
		Name: o.Name, Image: o.Image, Run: o.Run, AutoRemove: o.AutoRemove, Pull: o.Pull, Network: o.Network,
		Restart: o.Restart, StopSignal: o.StopSignal, StopTimeout: o.StopTimeout, LogDriver: o.LogDriver, LogOpts: o.LogOpts, Labels: o.Labels,
		MakeBindSources: o.MakeBindSources, Runtime: o.Runtime,
	}, &out, progressTo(o.Progress))
	return out, err
}

// Container is engine.Container through the helper.
func (c *Client) Container(ctx context.Context, ref string) (engine.Container, error) {
	var out engine.Container
	return out, c.do(ctx, OpContainerGet, RefArgs{Ref: ref}, &out)
}

// Containers is engine.Containers through the helper.
func (c *Client) Containers(ctx context.Context, all bool) ([]engine.Container, error) {
	var out []engine.Container
	return out, c.do(ctx, OpContainerList, ListArgs{All: all}, &out)
}

// StartDetached is engine.StartDetached through the helper.
func (c *Client) StartDetached(ctx context.Context, ref string) error {
	return c.do(ctx, OpContainerStart, RefArgs{Ref: ref}, nil)
}

// StopWithSignal is engine.StopWithSignal through the helper.
func (c *Client) StopWithSignal(ctx context.Context, ref, signal string, timeout *time.Duration) error {
	return c.do(ctx, OpContainerStop, StopArgs{Ref: ref, Signal: signal, Timeout: timeout}, nil)
}

// Kill is engine.Kill through the helper.
func (c *Client) Kill(ctx context.Context, ref string, sig syscall.Signal) error {
	return c.do(ctx, OpContainerKill, KillArgs{Ref: ref, Signal: int(sig)}, nil)
}

// InspectContainer is engine.InspectContainer through the helper: the
// engine's Docker-shaped description of the container.
func (c *Client) InspectContainer(ctx context.Context, ref string, size bool) (containertypes.InspectResponse, error) {
	var out containertypes.InspectResponse
	return out, c.do(ctx, OpContainerInspect, InspectArgs{Ref: ref, Size: size}, &out)
}

// Remove is engine.Remove through the helper.
func (c *Client) Remove(ctx context.Context, ref string, force bool) error {
	return c.do(ctx, OpContainerRemove, RemoveArgs{Ref: ref, Force: force}, nil)
}

// RemoveWithVolumes is engine.RemoveWithVolumes through the helper
// (`rm -v`: the container's anonymous volumes no other container uses go
// too).
func (c *Client) RemoveWithVolumes(ctx context.Context, ref string, force bool) error {
	return c.do(ctx, OpContainerRemove, RemoveArgs{Ref: ref, Force: force, Volumes: true}, nil)
}

// ResizeTTY is engine.ResizeTTY through the helper.
func (c *Client) ResizeTTY(ctx context.Context, ref string, height, width uint16) error {
	return c.do(ctx, OpContainerResize, ResizeTTYArgs{Ref: ref, Height: int(height), Width: int(width)}, nil)
}

// Logs is engine.Logs through the helper: the log is read by the helper
// and streamed.
func (c *Client) Logs(ctx context.Context, ref string, o engine.LogOptions, stdout, stderr io.Writer) error {
	return c.doStream(ctx, OpContainerLogs, LogsArgs{Ref: ref, Follow: o.Follow, Tail: o.Tail, Since: o.Since, Until: o.Until, Timestamps: o.Timestamps}, nil,
		func(r Reply) error {
			var err error
			switch r.Kind {
			case KindStdout:
				_, err = stdout.Write(r.Data)
			case KindStderr:
				_, err = stderr.Write(r.Data)
			}
			return err
		})
}

// LogPath is where the engine keeps the container's log (for display;
// this process cannot open it).
func (c *Client) LogPath(id string) string {
	return filepath.Join(c.opts.Root, "containers", id, "container.log")
}

// Pull is engine.Pull through the helper (whose fetcher child does the
// registry I/O); progress goes to o.Progress. An o.Keychain that is an
// image.Credential crosses as the request's credential; any other
// keychain is this process's and is not used (the helper's config.json
// is).
func (c *Client) Pull(ctx context.Context, ref string, o engine.PullOptions) (image.Record, error) {
	var out image.Record
	return out, c.doStream(ctx, OpImagePull, PullArgs{Ref: ref, Platform: o.Platform, Auth: image.CredentialOf(o.Keychain)}, &out, progressTo(o.Progress))
}

// Images is engine.Images through the helper.
func (c *Client) Images(ctx context.Context) ([]engine.Image, error) {
	var out []engine.Image
	return out, c.do(ctx, OpImageList, NoArgs{}, &out)
}

// InspectImage is engine.InspectImage through the helper.
func (c *Client) InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error) {
	var out ImageInspectResult
	err := c.do(ctx, OpImageInspect, RefArgs{Ref: ref}, &out)
	return out.Image, err
}

// RemoveImage is engine.RemoveImage through the helper.
func (c *Client) RemoveImage(ctx context.Context, ref string, force bool) ([]engine.RemovedImage, error) {
	var out []engine.RemovedImage
	return out, c.do(ctx, OpImageRemove, RemoveArgs{Ref: ref, Force: force}, &out)
}

// Tag is engine.Tag through the helper.
func (c *Client) Tag(ctx context.Context, source, target string) error {
	return c.do(ctx, OpImageTag, TagArgs{Source: source, Target: target}, nil)
}

// Networks cannot hand out the root process's manager:
// errdefs.ErrNotImplemented. Use NetworkManager.
func (c *Client) Networks() (*network.Manager, error) {
	return nil, fmt.Errorf("the network manager lives in the privileged helper: %w", errdefs.ErrNotImplemented)
}

// NetworkManager returns the network operations through the helper.
func (c *Client) NetworkManager() *NetworkClient { return &NetworkClient{c} }

// VolumeStore returns the volume store operations through the helper.
func (c *Client) VolumeStore() *VolumeClient { return &VolumeClient{c} }

// EventLog returns the event log through the helper.
func (c *Client) EventLog() *EventClient { return &EventClient{c} }

// Host returns the container-file operations through the helper.
func (c *Client) Host() *HostClient { return &HostClient{c} }

// NetworkClient is network.Manager's API-facing methods through the helper.
type NetworkClient struct{ c *Client }

func netOut(v NetworkView) network.Network {
	n := v.Network
	n.Endpoints = v.Endpoints
	return n
}

// EnsureDefault is network.Manager.EnsureDefault through the helper.
func (n *NetworkClient) EnsureDefault(ctx context.Context) (network.Network, error) {
	var v NetworkView
	err := n.c.do(ctx, OpNetworkDefault, NoArgs{}, &v)
	return netOut(v), err
}

// List is network.Manager.List through the helper.
func (n *NetworkClient) List(ctx context.Context) ([]network.Network, error) {
	var vs []NetworkView
	if err := n.c.do(ctx, OpNetworkList, NoArgs{}, &vs); err != nil {
		return nil, err
	}
	out := make([]network.Network, 0, len(vs))
	for _, v := range vs {
		out = append(out, netOut(v))
	}
	return out, nil
}

// Inspect is network.Manager.Inspect through the helper.
func (n *NetworkClient) Inspect(ctx context.Context, nameOrID string) (network.Network, error) {
	var v NetworkView
	err := n.c.do(ctx, OpNetworkInspect, RefArgs{Ref: nameOrID}, &v)
	return netOut(v), err
}

// Create is network.Manager.Create through the helper.
func (n *NetworkClient) Create(ctx context.Context, o network.CreateOptions) (network.Network, error) {
	var v NetworkView
	err := n.c.do(ctx, OpNetworkCreate, NetworkCreateArgs{Options: o}, &v)
	return netOut(v), err
}

// Remove is network.Manager.Remove through the helper.
func (n *NetworkClient) Remove(ctx context.Context, nameOrID string) error {
	return n.c.do(ctx, OpNetworkRemove, RefArgs{Ref: nameOrID}, nil)
}

// Prune is network.Manager.Prune through the helper.
func (n *NetworkClient) Prune(ctx context.Context) ([]string, error) {
	var out PruneResult
	return out.Names, n.c.do(ctx, OpNetworkPrune, NoArgs{}, &out)
}

// Endpoints is network.Manager.Endpoints through the helper.
func (n *NetworkClient) Endpoints(ctx context.Context, containerID string) ([]network.Endpoint, error) {
	var out []network.Endpoint
	return out, n.c.do(ctx, OpNetworkEndpoints, IDArgs{ID: containerID}, &out)
}

// VolumeClient is volume.Store's methods through the helper.
type VolumeClient struct{ c *Client }

// Create is volume.Store.Create through the helper.
func (v *VolumeClient) Create(name, driver string, labels, options map[string]string) (volume.Volume, error) {
	var out volume.Volume
	err := v.c.do(context.Background(), OpVolumeCreate, VolumeCreateArgs{Name: name, Driver: driver, Labels: labels, Options: options}, &out)
	return v.fill(out), err
}

// Get is volume.Store.Get through the helper.
func (v *VolumeClient) Get(name string) (volume.Volume, error) {
	var out volume.Volume
	err := v.c.do(context.Background(), OpVolumeGet, RefArgs{Ref: name}, &out)
	return v.fill(out), err
}

// List is volume.Store.List through the helper.
func (v *VolumeClient) List() ([]volume.Volume, error) {
	var out VolumeList
	err := v.c.do(context.Background(), OpVolumeList, NoArgs{}, &out)
	for i := range out.Volumes {
		out.Volumes[i] = v.fill(out.Volumes[i])
	}
	return out.Volumes, err
}

// Remove is volume.Store.Remove through the helper.
func (v *VolumeClient) Remove(name string, inUse bool) error {
	return v.c.do(context.Background(), OpVolumeRemove, VolumeRemoveArgs{Name: name, InUse: inUse}, nil)
}

// Size is volume.Store.Size through the helper (0 when unknown).
func (v *VolumeClient) Size(name string) int64 {
	var out VolumeSizeResult
	v.c.do(context.Background(), OpVolumeSize, RefArgs{Ref: name}, &out)
	return out.Size
}

// Prune removes the volumes keep rejects, one remove request each (keep
// runs here, in the unprivileged process), and returns their names and
// the bytes they held. Unlike volume.Store.Prune it is not one critical
// section: a volume removed or put to use meanwhile is skipped.
func (v *VolumeClient) Prune(keep func(volume.Volume) bool) ([]string, uint64, error) {
	vols, err := v.List()
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var space uint64
	for _, vol := range vols {
		if keep(vol) {
			continue
		}
		size := v.Size(vol.Name)
		if v.Remove(vol.Name, false) == nil {
			names = append(names, vol.Name)
			space += uint64(max(size, 0))
		}
	}
	return names, space, nil
}

// fill sets the Mountpoint, which volume.Volume does not serialise.
func (v *VolumeClient) fill(vol volume.Volume) volume.Volume {
	if vol.Name != "" {
		vol.Mountpoint = v.DataDir(vol.Name)
	}
	return vol
}

// DataDir is where the volume's data lives (the helper's layout).
func (v *VolumeClient) DataDir(name string) string {
	return filepath.Join(v.c.opts.Root, "volumes", name, "_data")
}

// EventClient is events.Log through the helper.
type EventClient struct{ c *Client }

// Append is events.Log.Append through the helper.
func (e *EventClient) Append(ev events.Event) error {
	return e.c.do(context.Background(), OpEventAppend, EventAppendArgs{Event: ev}, nil)
}

// Read is events.Log.Read through the helper; PollInterval is the
// helper's.
func (e *EventClient) Read(ctx context.Context, o events.ReadOptions, fn func(events.Event) error) error {
	return e.c.doStream(ctx, OpEventRead, EventReadArgs{Since: o.Since, Until: o.Until, Follow: o.Follow}, nil, func(r Reply) error {
		if r.Kind == KindEvent && r.Event != nil {
			return fn(*r.Event)
		}
		return nil
	})
}

// HostClient is the API server's container-file operations through the
// helper.
type HostClient struct{ c *Client }

// ExitStatus asks for the exit code the monitor recorded.
func (h *HostClient) ExitStatus(id string) (int, bool) {
	var out ExitResult
	if h.c.do(context.Background(), OpContainerExit, IDArgs{ID: id}, &out) != nil {
		return 0, false
	}
	return out.Code, out.OK
}

// LogExists asks whether the container's log exists.
func (h *HostClient) LogExists(id string) bool {
	var ok bool
	return h.c.do(context.Background(), OpContainerLogReady, IDArgs{ID: id}, &ok) == nil && ok
}

// FollowLog streams the log's entries from since until the container stops.
func (h *HostClient) FollowLog(ctx context.Context, id string, since time.Time, fn func(monitor.LogEntry) error) error {
	return h.c.doStream(ctx, OpContainerFollow, FollowArgs{ID: id, Since: since}, nil, func(r Reply) error {
		if r.Kind == KindLog && r.Entry != nil {
			return fn(monitor.LogEntry{Time: r.Entry.Time, Stream: r.Entry.Stream, Data: r.Entry.Data})
		}
		return nil
	})
}

// DialAttach returns a connection to the monitor's stdin socket, which
// the helper dials and passes over (SCM_RIGHTS).
func (h *HostClient) DialAttach(ctx context.Context, id string) (net.Conn, error) {
	_, fd, err := h.c.call(ctx, OpContainerStdin, IDArgs{ID: id}, nil)
	if err != nil {
		return nil, err
	}
	if fd < 0 {
		return nil, fmt.Errorf("helper sent no attach socket: %w", errdefs.ErrUnknown)
	}
	f := os.NewFile(uintptr(fd), "attach")
	defer f.Close()
	return net.FileConn(f)
}
