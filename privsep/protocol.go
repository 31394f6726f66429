// Package privsep splits `berth system service` in two processes when it
// is started as root: the Docker Engine API server (HTTP, JSON from the
// network, TLS) runs as an unprivileged uid with no capabilities, and a
// small privileged helper (the root parent) does the engine work it asks
// for. The helper accepts a closed set of typed requests (the Op
// constants), checks each (Validate), and runs it on the engine. SPEC.md
// in this directory is the protocol's description.
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
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
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
	// chunk is how much stream output one frame carries.
	chunk = 32 << 10
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
	LogMaxSize  int64                 `json:"logMaxSize"`
	Labels      map[string]string     `json:"labels"`
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

// RemoveArgs is container.remove's and image.remove's argument.
type RemoveArgs struct {
	Ref   string `json:"ref"`
	Force bool   `json:"force"`
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

// ResizeArgs is container.resize's argument: the terminal's height and
// width in characters (0..65535).
type ResizeArgs struct {
	ID     string `json:"id"`
	Height int    `json:"height"`
	Width  int    `json:"width"`
}

// PullArgs is image.pull's argument.
type PullArgs struct {
	Ref      string `json:"ref"`
	Platform string `json:"platform"`
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
	OpContainerList:     func() any { return &ListArgs{} },
	OpContainerStart:    func() any { return &RefArgs{} },
	OpContainerStop:     func() any { return &StopArgs{} },
	OpContainerKill:     func() any { return &KillArgs{} },
	OpContainerRemove:   func() any { return &RemoveArgs{} },
	OpContainerLogs:     func() any { return &LogsArgs{} },
	OpContainerExit:     func() any { return &IDArgs{} },
	OpContainerLogReady: func() any { return &IDArgs{} },
	OpContainerFollow:   func() any { return &FollowArgs{} },
	OpContainerResize:   func() any { return &ResizeArgs{} },
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
	OpContainerTop:      newTopArgs,
	OpContainerStats:    newStatsArgs,
	OpContainerPause:    newRefArgs,
	OpContainerUnpause:  newRefArgs,
	OpContainerRename:   newRenameArgs,
	OpContainerPathStat: newPathArgs,
	OpContainerCopyFrom: newPathArgs,
	OpContainerCopyTo:   newCopyToArgs,
	OpNetworkConnect:    newConnectArgs,
	OpNetworkDisconnect: newDisconnectArgs,
	OpImagePush:         newPushArgs,
	// The exec ops of exec.go.
	OpExecStart:  newExecStartArgs,
	OpExecResize: newResizeArgs,
}

// Request is one decoded, validated request: Op and a pointer to its
// argument type (*CreateArgs for container.create, …).
type Request struct {
	Op   Op
	Args any
}

// wireRequest is a request frame's JSON.
type wireRequest struct {
	Op   Op              `json:"op"`
	Args json.RawMessage `json:"args"`
}

// strict decodes data into v rejecting unknown fields and trailing data.
func strict(data []byte, v any) error {
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

// DecodeRequest parses and checks one request frame body (without its
// length prefix). Anything but a known op with a well-formed argument that
// passes Validate gives errdefs.ErrInvalidArgument; nothing is run.
func DecodeRequest(body []byte, c Confinement) (Request, error) {
	if len(body) > MaxRequest {
		return Request{}, fmt.Errorf("request of %d bytes exceeds %d: %w", len(body), MaxRequest, errdefs.ErrInvalidArgument)
	}
	var w wireRequest
	if err := strict(body, &w); err != nil {
		return Request{}, fmt.Errorf("malformed request: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	mk, ok := ops[w.Op]
	if !ok {
		return Request{}, fmt.Errorf("unknown request %.64q: %w", w.Op, errdefs.ErrInvalidArgument)
	}
	args := mk()
	if len(w.Args) > 0 && !bytes.Equal(bytes.TrimSpace(w.Args), []byte("null")) {
		if err := strict(w.Args, args); err != nil {
			return Request{}, fmt.Errorf("malformed %s arguments: %v: %w", w.Op, err, errdefs.ErrInvalidArgument)
		}
	}
	if err := Validate(w.Op, args, c); err != nil {
		return Request{}, err
	}
	return Request{Op: w.Op, Args: args}, nil
}

// EncodeRequest is the request frame body for op with args (the client
// side of DecodeRequest).
func EncodeRequest(op Op, args any) ([]byte, error) {
	a, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireRequest{Op: op, Args: a})
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

// writeFrame writes body with its length prefix.
func writeFrame(w io.Writer, body []byte) error {
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame of at most max bytes. A longer frame gives
// errdefs.ErrInvalidArgument without reading its body.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d: %w", n, max, errdefs.ErrInvalidArgument)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// categories are the errdefs categories an error frame can carry, by name.
var categories = map[string]error{
	"not-found": errdefs.ErrNotFound, "already-exists": errdefs.ErrAlreadyExists,
	"invalid-argument": errdefs.ErrInvalidArgument, "conflict": errdefs.ErrConflict,
	"unavailable": errdefs.ErrUnavailable, "data-loss": errdefs.ErrDataLoss,
	"not-implemented": errdefs.ErrNotImplemented, "failed-precondition": errdefs.ErrFailedPrecondition,
	"permission-denied": errdefs.ErrPermissionDenied, "unauthenticated": errdefs.ErrUnauthenticated,
	"aborted": errdefs.ErrAborted, "canceled": context.Canceled, "unknown": errdefs.ErrUnknown,
}

// categoryOf names err's errdefs category ("unknown" for none).
func categoryOf(err error) string {
	switch {
	case errdefs.IsNotFound(err):
		return "not-found"
	case errdefs.IsAlreadyExists(err):
		return "already-exists"
	case errdefs.IsInvalidArgument(err):
		return "invalid-argument"
	case errdefs.IsConflict(err):
		return "conflict"
	case errdefs.IsUnavailable(err):
		return "unavailable"
	case errdefs.IsDataLoss(err):
		return "data-loss"
	case errdefs.IsNotImplemented(err):
		return "not-implemented"
	case errdefs.IsFailedPrecondition(err):
		return "failed-precondition"
	case errdefs.IsPermissionDenied(err):
		return "permission-denied"
	case errdefs.IsUnauthorized(err):
		return "unauthenticated"
	case errdefs.IsAborted(err):
		return "aborted"
	case errdefs.IsCanceled(err), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
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

// errorReply is the error frame for err.
func errorReply(err error) Reply {
	msg := err.Error()
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	return Reply{Kind: KindError, Category: categoryOf(err), Message: msg}
}

// replyError is the error an error frame stands for.
func replyError(r Reply) error {
	cat, ok := categories[r.Category]
	if !ok {
		cat = errdefs.ErrUnknown
	}
	return &RemoteError{Message: r.Message, Category: cat}
}
