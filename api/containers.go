package api

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/signal"
)

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	limit, err := wire.Int(r, "limit", -1)
	if err != nil {
		wire.Error(w, err)
		return
	}
	opts := convert.ContainerFilterOptions{Lookup: s.b, VolumeDir: s.volumesDir()}
	if nets, err := s.networks(); err == nil {
		opts.Networks = nets
	}
	m, err := convert.NewContainerMatcher(r.Context(), f, opts)
	if err != nil {
		wire.Error(w, err)
		return
	}
	all := wire.Bool(r, "all") || limit > 0 || m.ImpliesAll()
	cs, err := s.b.Containers(r.Context(), all)
	if err != nil {
		wire.Error(w, err)
		return
	}
	out := []containertypes.Summary{}
	for _, c := range cs {
		if limit > 0 && len(out) >= limit {
			break
		}
		if m.Match(c) {
			out = append(out, s.summary(r.Context(), c))
		}
	}
	wire.JSON(w, http.StatusOK, out)
}

// container finds the container the request's path names ({id}); false
// once the error (404 when there is none) has been sent.
func (s *Server) container(w http.ResponseWriter, r *http.Request) (engine.Container, bool) {
	c, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return c, false
	}
	return c, true
}

// createContainer is POST /containers/create?name=N: the body is
// Docker's CreateRequest. Named and anonymous volumes go to the engine,
// which creates the missing ones (engine.VolumeMount).
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	body, err := wire.Body(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	plan, err := convert.Create(r.URL.Query().Get("name"), body)
	if err != nil {
		wire.Error(w, err)
		return
	}
	for _, v := range plan.Volumes {
		plan.Opts.Run.Mounts = append(plan.Opts.Run.Mounts, engine.VolumeMount(v.Name, v.Destination, v.ReadOnly, v.NoCopy))
	}
	c, err := s.b.Create(r.Context(), plan.Opts)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if plan.Warnings == nil {
		plan.Warnings = []string{}
	}
	wire.JSON(w, http.StatusCreated, containertypes.CreateResponse{ID: c.ID, Warnings: plan.Warnings})
}

// inspectContainer is GET /containers/{id}/json[?size=1]: the engine's
// inspect, adapted to the request's API version.
func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	resp, err := s.b.InspectContainer(r.Context(), r.PathValue("id"), wire.Bool(r, "size"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	convert.InspectForVersion(&resp, versionOf(r))
	wire.JSON(w, http.StatusOK, engine.ContainerInspectJSON{InspectResponse: resp})
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	if c.State.Status == engine.StatusRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// The monitor owns the container from here; the request's end must
	// not undo a start half-way.
	if err := s.b.StartDetached(context.WithoutCancel(ctx), c.ID); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// timeoutParam reads the stop timeout "t" in seconds (nil when absent;
// negative: wait forever).
func timeoutParam(r *http.Request) (*time.Duration, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, wire.Invalid("invalid value for t: " + v)
	}
	d := time.Duration(n) * time.Second
	if n < 0 {
		d = 100 * 365 * 24 * time.Hour
	}
	return &d, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if c.State.Status != engine.StatusRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	t, err := timeoutParam(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if err := s.b.StopWithSignal(ctx, c.ID, r.URL.Query().Get("signal"), t); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	t, err := timeoutParam(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if c.State.Status == engine.StatusRunning {
		if err := s.b.StopWithSignal(ctx, c.ID, r.URL.Query().Get("signal"), t); err != nil {
			wire.Error(w, err)
			return
		}
	}
	if err := s.b.StartDetached(ctx, c.ID); err != nil {
		wire.Error(w, err)
		return
	}
	// The engine logged kill, die, stop and start; restart is this
	// request's own (Docker's order).
	s.recordContainer(c, "restart", nil)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	sig := syscall.SIGKILL
	if v := r.URL.Query().Get("signal"); v != "" {
		var err error
		if sig, err = signal.ParseSignal(v); err != nil {
			wire.Error(w, wire.Invalid("invalid signal: "+v))
			return
		}
	}
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	if err := s.b.Kill(r.Context(), c.ID, sig); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var validCondition = regexp.MustCompile(`^(|not-running|next-exit|removed)$`)

// waitContainer is POST /containers/{id}/wait?condition=C. The status
// line and headers go out at once (the CLI's `run` waits for them before
// it starts the container); the body follows when the condition holds.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	cond := r.URL.Query().Get("condition")
	if !validCondition.MatchString(cond) {
		wire.Error(w, wire.Invalid("invalid condition: "+cond))
		return
	}
	c0, ok := s.container(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	wire.Flush(w)
	code, msg, err := stream.Wait(r.Context(), s.b, s.opts.Host, c0, cond)
	if err != nil {
		return // the client went away
	}
	resp := containertypes.WaitResponse{StatusCode: int64(code)}
	if msg != "" {
		resp.Error = &containertypes.WaitExitError{Message: msg}
	}
	wire.JSONBody(w, resp)
}

// removeContainer is DELETE /containers/{id}?force=B&v=B: with v, the
// engine also removes the container's anonymous volumes that no other
// container uses (engine.RemoveWithVolumes).
func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	ctx := context.WithoutCancel(r.Context())
	force := wire.Bool(r, "force")
	if c.State.Status == engine.StatusRunning && !force {
		wire.Error(w, wire.Err(errdefs.ErrConflict, "cannot remove container \"/"+c.Name+"\": container is running: stop the container before removing or force remove"))
		return
	}
	remove := s.b.Remove
	if wire.Bool(r, "v") {
		remove = s.b.RemoveWithVolumes
	}
	if err := remove(ctx, c.ID, force); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		wire.Error(w, err)
		return
	}
	rep := containertypes.PruneReport{ContainersDeleted: []string{}}
	for _, c := range cs {
		if c.State.Status == engine.StatusRunning || !f.MatchLabels(c.Labels) {
			continue
		}
		if err := s.b.Remove(ctx, c.ID, false); err != nil {
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
	}
	s.record("container", "prune", "", nil)
	wire.JSON(w, http.StatusOK, rep)
}

// resize is POST /containers/{id}/resize?h=H&w=W: the engine resizes the
// terminal of the running container (engine.ResizeTTY; 404 unknown, 409
// not running). A failure to reach the monitor is logged, not answered:
// the CLI resizes right after a start, before the monitor may listen.
func (s *Server) resize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := wire.TermSize(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if err := s.b.ResizeTTY(r.Context(), r.PathValue("id"), h, wd); err != nil {
		if errdefs.IsNotFound(err) || errdefs.IsConflict(err) {
			wire.Error(w, err)
			return
		}
		s.opts.Logf("api: resize %s: %v", r.PathValue("id"), err)
	}
	w.WriteHeader(http.StatusOK)
}
