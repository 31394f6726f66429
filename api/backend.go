package api

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/volume"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Backend is what the handlers need of an engine. *engine.Engine satisfies
// it in-process today; a privilege-separated client (the service serving
// as an unprivileged uid, a root helper doing the work) can satisfy it
// later without changing a handler. Errors carry errdefs categories, which
// the server maps to HTTP statuses in one place (statusOf).
type Backend interface {
	Options() engine.Options

	Create(ctx context.Context, opts engine.CreateOptions) (engine.Container, error)
	Container(ctx context.Context, ref string) (engine.Container, error)
	Containers(ctx context.Context, all bool) ([]engine.Container, error)
	// InspectContainer is the container in the shape of Docker's GET
	// /containers/{id}/json for the newest API version (with size, its
	// SizeRw and SizeRootFs); the handler adapts it to older versions.
	InspectContainer(ctx context.Context, ref string, size bool) (containertypes.InspectResponse, error)
	StartDetached(ctx context.Context, ref string) error
	StopWithSignal(ctx context.Context, ref, signal string, timeout *time.Duration) error
	Kill(ctx context.Context, ref string, sig syscall.Signal) error
	Remove(ctx context.Context, ref string, force bool) error
	// RemoveWithVolumes is Remove and then the removal of the
	// container's anonymous volumes that no other container uses (`rm -v`).
	RemoveWithVolumes(ctx context.Context, ref string, force bool) error
	// ResizeTTY sets the terminal size (rows, columns) of the running
	// container: errdefs.ErrNotFound, errdefs.ErrConflict when not running.
	ResizeTTY(ctx context.Context, ref string, height, width uint16) error
	Logs(ctx context.Context, ref string, opts engine.LogOptions, stdout, stderr io.Writer) error
	LogPath(id string) string

	Pull(ctx context.Context, ref string, opts engine.PullOptions) (image.Record, error)
	Push(ctx context.Context, ref string, opts engine.PushOptions) (engine.PushResult, error)
	Images(ctx context.Context) ([]engine.Image, error)
	InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error)
	RemoveImage(ctx context.Context, ref string, force bool) ([]engine.RemovedImage, error)
	Tag(ctx context.Context, source, target string) error

	Networks() (*network.Manager, error)

	// The verbs of container_ops.go (top, stats, pause, rename, cp,
	// network connect).
	Top(ctx context.Context, ref string, psArgs []string) (engine.TopResult, error)
	Stats(ctx context.Context, refs []string, interval time.Duration) ([]engine.Stats, error)
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Rename(ctx context.Context, ref, newName string) error
	StatContainerPath(ctx context.Context, ref, p string, followLink bool) (engine.PathStat, error)
	CopyFromContainer(ctx context.Context, ref, src string, opts engine.CopyOptions, w io.Writer) error
	CopyToContainer(ctx context.Context, ref, dstDir string, r io.Reader, opts engine.CopyOptions) error
	ConnectNetwork(ctx context.Context, netRef, ctrRef string, o engine.ConnectOptions) error
	DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error
}

var (
	_ Backend  = (*engine.Engine)(nil)
	_ Networks = (*network.Manager)(nil)
	_ Volumes  = (*volume.Store)(nil)
	_ Events   = (*events.Log)(nil)
)

// Networks is what the handlers need of the network manager.
// *network.Manager satisfies it; a privilege-separated service passes one
// that asks the privileged helper.
type Networks interface {
	EnsureDefault(ctx context.Context) (network.Network, error)
	List(ctx context.Context) ([]network.Network, error)
	Inspect(ctx context.Context, nameOrID string) (network.Network, error)
	Create(ctx context.Context, o network.CreateOptions) (network.Network, error)
	Remove(ctx context.Context, nameOrID string) error
	Prune(ctx context.Context) ([]string, error)
	Endpoints(ctx context.Context, containerID string) ([]network.Endpoint, error)
}

// Volumes is what the handlers need of the volume store; *volume.Store
// satisfies it.
type Volumes interface {
	Create(name, driver string, labels, options map[string]string) (volume.Volume, error)
	Get(name string) (volume.Volume, error)
	List() ([]volume.Volume, error)
	Remove(name string, inUse bool) error
	Size(name string) int64
	Prune(keep func(volume.Volume) bool) ([]string, uint64, error)
	DataDir(name string) string
}

// Events is what the handlers need of the event log; *events.Log
// satisfies it.
type Events interface {
	Append(ev events.Event) error
	Read(ctx context.Context, opts events.ReadOptions, fn func(events.Event) error) error
}

// Host is what the handlers do with a container's files beside the
// engine (stream.Host: the monitor's exit status, the log while a run is
// attached, the stdin socket). The default (Options.Host nil) reads the
// files under the backend's RunRoot directly.
type Host = stream.Host
