package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
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
	out := []imagetypes.Summary{}
	for _, sum := range convert.ImageSummaries(imgs, cs) {
		if f.Has("dangling") {
			dangling := len(sum.RepoTags) == 0
			if f.Match("dangling", "true") != dangling {
				continue
			}
		}
		if !f.MatchLabels(sum.Labels) {
			continue
		}
		if f.Has("reference") && !convert.MatchReference(f["reference"], sum.RepoTags) {
			continue
		}
		out = append(out, sum)
	}
	wire.JSON(w, http.StatusOK, out)
}

// pullImage is POST /images/create?fromImage=NAME&tag=TAG[&platform=P]:
// a pull streamed as jsonmessage progress. Import (fromSrc) is not
// implemented.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if from == "" {
		wire.Error(w, wire.Err(errdefs.ErrNotImplemented, "image import (fromSrc) is not implemented"))
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
	_, err := s.b.Pull(context.WithoutCancel(r.Context()), ref, engine.PullOptions{Platform: q.Get("platform"), Progress: pw})
	if err != nil {
		s.progressFailed(w, pw, err)
		return
	}
	pw.Start()
	s.record("image", "pull", ref, map[string]string{"name": ref})
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
	s.record("image", "tag", name, map[string]string{"name": target})
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	if t := r.URL.Query().Get("tag"); t != "" {
		name += ":" + t
	}
	pw := stream.NewProgress(w)
	res, err := s.b.Push(context.WithoutCancel(r.Context()), name, engine.PushOptions{Progress: pw})
	if err != nil {
		s.progressFailed(w, pw, err)
		return
	}
	pw.Write([]byte(res.Tag + ": digest: " + res.Digest.String() + "\n"))
	pw.Start()
	s.record("image", "push", name, map[string]string{"name": name})
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
		if x.Untagged != "" {
			s.record("image", "untag", name, map[string]string{"name": x.Untagged})
		}
		if x.Deleted != "" {
			s.record("image", "delete", x.Deleted, nil)
		}
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
