package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	imagetypes "github.com/moby/moby/api/types/image"
)

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	imgs, err := s.b.Images(r.Context())
	if err != nil {
		wire.Error(w, err)
		return
	}
	var cs []engine.Container
	if wire.Bool(r, "shared-size") || wire.Bool(r, "container-count") {
		cs, _ = s.b.Containers(r.Context(), true)
	}
	if imgs, err = convert.FilterImages(r.Context(), f, imgs, s.b); err != nil {
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
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if q.Has("fromSrc") {
		s.importImage(w, r)
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
	_, err = s.b.Pull(context.WithoutCancel(r.Context()), ref, opts)
	if err != nil {
		s.progressFailed(w, pw, err)
		return
	}
	held.Flush()
	pw.Start()
}

// imageRoute dispatches /images/NAME[/json|/tag|/push|/history]: image
// names hold slashes, so the verb is the last path element.
func (s *Server) imageRoute(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/json"):
		s.inspectImage(w, r, strings.TrimSuffix(rest, "/json"))
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/tag"):
		s.tagImage(w, r, strings.TrimSuffix(rest, "/tag"))
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/push"):
		s.pushImage(w, r, strings.TrimSuffix(rest, "/push"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/history"):
		s.history(w, r, strings.TrimSuffix(rest, "/history"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/get"):
		s.save(w, r, []string{strings.TrimSuffix(rest, "/get")})
	case r.Method == http.MethodDelete:
		s.removeImage(w, r, rest)
	default:
		wire.Error(w, wire.NotFound("page not found"))
	}
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, name string) {
	resp, err := s.b.InspectImage(r.Context(), name)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, resp)
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		wire.Error(w, wire.Invalid("repository name must have at least one component"))
		return
	}
	if t := q.Get("tag"); t != "" {
		target += ":" + t
	}
	if err := s.b.Tag(r.Context(), name, target); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
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
	res, err := s.b.Push(context.WithoutCancel(r.Context()), name, opts)
	if err != nil {
		s.progressFailed(w, pw, err)
		return
	}
	out.Finish(res.Tag, res.Digest.String(), res.Size)
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, name string) {
	removed, err := s.b.RemoveImage(context.WithoutCancel(r.Context()), name, wire.Bool(r, "force"))
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
func (s *Server) progressFailed(w http.ResponseWriter, pw *stream.Progress, err error) {
	if !pw.Fail(wire.Message(err)) {
		wire.Error(w, err)
	}
}
