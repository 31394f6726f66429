package images

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// Ops is what the image and container-filesystem routes of this file
// need beyond Backend (history, prune, login, diff, export, commit, save,
// load, import); package api re-exports it as api.ImageOps.
// *engine.Engine and privsep.Client satisfy it; a backend that does not
// makes those routes answer 501.
type Ops interface {
	History(ctx context.Context, ref string) ([]engine.HistoryEntry, error)
	PruneImages(ctx context.Context, all bool, keep func(engine.Image) bool) (engine.PruneReport, error)
	VerifyLogin(ctx context.Context, server, username, password string) error
	Diff(ctx context.Context, ref string) ([]engine.Change, error)
	ExportContainer(ctx context.Context, ref string, w io.Writer) error
	Commit(ctx context.Context, ref string, opts engine.CommitOptions) (image.Record, error)
	SaveImages(ctx context.Context, refs []string, w io.Writer) error
	LoadImages(ctx context.Context, r io.Reader, platform string) ([]engine.LoadedImage, error)
	ImportImage(ctx context.Context, r io.Reader, opts engine.ImportOptions) (image.Record, error)
}

var _ Ops = (*engine.Engine)(nil)

// ops is the backend as Ops; false (after answering 501) when it is not
// one.
func (h *Handler) ops(w http.ResponseWriter) (Ops, bool) {
	o, ok := h.B.(Ops)
	if !ok {
		wire.Error(w, wire.Err(errdefs.ErrNotImplemented, "not implemented by this backend"))
	}
	return o, ok
}

// pruneImages is POST /images/prune?filters=…: dangling images (every
// unused one with dangling=false) that no container uses, filtered by
// until and label/label!; Docker's ImagesDeleted and SpaceReclaimed.
func (h *Handler) pruneImages(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	all, keep, err := convert.PruneImagesFilter(r.Context(), f, h.B)
	if err != nil {
		wire.Error(w, err)
		return
	}
	rep, err := o.PruneImages(context.WithoutCancel(r.Context()), all, keep)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.PruneReport(rep))
}

// pruneBuildCache is POST /build/prune: Berth has no builder and so no
// build cache; Docker's answer with nothing deleted (so `docker system
// prune` completes).
func (h *Handler) pruneBuildCache(w http.ResponseWriter, r *http.Request) {
	wire.JSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{}})
}

// history is GET /images/{name}/history.
func (h *Handler) history(w http.ResponseWriter, r *http.Request, name string) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	steps, err := o.History(r.Context(), name)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.History(steps))
}

// login is POST /auth: the credential is checked against the registry's
// /v2/ (nothing is stored: the CLI keeps it). Refused credentials are
// 401 with the registry's reason.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	var ac registrytypes.AuthConfig
	body, err := wire.Body(r)
	if err == nil {
		err = json.Unmarshal(body, &ac)
	}
	if err != nil {
		wire.Error(w, wire.Invalid("invalid JSON: "+err.Error()))
		return
	}
	if err := o.VerifyLogin(r.Context(), engine.NormalizeServer(ac.ServerAddress), ac.Username, ac.Password); err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, registrytypes.AuthResponse{Status: "Login Succeeded"})
}

// containerChanges is GET /containers/{id}/changes (`docker diff`).
func (h *Handler) containerChanges(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	cs, err := o.Diff(r.Context(), r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.Changes(cs))
}

// exportContainer is GET /containers/{id}/export: the container's
// filesystem as a tar.
func (h *Handler) exportContainer(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	id := r.PathValue("id")
	h.sendTar(w, "export of "+id, func(tw io.Writer) error { return o.ExportContainer(r.Context(), id, tw) })
}

// commit is POST /commit?container=…&repo=…&tag=…&comment=…&author=…
// &changes=…&pause=…: 201 with the new image's ID. The body (a container
// config to merge) is ignored: changes carry the config edits.
func (h *Handler) commit(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	ref := q.Get("repo")
	if t := q.Get("tag"); ref != "" && t != "" {
		ref += ":" + t
	}
	pause := q.Get("pause") == "" || wire.Bool(r, "pause") // Docker pauses by default
	rec, err := o.Commit(context.WithoutCancel(r.Context()), q.Get("container"), engine.CommitOptions{
		Reference: ref, Changes: splitChanges(q["changes"]), Comment: q.Get("comment"), Author: q.Get("author"), Pause: pause,
	})
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusCreated, map[string]string{"Id": rec.Config.String()})
}

// splitChanges reads the changes query values: each may hold several
// instructions, one per line (the CLI's -c values joined).
func splitChanges(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// saveImages is GET /images/get?names=… and GET /images/{name}/get
// (name non-empty): a docker-archive (and OCI layout) tar.
func (h *Handler) saveImages(w http.ResponseWriter, r *http.Request) {
	h.save(w, r, r.URL.Query()["names"])
}

func (h *Handler) save(w http.ResponseWriter, r *http.Request, names []string) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	if len(names) == 0 {
		wire.Error(w, wire.Invalid("no images named"))
		return
	}
	h.sendTar(w, "save", func(tw io.Writer) error { return o.SaveImages(r.Context(), names, tw) })
}

// sendTar answers with the tar write produces: the 200 header goes out
// with its first byte, so an error before (an unknown container or
// image) is answered with its own status; an error after aborts the
// response.
func (h *Handler) sendTar(w http.ResponseWriter, what string, write func(io.Writer) error) {
	lw := &lazyWriter{w: w}
	if err := write(lw); err != nil {
		if !lw.started {
			wire.Error(w, err)
			return
		}
		h.Logf("api: %s: %v", what, err)
		panic(http.ErrAbortHandler)
	}
	lw.start()
}

// lazyWriter sends a tar's 200 header with its first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) start() {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.WriteHeader(http.StatusOK)
	}
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.start()
	return l.w.Write(p)
}

// loadImages is POST /images/load[?quiet=1][&platform=…]: the body is a
// save archive; the answer a jsonmessage stream with one "Loaded image"
// line per image, as dockerd.
func (h *Handler) loadImages(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	loaded, err := o.LoadImages(context.WithoutCancel(r.Context()), r.Body, r.URL.Query().Get("platform"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	pw := stream.NewProgress(w)
	pw.Start()
	for _, l := range loaded {
		line := "Loaded image: " + l.Name + "\n"
		if l.Name == "" {
			line = "Loaded image ID: " + l.ID + "\n"
		}
		pw.Send(jsonstream.Message{Stream: line})
	}
}

// importImage is POST /images/create?fromSrc=-: the body is a rootfs tar
// (plain or compressed) made into a one-layer image named repo[:tag];
// the answer is a jsonmessage with the image ID. fromSrc naming a URL is
// refused (501): the service does not fetch arbitrary URLs on a client's
// behalf (it would do so from the host, as root's network identity).
func (h *Handler) importImage(w http.ResponseWriter, r *http.Request) {
	o, ok := h.ops(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		wire.Error(w, wire.Err(errdefs.ErrNotImplemented, "importing from a URL ("+src+") is not supported: send the archive in the request body (fromSrc=-)"))
		return
	}
	name := q.Get("repo")
	if t := q.Get("tag"); name != "" && t != "" {
		name += ":" + t
	}
	rec, err := o.ImportImage(context.WithoutCancel(r.Context()), r.Body, engine.ImportOptions{
		Name: name, Changes: splitChanges(q["changes"]), Message: q.Get("message"), Source: "-", Platform: q.Get("platform"),
	})
	if err != nil {
		wire.Error(w, err)
		return
	}
	stream.NewProgress(w).Send(jsonstream.Message{Status: rec.Config.String()})
}
