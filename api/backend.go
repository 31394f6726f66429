package api

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/network"
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
	StartDetached(ctx context.Context, ref string) error
	StopWithSignal(ctx context.Context, ref, signal string, timeout *time.Duration) error
	Kill(ctx context.Context, ref string, sig syscall.Signal) error
	Remove(ctx context.Context, ref string, force bool) error
	Logs(ctx context.Context, ref string, opts engine.LogOptions, stdout, stderr io.Writer) error
	LogPath(id string) string

	Pull(ctx context.Context, ref string, opts engine.PullOptions) (image.Record, error)
	Push(ctx context.Context, ref string, opts engine.PushOptions) (engine.PushResult, error)
	Images(ctx context.Context) ([]engine.Image, error)
	InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error)
	RemoveImage(ctx context.Context, ref string, force bool) ([]engine.RemovedImage, error)
	Tag(ctx context.Context, source, target string) error

	Networks() (*network.Manager, error)
}

var _ Backend = (*engine.Engine)(nil)
