// Package fetcher moves registry I/O out of the root process. A pull's
// network side — go-containerregistry's remote client, HTTP, TLS, token
// auth, manifests as the registry serves them — runs in a fetcher: a child
// process (a re-exec of the berth binary, `berth fetcher`) started as an
// unprivileged uid with no capabilities, an empty bounding set and
// no_new_privs, whenever the caller is root. The fetcher streams every
// blob it downloads to the parent over a pipe in a small framed protocol;
// the parent (image.Pull) checks each blob against the digest it expects,
// commits it to the content store and renders progress. When the caller is
// not root, the same code runs in-process over in-memory pipes.
//
// Wire format, both directions: a frame is
//
//	uint32 big-endian header length H (1..MaxHeader)
//	uint32 big-endian payload length P (0..MaxPayload; >0 only for "data")
//	H bytes of JSON (a Frame, unknown fields rejected)
//	P bytes of payload
//
// Conversations: the parent sends one "request"; its Op says what follows.
//
//   - pull (Op ""): the fetcher answers with blob streams ("blob" header,
//     "data" chunks, "end") for the index (if any), the platform's manifest
//     and the config, then waits for "fetch" (the layer digests the store
//     lacks), streams those layers (interleaved, up to Request.Concurrency
//     at once) and ends with "done".
//   - push: the parent passes the blobs as read-only file descriptors
//     (Options.Files; the fetcher never sees a path) and describes them in
//     Request.Push; the fetcher uploads the layers the registry lacks (up
//     to Request.Concurrency at once), the config and then the manifest,
//     reporting each layer's state in "progress" frames, and ends with
//     "done".
//   - login: the fetcher checks Request.Auth against Request.Registry's
//     /v2/ endpoint (HTTP basic or the token flow) and answers "done".
//   - tags: the fetcher lists the tags of the repository Request.Reference
//     in "tags" frames (in the registry's order) and ends with "done".
//
// A failure at any point is one "error" frame carrying an errdefs category
// and a one-line message.
package fetcher

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Frame types.
const (
	TypeRequest = "request" // parent → fetcher, first frame: Request
	TypeFetch   = "fetch"   // parent → fetcher: Digests of the layers to send
	TypeBlob    = "blob"    // fetcher → parent: stream ID starts: Kind, Digest, Size, MediaType
	TypeData    = "data"    // fetcher → parent: the next Payload bytes of stream ID
	TypeEnd     = "end"     // fetcher → parent: stream ID is complete
	TypeError   = "error"   // fetcher → parent: the pull failed: Category, Message
	TypeDone    = "done"    // fetcher → parent: the request is complete
	// TypeProgress reports a pushed layer's state: Digest, Status (one of
	// the Status constants), Current and Size (bytes, while "Pushing"),
	// From (the repository a "Mounted from" layer came from).
	TypeProgress = "progress"
	// TypeTags carries the next 1..maxTagsPerFrame tags of a tags request.
	TypeTags = "tags"
)

// Request operations (Request.Op).
const (
	OpPull  = ""      // download an image (the default)
	OpPush  = "push"  // upload an image from the parent's blobs
	OpLogin = "login" // check a credential against a registry
	OpTags  = "tags"  // list a repository's tags
)

// Status values of a progress frame: Docker's push status texts.
const (
	StatusPreparing = "Preparing"
	StatusWaiting   = "Waiting"
	StatusPushing   = "Pushing"
	StatusExists    = "Layer already exists"
	StatusMounted   = "Mounted from"
	StatusPushed    = "Pushed"
)

// Blob kinds of a "blob" frame.
const (
	KindIndex    = "index"
	KindManifest = "manifest"
	KindConfig   = "config"
	KindLayer    = "layer"
)

// Limits of the wire format, in bytes.
const (
	// MaxHeader bounds a frame's JSON header.
	MaxHeader = 64 << 10
	// MaxPayload bounds one data frame's payload.
	MaxPayload = 1 << 20
	// chunkSize is how much of a blob one data frame carries when the
	// fetcher sends it: big enough that framing costs little, small enough
	// for smooth progress on slow links.
	chunkSize = 256 << 10
	// maxMessage bounds an error frame's message.
	maxMessage = 4 << 10
	// maxDigests bounds a fetch frame's list, and a push's layers.
	maxDigests = 4096
	// maxTagsPerFrame bounds a tags frame's list.
	maxTagsPerFrame = 256
	// maxMountFrom bounds a pushed layer's mount candidates.
	maxMountFrom = 8
)

// Frame is one message of the protocol. Which fields are meaningful
// depends on Type (see the Type constants); Decoder.Next rejects frames
// that leave required fields empty.
type Frame struct {
	Type string `json:"type"`
	// ID names a blob stream (blob, data, end); streams are numbered from 1.
	ID uint32 `json:"id,omitempty"`
	// Kind, Digest, Size (bytes) and MediaType describe a blob stream, as
	// the registry described it.
	Kind      string `json:"kind,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Size      int64  `json:"size,omitempty"`
	MediaType string `json:"mediaType,omitempty"`
	// Category (an errdefs category name, see Categories) and Message
	// describe an error frame.
	Category string `json:"category,omitempty"`
	Message  string `json:"message,omitempty"`
	// Request is the request frame's body.
	Request *Request `json:"request,omitempty"`
	// Digests lists the layers a fetch frame asks for.
	Digests []string `json:"digests,omitempty"`
	// Status, Current (bytes sent so far) and From describe a progress
	// frame (Digest names the layer, Size its length in bytes).
	Status  string `json:"status,omitempty"`
	Current int64  `json:"current,omitempty"`
	From    string `json:"from,omitempty"`
	// Tags are a tags frame's tag names.
	Tags []string `json:"tags,omitempty"`
	// Payload is a data frame's bytes (not part of the JSON header).
	Payload []byte `json:"-"`
}

// Request is what the parent asks the fetcher to do.
type Request struct {
	// Op is the operation (OpPull, OpPush, OpLogin, OpTags).
	Op string `json:"op,omitempty"`
	// Reference is normalized ("docker.io/library/busybox:latest",
	// "host:5000/repo@sha256:…"): the image to pull or push (a push
	// needs a tag), or the repository whose tags to list. Empty for login.
	Reference string `json:"reference,omitempty"`
	// Registry is the host[:port] a login checks; empty otherwise.
	Registry string `json:"registry,omitempty"`
	// Insecure allows plain HTTP and unverified TLS.
	Insecure bool `json:"insecure,omitempty"`
	// OS, Architecture and Variant select a manifest from an index.
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
	// Auth is the credential for the reference's registry, resolved by the
	// parent (which can read the caller's docker config); nil: anonymous.
	Auth *Auth `json:"auth,omitempty"`
	// Concurrency is how many layers download (default 3) or upload
	// (default 5, as Docker) at once.
	Concurrency int `json:"concurrency,omitempty"`
	// Push describes the blobs of a push; nil otherwise.
	Push *PushRequest `json:"push,omitempty"`
}

// PushRequest describes what a push uploads. The blobs' contents are the
// file descriptors the parent passed (Options.Files), in this order: the
// manifest, the config, then Layers; each is read from offset 0 for Size
// bytes.
type PushRequest struct {
	Manifest Blob `json:"manifest"`
	Config   Blob `json:"config"`
	// Layers are the distinct layers, base first.
	Layers []Blob `json:"layers,omitempty"`
}

// Blob is one blob of a push: its digest, size in bytes and media type,
// and for a layer the repositories of the same registry ("library/x")
// that are known to hold it, from which the registry may mount it
// instead of receiving it again.
type Blob struct {
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	MediaType string   `json:"mediaType"`
	MountFrom []string `json:"mountFrom,omitempty"`
}

// Files is how many file descriptors a push request needs.
func (p *PushRequest) Files() int { return 2 + len(p.Layers) }

// Auth is a registry credential in docker config.json's terms.
type Auth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// validate checks the invariants of f's type. It is what keeps a
// misbehaving peer's frames from reaching the parent's logic malformed.
func (f *Frame) validate() error {
	bad := func(why string) error {
		return fmt.Errorf("fetcher protocol: %s frame: %s: %w", f.Type, why, errdefs.ErrDataLoss)
	}
	if len(f.Payload) > 0 && f.Type != TypeData {
		return bad("unexpected payload")
	}
	switch f.Type {
	case TypeRequest:
		if f.Request == nil {
			return bad("no request")
		}
		if why := f.Request.invalid(); why != "" {
			return bad(why)
		}
	case TypeFetch:
		if len(f.Digests) > maxDigests {
			return bad("too many digests")
		}
		for _, d := range f.Digests {
			if digest.Digest(d).Validate() != nil {
				return bad("malformed digest")
			}
		}
	case TypeBlob:
		if f.ID == 0 {
			return bad("stream ID 0")
		}
		switch f.Kind {
		case KindIndex, KindManifest, KindConfig, KindLayer:
		default:
			return bad("unknown kind")
		}
		if digest.Digest(f.Digest).Validate() != nil {
			return bad("malformed digest")
		}
		if f.Size < 0 {
			return bad("negative size")
		}
	case TypeData:
		if f.ID == 0 || len(f.Payload) == 0 {
			return bad("empty")
		}
	case TypeEnd:
		if f.ID == 0 {
			return bad("stream ID 0")
		}
	case TypeError:
		if len(f.Message) > maxMessage {
			return bad("message too long")
		}
	case TypeProgress:
		if digest.Digest(f.Digest).Validate() != nil {
			return bad("malformed digest")
		}
		if f.Current < 0 || f.Size < 0 {
			return bad("negative size")
		}
		switch f.Status {
		case StatusPreparing, StatusWaiting, StatusPushing, StatusExists, StatusPushed:
			if f.From != "" {
				return bad("from without mount")
			}
		case StatusMounted:
			if !validRepoPath(f.From) {
				return bad("malformed repository")
			}
		default:
			return bad("unknown status")
		}
	case TypeTags:
		if len(f.Tags) == 0 || len(f.Tags) > maxTagsPerFrame {
			return bad("tag count out of range")
		}
		for _, t := range f.Tags {
			if !tagRegexp.MatchString(t) {
				return bad("malformed tag")
			}
		}
	case TypeDone:
	default:
		return fmt.Errorf("fetcher protocol: unknown frame type %q: %w", f.Type, errdefs.ErrDataLoss)
	}
	return nil
}

// invalid says what is wrong with r for its Op, or "" when nothing is.
func (r *Request) invalid() string {
	if r.Concurrency < 0 {
		return "negative concurrency"
	}
	switch r.Op {
	case OpPull, OpTags:
		if r.Reference == "" {
			return "no reference"
		}
		if r.Push != nil || r.Registry != "" {
			return "fields of another op"
		}
	case OpPush:
		if r.Reference == "" {
			return "no reference"
		}
		if r.Push == nil || r.Registry != "" {
			return "no push description"
		}
		if len(r.Push.Layers) > maxDigests {
			return "too many layers"
		}
		for _, b := range append([]Blob{r.Push.Manifest, r.Push.Config}, r.Push.Layers...) {
			if digest.Digest(b.Digest).Validate() != nil || b.Size < 0 || len(b.MediaType) > 255 {
				return "malformed blob"
			}
			if len(b.MountFrom) > maxMountFrom {
				return "too many mount sources"
			}
			for _, from := range b.MountFrom {
				if !validRepoPath(from) {
					return "malformed mount source"
				}
			}
		}
		if len(r.Push.Manifest.MountFrom)+len(r.Push.Config.MountFrom) > 0 {
			return "mount source for a manifest or config"
		}
	case OpLogin:
		if r.Registry == "" || r.Reference != "" || r.Push != nil {
			return "login needs a registry only"
		}
		if len(r.Registry) > 255 || strings.ContainsAny(r.Registry, "/ \t\r\n@?#") {
			return "malformed registry"
		}
	default:
		return "unknown op"
	}
	return ""
}

// Tags and repository paths as the distribution spec defines them.
var (
	tagRegexp  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	pathRegexp = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// validRepoPath reports whether p is a repository path ("library/x")
// that is safe to show and to put in a URL query.
func validRepoPath(p string) bool { return len(p) <= 255 && pathRegexp.MatchString(p) }

// Decoder reads frames from a stream.
type Decoder struct {
	r   io.Reader
	hdr [8]byte
	buf []byte // reused for every frame
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// Next reads one frame. At a clean end of stream it returns io.EOF; a
// stream cut inside a frame gives io.ErrUnexpectedEOF; a frame that breaks
// the format or its type's invariants gives an error matching
// errdefs.ErrDataLoss. It never allocates more than MaxHeader+MaxPayload
// bytes for one frame. A data frame's Payload aliases the decoder's buffer:
// it is valid until the next call to Next.
func (d *Decoder) Next() (Frame, error) {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return Frame{}, err
	}
	hlen := binary.BigEndian.Uint32(d.hdr[:4])
	plen := binary.BigEndian.Uint32(d.hdr[4:])
	if hlen == 0 || hlen > MaxHeader || plen > MaxPayload {
		return Frame{}, fmt.Errorf("fetcher protocol: frame lengths %d+%d out of range: %w", hlen, plen, errdefs.ErrDataLoss)
	}
	need := int(hlen) + int(plen)
	if cap(d.buf) < need {
		d.buf = make([]byte, need)
	}
	buf := d.buf[:need]
	if _, err := io.ReadFull(d.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	var f Frame
	dec := json.NewDecoder(bytes.NewReader(buf[:hlen]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Frame{}, fmt.Errorf("fetcher protocol: frame header: %v: %w", err, errdefs.ErrDataLoss)
	}
	if dec.More() {
		return Frame{}, fmt.Errorf("fetcher protocol: trailing data in frame header: %w", errdefs.ErrDataLoss)
	}
	if plen > 0 {
		f.Payload = buf[hlen:need:need]
	}
	if err := f.validate(); err != nil {
		return Frame{}, err
	}
	return f, nil
}

// Encoder writes frames to a stream. It is safe for concurrent use: each
// frame is written whole.
type Encoder struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEncoder returns an encoder writing to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes f. A frame that Decoder.Next would reject is refused with
// errdefs.ErrInvalidArgument and nothing is written.
func (e *Encoder) Encode(f Frame) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(f.Payload) > MaxPayload {
		return fmt.Errorf("fetcher protocol: payload of %d bytes: %w", len(f.Payload), errdefs.ErrInvalidArgument)
	}
	hdr, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if len(hdr) > MaxHeader {
		return fmt.Errorf("fetcher protocol: header of %d bytes: %w", len(hdr), errdefs.ErrInvalidArgument)
	}
	buf := make([]byte, 8, 8+len(hdr)+len(f.Payload))
	binary.BigEndian.PutUint32(buf[:4], uint32(len(hdr)))
	binary.BigEndian.PutUint32(buf[4:], uint32(len(f.Payload)))
	buf = append(append(buf, hdr...), f.Payload...)
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err = e.w.Write(buf)
	return err
}

// dataFrames builds the data frames of one stream in place: its buffer
// holds the frame's lengths and JSON header followed by room for the
// payload, so that a payload read straight into Payload() goes out in one
// write, with no copy.
type dataFrames struct {
	buf []byte
	off int // where the payload starts
}

// newDataFrames prepares data frames for stream id carrying up to chunk
// (1..MaxPayload) bytes each.
func newDataFrames(id uint32, chunk int) (*dataFrames, error) {
	f := Frame{Type: TypeData, ID: id, Payload: []byte{0}}
	if err := f.validate(); err != nil || chunk < 1 || chunk > MaxPayload {
		return nil, fmt.Errorf("fetcher protocol: data frames of %d bytes for stream %d: %w", chunk, id, errdefs.ErrInvalidArgument)
	}
	hdr, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 8+len(hdr)+chunk)
	binary.BigEndian.PutUint32(buf[:4], uint32(len(hdr)))
	copy(buf[8:], hdr)
	return &dataFrames{buf: buf, off: 8 + len(hdr)}, nil
}

// Payload is where the next frame's payload goes.
func (d *dataFrames) Payload() []byte { return d.buf[d.off:] }

// encodeData writes a data frame carrying the first n (1..len(Payload()))
// bytes of d's payload buffer.
func (e *Encoder) encodeData(d *dataFrames, n int) error {
	if n < 1 || n > len(d.buf)-d.off {
		return fmt.Errorf("fetcher protocol: data frame of %d bytes: %w", n, errdefs.ErrInvalidArgument)
	}
	binary.BigEndian.PutUint32(d.buf[4:8], uint32(n))
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.w.Write(d.buf[:d.off+n])
	return err
}
