// Package privsep splits `berth system service` in two processes when it
// is started as root: the Docker Engine API server (HTTP, JSON from the
// network, TLS) runs as an unprivileged uid with no capabilities, and a
// small privileged helper (the root parent) does the engine work it asks
// for. This package is the protocol (the closed set of typed requests,
// the Op constants with their argument and result types, the framing and
// the descriptors that ride on it) and the unprivileged side (Client);
// package privsep/helper is the privileged side, which decodes and
// validates each request and runs it on the engine. SPEC.md in this
// directory is the protocol's description.
//
// Transport. The two processes share one control socket (a
// SOCK_SEQPACKET socketpair). Each call gets its own connection: the
// client makes a SOCK_STREAM socketpair, sends one end to the helper as
// the only file descriptor (SCM_RIGHTS) of a 1-byte control message, and
// speaks on the other end:
//
//	client → helper: one request frame
//	helper → client: zero or more stream frames, then one result frame
//
// A frame is a uint32 big-endian length N followed by N bytes of JSON.
// Requests are at most MaxRequest bytes, replies at most MaxReply.
// Closing the call connection cancels the call.
package privsep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Limits of the wire format, in bytes.
const (
	// MaxRequest bounds a request frame (the client's only frame).
	MaxRequest = 1 << 20
	// MaxReply bounds a reply frame (a stream chunk or a result).
	MaxReply = 64 << 20
	// MaxChunk is how much stream output one frame carries.
	MaxChunk = 32 << 10
	// maxMessage bounds an error message.
	maxMessage = 4 << 10
)

// Op names one request type. The set is closed: a request naming any
// other op is refused with errdefs.ErrInvalidArgument before anything runs.
type Op string

// The requests. Each op's argument type is the one named in ops; the
// result types are documented in SPEC.md.
const (
	OpOptions           Op = "options"
	OpContainerCreate   Op = "container.create"
	OpContainerGet      Op = "container.get"
	OpContainerInspect  Op = "container.inspect"
	OpContainerList     Op = "container.list"
	OpContainerStart    Op = "container.start"
	OpContainerStop     Op = "container.stop"
	OpContainerKill     Op = "container.kill"
	OpContainerRemove   Op = "container.remove"
	OpContainerLogs     Op = "container.logs"
	OpContainerExit     Op = "container.exit-status"
	OpContainerLogReady Op = "container.log-exists"
	OpContainerFollow   Op = "container.follow-log"
	OpContainerResize   Op = "container.resize"
	OpContainerStdin    Op = "container.attach-stdin"
	OpImagePull         Op = "image.pull"
	OpImageList         Op = "image.list"
	OpImageInspect      Op = "image.inspect"
	OpImageRemove       Op = "image.remove"
	OpImageTag          Op = "image.tag"
	OpNetworkDefault    Op = "network.ensure-default"
	OpNetworkList       Op = "network.list"
	OpNetworkInspect    Op = "network.inspect"
	OpNetworkCreate     Op = "network.create"
	OpNetworkRemove     Op = "network.remove"
	OpNetworkPrune      Op = "network.prune"
	OpNetworkEndpoints  Op = "network.endpoints"
	OpVolumeCreate      Op = "volume.create"
	OpVolumeGet         Op = "volume.get"
	OpVolumeList        Op = "volume.list"
	OpVolumeRemove      Op = "volume.remove"
	OpVolumeSize        Op = "volume.size"
	OpEventAppend       Op = "event.append"
	OpEventRead         Op = "event.read"
)

// Argument types, one per op (ops maps each op to its own).

// NoArgs is the argument of ops that take none; it must be {} or absent.
type NoArgs struct{}

// RefArgs names a container, image, network or volume by name or ID.
type RefArgs struct {
	Ref string `json:"ref"`
}

// IDArgs names a container by its full 64-hex ID.
type IDArgs struct {
	ID string `json:"id"`
}

// CreateArgs is engine.CreateOptions without its Progress writer (pull
// progress comes back as stream frames).
type CreateArgs struct {
	Name        string                `json:"name"`
	Image       string                `json:"image"`
	Run         runtime.RunOptions    `json:"run"`
	AutoRemove  bool                  `json:"autoRemove"`
	Pull        string                `json:"pull"`
	Network     engine.NetworkRequest `json:"network"`
	Restart     engine.RestartPolicy  `json:"restart"`
	StopSignal  string                `json:"stopSignal"`
	StopTimeout *int                  `json:"stopTimeout"`
	LogDriver   string                `json:"logDriver"`
	LogOpts     map[string]string     `json:"logOpts"`
	Labels      map[string]string     `json:"labels"`
	// MakeBindSources are bind sources (each also the Source of a bind
	// in Run.Mounts) the engine creates as directories when missing, as
	// Docker does for HostConfig.Binds.
	MakeBindSources []string `json:"makeBindSources"`
	// Runtime is HostConfig.Runtime: "" (the engine's) or one of the
	// names engine.APIRuntimes lists (never a path: the helper runs it).
	Runtime string `json:"runtime,omitempty"`
}

// ListArgs is container.list's argument.
type ListArgs struct {
	All bool `json:"all"`
}

// StopArgs is container.stop's argument; Timeout nil means the
// container's own stop timeout.
type StopArgs struct {
	Ref     string         `json:"ref"`
	Signal  string         `json:"signal"`
	Timeout *time.Duration `json:"timeout"`
}

// KillArgs is container.kill's argument: Signal 1..64.
type KillArgs struct {
	Ref    string `json:"ref"`
	Signal int    `json:"signal"`
}

// RemoveArgs is container.remove's and image.remove's argument. Volumes
// (container.remove only) also removes the container's anonymous volumes
// that no other container uses (engine.RemoveWithVolumes, `rm -v`).
type RemoveArgs struct {
	Ref     string `json:"ref"`
	Force   bool   `json:"force"`
	Volumes bool   `json:"volumes"`
}

// LogsArgs is container.logs's argument (engine.LogOptions).
type LogsArgs struct {
	Ref        string    `json:"ref"`
	Follow     bool      `json:"follow"`
	Tail       int       `json:"tail"`
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until"`
	Timestamps bool      `json:"timestamps"`
}

// FollowArgs is container.follow-log's argument: the log's entries at or
// after Since, followed until the container is no longer running.
type FollowArgs struct {
	ID    string    `json:"id"`
	Since time.Time `json:"since"`
}

// InspectArgs is container.inspect's argument: with Size, the result's
// SizeRw and SizeRootFs are filled in (engine.InspectContainer).
type InspectArgs struct {
	Ref  string `json:"ref"`
	Size bool   `json:"size"`
}

// ResizeTTYArgs is container.resize's argument: the terminal's height and
// width in characters (0..65535).
type ResizeTTYArgs struct {
	Ref    string `json:"ref"`
	Height int    `json:"height"`
	Width  int    `json:"width"`
}

// PullArgs is image.pull's argument. Auth, when set, is the API
// client's credential (X-Registry-Auth) for this pull only; nil uses the
// helper's config.json.
type PullArgs struct {
	Ref      string            `json:"ref"`
	Platform string            `json:"platform"`
	Auth     *image.Credential `json:"auth,omitempty"`
}

// TagArgs is image.tag's argument.
type TagArgs struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// NetworkCreateArgs is network.create's argument (network.CreateOptions).
type NetworkCreateArgs struct {
	Options network.CreateOptions `json:"options"`
}

// VolumeCreateArgs is volume.create's argument.
type VolumeCreateArgs struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver"`
	Labels  map[string]string `json:"labels"`
	Options map[string]string `json:"options"`
}

// VolumeRemoveArgs is volume.remove's argument.
type VolumeRemoveArgs struct {
	Name  string `json:"name"`
	InUse bool   `json:"inUse"`
}

// EventAppendArgs is event.append's argument.
type EventAppendArgs struct {
	Event events.Event `json:"event"`
}

// EventReadArgs is event.read's argument (events.ReadOptions).
type EventReadArgs struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Follow bool      `json:"follow"`
}

// ops is the closed request set: each op and a constructor of its
// argument's zero value.
var ops = map[Op]func() any{
	OpOptions:           func() any { return &NoArgs{} },
	OpContainerCreate:   func() any { return &CreateArgs{} },
	OpContainerGet:      func() any { return &RefArgs{} },
	OpContainerInspect:  func() any { return &InspectArgs{} },
	OpContainerList:     func() any { return &ListArgs{} },
	OpContainerStart:    func() any { return &RefArgs{} },
	OpContainerStop:     func() any { return &StopArgs{} },
	OpContainerKill:     func() any { return &KillArgs{} },
	OpContainerRemove:   func() any { return &RemoveArgs{} },
	OpContainerLogs:     func() any { return &LogsArgs{} },
	OpContainerExit:     func() any { return &IDArgs{} },
	OpContainerLogReady: func() any { return &IDArgs{} },
	OpContainerFollow:   func() any { return &FollowArgs{} },
	OpContainerResize:   func() any { return &ResizeTTYArgs{} },
	OpContainerStdin:    func() any { return &IDArgs{} },
	OpImagePull:         func() any { return &PullArgs{} },
	OpImageList:         func() any { return &NoArgs{} },
	OpImageInspect:      func() any { return &RefArgs{} },
	OpImageRemove:       func() any { return &RemoveArgs{} },
	OpImageTag:          func() any { return &TagArgs{} },
	OpNetworkDefault:    func() any { return &NoArgs{} },
	OpNetworkList:       func() any { return &NoArgs{} },
	OpNetworkInspect:    func() any { return &RefArgs{} },
	OpNetworkCreate:     func() any { return &NetworkCreateArgs{} },
	OpNetworkRemove:     func() any { return &RefArgs{} },
	OpNetworkPrune:      func() any { return &NoArgs{} },
	OpNetworkEndpoints:  func() any { return &IDArgs{} },
	OpVolumeCreate:      func() any { return &VolumeCreateArgs{} },
	OpVolumeGet:         func() any { return &RefArgs{} },
	OpVolumeList:        func() any { return &NoArgs{} },
	OpVolumeRemove:      func() any { return &VolumeRemoveArgs{} },
	OpVolumeSize:        func() any { return &RefArgs{} },
	OpEventAppend:       func() any { return &EventAppendArgs{} },
	OpEventRead:         func() any { return &EventReadArgs{} },
	// The verbs of ops_verbs.go.
	OpContainerTop:      func() any { return &TopArgs{} },
	OpContainerStats:    func() any { return &StatsArgs{} },
	OpContainerPause:    func() any { return &RefArgs{} },
	OpContainerUnpause:  func() any { return &RefArgs{} },
	OpContainerRename:   func() any { return &RenameArgs{} },
	OpContainerPathStat: func() any { return &PathArgs{} },
	OpContainerCopyFrom: func() any { return &PathArgs{} },
	OpContainerCopyTo:   func() any { return &CopyToArgs{} },
	OpNetworkConnect:    func() any { return &ConnectArgs{} },
	OpNetworkDisconnect: func() any { return &DisconnectArgs{} },
	OpImagePush:         func() any { return &PushArgs{} },
	// The exec ops of exec.go.
	OpExecStart:  func() any { return &ExecStartArgs{} },
	OpExecResize: func() any { return &ResizeArgs{} },
}

// NewArgs returns a pointer to the zero value of op's argument type
// (*CreateArgs for container.create, …); false for an op outside the
// closed set.
func NewArgs(op Op) (any, bool) {
	mk, ok := ops[op]
	if !ok {
		return nil, false
	}
	return mk(), true
}

// Ops lists the closed request set, sorted.
func Ops() []Op {
	out := make([]Op, 0, len(ops))
	for op := range ops {
		out = append(out, op)
	}
	slices.Sort(out)
	return out
}

// WireRequest is a request frame's JSON: Args is op's argument, still
// encoded.
type WireRequest struct {
	Op   Op              `json:"op"`
	Args json.RawMessage `json:"args"`
}

// DecodeStrict decodes data into v rejecting unknown fields and trailing
// data (the decoding of every frame on both sides).
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// EncodeRequest is the request frame body for op with args (the client
// side of helper.DecodeRequest).
func EncodeRequest(op Op, args any) ([]byte, error) {
	a, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(WireRequest{Op: op, Args: a})
}

// Reply kinds: stream frames, then exactly one result or error frame.
const (
	KindStdout   = "stdout"   // Data: container output (logs)
	KindStderr   = "stderr"   // Data: container output (logs)
	KindProgress = "progress" // Data: Docker-style progress text (pull, create)
	KindLog      = "log"      // Entry: one log record (follow-log)
	KindEvent    = "event"    // Event: one event (event.read)
	KindResult   = "result"   // Result: the op's result JSON (null for none)
	KindError    = "error"    // Category, Message
)

// Reply is one helper → client frame.
type Reply struct {
	Kind     string          `json:"kind"`
	Data     []byte          `json:"data,omitempty"`
	Entry    *LogEntry       `json:"entry,omitempty"`
	Event    *events.Event   `json:"event,omitempty"`
	Result   json.RawMessage `json:"result,omitempty"`
	Category string          `json:"category,omitempty"`
	Message  string          `json:"message,omitempty"`
}

// LogEntry is one record of a container log (monitor.LogEntry).
type LogEntry struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Data   []byte    `json:"data"`
}

// NetworkView is a network with its endpoints (network.Network does not
// serialise its Endpoints).
type NetworkView struct {
	Network   network.Network    `json:"network"`
	Endpoints []network.Endpoint `json:"endpoints"`
}

// Result types of the ops that are not obvious from their names.
type (
	// ExitResult is container.exit-status's result: OK false when the
	// monitor has recorded no exit.
	ExitResult struct {
		Code int  `json:"code"`
		OK   bool `json:"ok"`
	}
	// PruneResult is a prune's result.
	PruneResult struct {
		Names []string `json:"names"`
	}
	// ImageInspectResult wraps image.inspect's Docker response.
	ImageInspectResult struct {
		Image imagetypes.InspectResponse `json:"image"`
	}
	// VolumeSizeResult is volume.size's result in bytes.
	VolumeSizeResult struct {
		Size int64 `json:"size"`
	}
	// VolumeList is volume.list's result.
	VolumeList struct {
		Volumes []volume.Volume `json:"volumes"`
	}
)

// categories are the errdefs categories an error frame can carry: the
// name on the wire, the category the client's error wraps, and the test
// that names a helper's error (the first that matches; none: "unknown").
var categories = []struct {
	name string
	cat  error
	is   func(error) bool
}{
	{"not-found", errdefs.ErrNotFound, errdefs.IsNotFound},
	{"already-exists", errdefs.ErrAlreadyExists, errdefs.IsAlreadyExists},
	{"invalid-argument", errdefs.ErrInvalidArgument, errdefs.IsInvalidArgument},
	{"conflict", errdefs.ErrConflict, errdefs.IsConflict},
	{"unavailable", errdefs.ErrUnavailable, errdefs.IsUnavailable},
	{"data-loss", errdefs.ErrDataLoss, errdefs.IsDataLoss},
	{"not-implemented", errdefs.ErrNotImplemented, errdefs.IsNotImplemented},
	{"failed-precondition", errdefs.ErrFailedPrecondition, errdefs.IsFailedPrecondition},
	{"permission-denied", errdefs.ErrPermissionDenied, errdefs.IsPermissionDenied},
	{"unauthenticated", errdefs.ErrUnauthenticated, errdefs.IsUnauthorized},
	{"aborted", errdefs.ErrAborted, errdefs.IsAborted},
	{"canceled", context.Canceled, func(err error) bool {
		return errdefs.IsCanceled(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	}},
	{"unknown", errdefs.ErrUnknown, errdefs.IsUnknown},
}

// categoryOf names err's errdefs category ("unknown" for none).
func categoryOf(err error) string {
	for _, c := range categories {
		if c.is(err) {
			return c.name
		}
	}
	return "unknown"
}

// RemoteError is an error the helper reported: its message as the engine
// wrote it, and its errdefs category (errors.Is matches the category).
type RemoteError struct {
	Message  string
	Category error
}

func (e *RemoteError) Error() string { return e.Message }
func (e *RemoteError) Unwrap() error { return e.Category }

// ErrorReply is the error frame for err: its errdefs category by name
// and its message cut to 4 KiB.
func ErrorReply(err error) Reply {
	msg := err.Error()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	return Reply{Kind: KindError, Category: categoryOf(err), Message: msg}
}

// replyError is the error an error frame stands for.
func replyError(r Reply) error {
	var cat error = errdefs.ErrUnknown
	for _, c := range categories {
		if c.name == r.Category {
			cat = c.cat
		}
	}
	return &RemoteError{Message: r.Message, Category: cat}
}
