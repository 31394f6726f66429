// Package images serves package api's image routes (list, pull, import,
// inspect, tag, push, history, remove, prune, save, load, login) and the
// container-filesystem routes that read or make images (changes, export,
// commit), in the shapes of the Docker Engine API (docs/v1.50.yaml).
// Errors are answered through package wire, progress through package
// stream.
package images

import (
	"context"
	"net/http"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	"github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Backend is what the image routes need of the engine; api.Backend
// includes it. The routes of ops.go also need Ops.
type Backend interface {
	convert.ImageLookup
	Images(ctx context.Context) ([]engine.Image, error)
	Containers(ctx context.Context, all bool) ([]engine.Container, error)
	Pull(ctx context.Context, ref string, opts engine.PullOptions) (image.Record, error)
	Push(ctx context.Context, ref string, opts engine.PushOptions) (engine.PushResult, error)
	RemoveImage(ctx context.Context, ref string, force bool) ([]engine.RemovedImage, error)
	Tag(ctx context.Context, source, target string) error
}

// Handler serves the image routes over B.
type Handler struct {
	// B does the work; when it is also an Ops, the routes of ops.go are
	// served, else they answer 501.
	B Backend
	// Logf logs server-side faults (a tar stream broken after its
	// header); required.
	Logf func(format string, args ...any)
}

// Register adds the image routes to m. Image names hold slashes, so
// /images/NAME/… is dispatched by hand (imageRoute); the more specific
// patterns (/images/json, /images/create, /images/prune, /images/get,
// /images/load) take precedence over it.
func (h *Handler) Register(m *http.ServeMux) {
	m.HandleFunc("GET /images/json", h.listImages)
	m.HandleFunc("POST /images/create", h.pullImage)
	m.HandleFunc("/images/{rest...}", h.imageRoute)
	m.HandleFunc("POST /images/prune", h.pruneImages)
	m.HandleFunc("GET /images/get", h.saveImages)
	m.HandleFunc("POST /images/load", h.loadImages)
	m.HandleFunc("POST /build/prune", h.pruneBuildCache)
	m.HandleFunc("POST /auth", h.login)
	m.HandleFunc("GET /containers/{id}/changes", h.containerChanges)
	m.HandleFunc("GET /containers/{id}/export", h.exportContainer)
	m.HandleFunc("POST /commit", h.commit)
}

func (h *Handler) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	imgs, err := h.B.Images(r.Context())
	if err != nil {
		wire.Error(w, err)
		return
	}
	var cs []engine.Container
	if wire.Bool(r, "shared-size") || wire.Bool(r, "container-count") {
		cs, _ = h.B.Containers(r.Context(), true)
	}
	if imgs, err = convert.FilterImages(r.Context(), f, imgs, h.B); err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.ImageSummaries(imgs, cs))
}

// pullImage is POST /images/create?fromImage=NAME&tag=TAG[&platform=P]:
// a pull streamed as jsonmessage progress, with the X-Registry-Auth
// credential when the client sent one. The 200 goes out once the pull
// has resolved something, so a missing image is answered 404 before the
// stream, as dockerd. fromSrc is an import (importImage).
func (h *Handler) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if q.Has("fromSrc") {
		h.importImage(w, r)
		return
	}
	if from == "" {
		wire.Error(w, wire.Invalid("fromImage or fromSrc is required"))
		return
	}
	cred, err := convert.RegistryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	ref := from
	if tag != "" {
		if strings.Contains(tag, ":") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	pw := stream.NewProgress(w)
	held := stream.HoldPull(pw)
	opts := engine.PullOptions{Platform: q.Get("platform"), Progress: held}
	if cred != nil {
		opts.Keychain = *cred
	}
	_, err = h.B.Pull(context.WithoutCancel(r.Context()), ref, opts)
	if err != nil {
		if errdefs.IsUnauthorized(err) {
			// dockerd answers a denied pull with 404, not 401: on a 401
			// the docker CLI would prompt for a login (or hang on a
			// closed stdin) instead of reporting the error.
			err = wire.Err(errdefs.ErrNotFound, strings.Replace(wire.Message(err), "'berth login'", "'docker login'", 1))
		}
		h.progressFailed(w, pw, err)
		return
	}
	held.Flush()
	pw.Start()
}

// imageRoute dispatches /images/NAME[/json|/tag|/push|/history]: image
// names hold slashes, so the verb is the last path element.
func (h *Handler) imageRoute(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/json"):
		h.inspectImage(w, r, strings.TrimSuffix(rest, "/json"))
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/tag"):
		h.tagImage(w, r, strings.TrimSuffix(rest, "/tag"))
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/push"):
		h.pushImage(w, r, strings.TrimSuffix(rest, "/push"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/history"):
		h.history(w, r, strings.TrimSuffix(rest, "/history"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/get"):
		h.save(w, r, []string{strings.TrimSuffix(rest, "/get")})
	case r.Method == http.MethodDelete:
		h.removeImage(w, r, rest)
	default:
		wire.Error(w, wire.NotFound("page not found"))
	}
}

func (h *Handler) inspectImage(w http.ResponseWriter, r *http.Request, name string) {
	resp, err := h.B.InspectImage(r.Context(), name)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, resp)
}

func (h *Handler) tagImage(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		wire.Error(w, wire.Invalid("repository name must have at least one component"))
		return
	}
	if t := q.Get("tag"); t != "" {
		target += ":" + t
	}
	if err := h.B.Tag(r.Context(), name, target); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	if t := r.URL.Query().Get("tag"); t != "" {
		name += ":" + t
	}
	cred, err := convert.RegistryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	pw := stream.NewProgress(w)
	out := stream.NewPushOutput(pw)
	opts := engine.PushOptions{Progress: out}
	if cred != nil {
		opts.Keychain = *cred
	}
	res, err := h.B.Push(context.WithoutCancel(r.Context()), name, opts)
	if err != nil {
		h.progressFailed(w, pw, err)
		return
	}
	out.Finish(res.Tag, res.Digest.String(), res.Size)
}

func (h *Handler) removeImage(w http.ResponseWriter, r *http.Request, name string) {
	removed, err := h.B.RemoveImage(context.WithoutCancel(r.Context()), name, wire.Bool(r, "force"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	out := []imagetypes.DeleteResponse{}
	for _, x := range removed {
		out = append(out, imagetypes.DeleteResponse{Untagged: x.Untagged, Deleted: x.Deleted})
	}
	wire.JSON(w, http.StatusOK, out)
}

// progressFailed reports err in the progress stream, or as an HTTP error
// with its own status if nothing was sent yet.
func (h *Handler) progressFailed(w http.ResponseWriter, pw *stream.Progress, err error) {
	if !pw.Fail(wire.Message(err)) {
		wire.Error(w, err)
	}
}
