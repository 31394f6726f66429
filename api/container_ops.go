package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/engine"
	containertypes "github.com/moby/moby/api/types/container"
)

// statsInterval is how long a stats reading samples CPU time, as
// dockerd's collector period (1 s).
const statsInterval = time.Second

// top is GET /containers/{id}/top?ps_args=ARGS: ps's titles and the rows
// of the container's processes (404 no such container, 409 not running).
func (s *Server) top(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	res, err := s.b.Top(r.Context(), c.ID, strings.Fields(r.URL.Query().Get("ps_args")))
	if err != nil {
		wire.Error(w, err)
		return
	}
	s.recordContainer(c, "top", nil)
	wire.JSON(w, http.StatusOK, containertypes.TopResponse{Titles: res.Titles, Processes: res.Processes})
}

// stats is GET /containers/{id}/stats?stream=B&one-shot=B: Docker's
// StatsResponse, one reading sampled over 1 s (one-shot: not sampled,
// CPU 0), or with stream (the default) one reading a second until the
// client goes away or the container is no longer running.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	stream := r.URL.Query().Get("stream") == "" || wire.Bool(r, "stream")
	interval := statsInterval
	if wire.Bool(r, "one-shot") {
		if stream {
			wire.Error(w, wire.Invalid("cannot have stream=true and one-shot=true"))
			return
		}
		interval = 0
	}
	started := false
	for {
		st, err := s.b.Stats(ctx, []string{c.ID}, interval)
		if err != nil || len(st) != 1 {
			if !started {
				if err == nil {
					err = wire.NotFound("No such container: " + c.ID)
				}
				wire.Error(w, err)
			}
			return
		}
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
		}
		if json.NewEncoder(w).Encode(convert.Stats(st[0], time.Now(), interval)) != nil || !stream {
			return
		}
		wire.Flush(w)
		if cur, err := s.b.Container(ctx, c.ID); err != nil || cur.State.Status != engine.StatusRunning {
			return
		}
	}
}

// pause is POST /containers/{id}/pause (409 when not running or paused).
func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.containerVerb(w, r, s.b.Pause)
}

// unpause is POST /containers/{id}/unpause (409 when not paused).
func (s *Server) unpause(w http.ResponseWriter, r *http.Request) {
	s.containerVerb(w, r, s.b.Unpause)
}

// containerVerb runs a state change on the container named in the path
// (to completion even if the client goes away; the engine logs the
// event) and answers 204.
func (s *Server) containerVerb(w http.ResponseWriter, r *http.Request, fn func(context.Context, string) error) {
	ctx := context.WithoutCancel(r.Context())
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	if err := fn(ctx, c.ID); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rename is POST /containers/{id}/rename?name=NEW (409 when another
// container has the name, 400 for a malformed one).
func (s *Server) rename(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	name := r.URL.Query().Get("name")
	if err := s.b.Rename(ctx, c.ID, name); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// archivePath reads the archive endpoints' path parameter: required; a
// trailing "/" or "/." follows a symbolic link at the end, as dockerd's
// path resolution does.
func archivePath(r *http.Request) (string, bool, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", false, wire.Invalid("path cannot be empty")
	}
	return p, strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/."), nil
}

// statArchive stats the path of an archive request and sets Docker's
// X-Docker-Container-Path-Stat header (base64 of the PathStat JSON).
func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) (engine.Container, string, bool, bool) {
	ctx := r.Context()
	c, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return c, "", false, false
	}
	p, follow, err := archivePath(r)
	if err != nil {
		wire.Error(w, err)
		return c, "", false, false
	}
	// The path ID as given: the engine names it in its messages, as dockerd.
	st, err := s.b.StatContainerPath(ctx, r.PathValue("id"), p, follow)
	if err != nil {
		wire.Error(w, err)
		return c, "", false, false
	}
	data, _ := json.Marshal(containertypes.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: st.Mtime, LinkTarget: st.LinkTarget})
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(data))
	return c, p, follow, true
}

// headArchive is HEAD /containers/{id}/archive?path=P: the path's stat in
// the X-Docker-Container-Path-Stat header (404 when missing).
func (s *Server) headArchive(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := s.statArchive(w, r); ok {
		w.WriteHeader(http.StatusOK)
	}
}

// getArchive is GET /containers/{id}/archive?path=P: a tar of P (its
// children at the top for "P/."), with the stat header. A failure once
// the tar has started aborts the connection, so that the client sees an
// error rather than a short archive.
func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) {
	c, p, follow, ok := s.statArchive(w, r)
	if !ok {
		return
	}
	opts := engine.CopyOptions{FollowLink: follow}
	if strings.HasSuffix(p, "/.") {
		opts.Rename = "."
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	if err := s.b.CopyFromContainer(r.Context(), r.PathValue("id"), p, opts, w); err != nil {
		s.opts.Logf("api: archive of %s:%s: %v", c.ID, p, err)
		panic(http.ErrAbortHandler)
	}
	s.recordContainer(c, "archive-path", map[string]string{"path": p})
}

// putArchive is PUT /containers/{id}/archive?path=DIR[&copyUIDGID=1]:
// the body, a tar, is extracted into DIR, confined to the container's
// root (404 when DIR is missing, 400 when it is not a directory or the
// tar is malformed). copyUIDGID is passed on as CopyOptions.KeepOwner;
// noOverwriteDirNonDir is accepted but not enforced: package archive's
// rules decide what an entry may replace.
func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	p, _, err := archivePath(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if err := s.b.CopyToContainer(ctx, r.PathValue("id"), p, r.Body, engine.CopyOptions{KeepOwner: wire.Bool(r, "copyUIDGID")}); err != nil {
		wire.Error(w, err)
		return
	}
	s.recordContainer(c, "extract-to-dir", map[string]string{"path": p})
	w.WriteHeader(http.StatusOK)
}
