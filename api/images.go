package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/engine"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
)

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	imgs, err := s.b.Images(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	var cs []engine.Container
	if boolParam(r, "shared-size") || boolParam(r, "container-count") {
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
	writeJSON(w, http.StatusOK, out)
}

// progressWriter turns the engine's Docker-style progress lines into
// jsonmessage objects ({"status": …, "id": …}), writing the 200 header
// before the first one, so that a failure before any output can still
// be sent as a plain error with its status.
type progressWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
	partial []byte
}

var progressID = regexp.MustCompile(`^([0-9a-f]{12}|[^ :]+:[^ ]+|latest): (.*)$`)

func (p *progressWriter) start() {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(p.partial[:i]), "\r")
		p.partial = p.partial[i+1:]
		if line == "" {
			continue
		}
		msg := jsonstream.Message{Status: line}
		if m := progressID.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "Digest:") && !strings.HasPrefix(line, "Status:") {
			msg.ID, msg.Status = m[1], m[2]
		}
		p.start()
		if err := json.NewEncoder(p.w).Encode(msg); err != nil {
			return 0, err
		}
		flush(p.w)
	}
	return len(b), nil
}

// fail reports err: as an HTTP error if nothing was sent, else in-stream.
func (p *progressWriter) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		writeError(p.w, err)
		return
	}
	json.NewEncoder(p.w).Encode(jsonstream.Message{Error: &jsonstream.Error{Message: message(err)}})
}

// pullImage is POST /images/create?fromImage=NAME&tag=TAG[&platform=P]:
// a pull streamed as jsonmessage progress. Import (fromSrc) is not
// implemented.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, tag := q.Get("fromImage"), q.Get("tag")
	if from == "" {
		writeError(w, &categorized{msg: "image import (fromSrc) is not implemented", cat: errNotImplemented})
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
	pw := &progressWriter{w: w}
	_, err := s.b.Pull(context.WithoutCancel(r.Context()), ref, engine.PullOptions{Platform: q.Get("platform"), Progress: pw})
	if err != nil {
		pw.fail(err)
		return
	}
	pw.start()
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
		writeError(w, notFound("page not found"))
	}
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, name string) {
	resp, err := s.b.InspectImage(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		writeError(w, invalid("repository name must have at least one component"))
		return
	}
	if t := q.Get("tag"); t != "" {
		target += ":" + t
	}
	if err := s.b.Tag(r.Context(), name, target); err != nil {
		writeError(w, err)
		return
	}
	s.record("image", "tag", name, map[string]string{"name": target})
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	if t := r.URL.Query().Get("tag"); t != "" {
		name += ":" + t
	}
	pw := &progressWriter{w: w}
	res, err := s.b.Push(context.WithoutCancel(r.Context()), name, engine.PushOptions{Progress: pw})
	if err != nil {
		pw.fail(err)
		return
	}
	pw.Write([]byte(res.Tag + ": digest: " + res.Digest.String() + "\n"))
	pw.start()
	s.record("image", "push", name, map[string]string{"name": name})
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, name string) {
	removed, err := s.b.RemoveImage(context.WithoutCancel(r.Context()), name, boolParam(r, "force"))
	if err != nil {
		writeError(w, err)
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
	writeJSON(w, http.StatusOK, out)
}

var _ io.Writer = (*progressWriter)(nil)
