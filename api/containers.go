package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/signal"
)

// maxBody bounds JSON request bodies (bytes).
const maxBody = 8 << 20

func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, invalid("reading request body: " + err.Error())
	}
	if len(data) > maxBody {
		return nil, invalid("request body too large")
	}
	return data, nil
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	limit, err := intParam(r, "limit", -1)
	if err != nil {
		writeError(w, err)
		return
	}
	all := boolParam(r, "all") || limit > 0 || f.Has("status") || f.Has("exited")
	cs, err := s.b.Containers(r.Context(), all)
	if err != nil {
		writeError(w, err)
		return
	}
	out := []containertypes.Summary{}
	for _, c := range cs {
		if limit > 0 && len(out) >= limit {
			break
		}
		if !f.Match("status", c.State.Status) || !f.Match("name", c.Name) && !f.Match("name", "/"+c.Name) ||
			!f.MatchLabels(c.Labels) || !f.Match("ancestor", c.Image) && !f.Match("ancestor", c.ImageName) {
			continue
		}
		if f.Has("id") && !matchPrefix(f["id"], c.ID) {
			continue
		}
		if f.Has("exited") && (c.State.Status != engine.StatusExited || !f.Match("exited", strconv.Itoa(c.State.ExitCode))) {
			continue
		}
		out = append(out, s.summary(r.Context(), c))
	}
	writeJSON(w, http.StatusOK, out)
}

func matchPrefix(set map[string]bool, id string) bool {
	for p := range set {
		if len(p) <= len(id) && id[:len(p)] == p {
			return true
		}
	}
	return false
}

// createContainer is POST /containers/create?name=N: the body is
// Docker's CreateRequest. Named and anonymous volumes go to the engine,
// which creates the missing ones (engine.VolumeMount).
func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	plan, err := convert.Create(r.URL.Query().Get("name"), body)
	if err != nil {
		writeError(w, err)
		return
	}
	for _, v := range plan.Volumes {
		plan.Opts.Run.Mounts = append(plan.Opts.Run.Mounts, engine.VolumeMount(v.Name, v.Destination, v.ReadOnly, v.NoCopy))
	}
	var before map[string]bool
	if len(plan.Volumes) > 0 {
		before = s.volumeNames()
	}
	c, err := s.b.Create(r.Context(), plan.Opts)
	if err != nil {
		writeError(w, err)
		return
	}
	s.recordCreatedVolumes(before)
	s.record("container", "create", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c)})
	if plan.Warnings == nil {
		plan.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, containertypes.CreateResponse{ID: c.ID, Warnings: plan.Warnings})
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	c, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.inspect(r.Context(), c))
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State.Status == engine.StatusRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// The monitor owns the container from here; the request's end must
	// not undo a start half-way.
	if err := s.b.StartDetached(context.WithoutCancel(ctx), c.ID); err != nil {
		writeError(w, err)
		return
	}
	s.record("container", "start", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c)})
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
		return nil, invalid("invalid value for t: " + v)
	}
	d := time.Duration(n) * time.Second
	if n < 0 {
		d = 100 * 365 * 24 * time.Hour
	}
	return &d, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	c, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State.Status != engine.StatusRunning {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	t, err := timeoutParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.StopWithSignal(ctx, c.ID, r.URL.Query().Get("signal"), t); err != nil {
		writeError(w, err)
		return
	}
	s.recordExit(ctx, c)
	s.record("container", "stop", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c)})
	w.WriteHeader(http.StatusNoContent)
}

// recordExit logs the "die" event of a container that was seen running.
func (s *Server) recordExit(ctx context.Context, c engine.Container) {
	code := ""
	if cur, err := s.b.Container(ctx, c.ID); err == nil {
		code = strconv.Itoa(cur.State.ExitCode)
	}
	s.record("container", "die", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c), "exitCode": code})
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	c, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := timeoutParam(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State.Status == engine.StatusRunning {
		if err := s.b.StopWithSignal(ctx, c.ID, r.URL.Query().Get("signal"), t); err != nil {
			writeError(w, err)
			return
		}
		s.recordExit(ctx, c)
	}
	if err := s.b.StartDetached(ctx, c.ID); err != nil {
		writeError(w, err)
		return
	}
	s.record("container", "restart", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c)})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	sig := syscall.SIGKILL
	if v := r.URL.Query().Get("signal"); v != "" {
		var err error
		if sig, err = signal.ParseSignal(v); err != nil {
			writeError(w, invalid("invalid signal: "+v))
			return
		}
	}
	c, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.Kill(r.Context(), c.ID, sig); err != nil {
		writeError(w, err)
		return
	}
	s.record("container", "kill", c.ID, map[string]string{"name": c.Name, "signal": strconv.Itoa(int(sig))})
	w.WriteHeader(http.StatusNoContent)
}

var validCondition = regexp.MustCompile(`^(|not-running|next-exit|removed)$`)

// waitContainer is POST /containers/{id}/wait?condition=C. The status
// line and headers go out at once (the CLI's `run` waits for them before
// it starts the container); the body follows when the condition holds.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	cond := r.URL.Query().Get("condition")
	if !validCondition.MatchString(cond) {
		writeError(w, invalid("invalid condition: "+cond))
		return
	}
	c0, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	code, msg, err := s.waitFor(r.Context(), c0, cond)
	if err != nil {
		return // the client went away
	}
	resp := containertypes.WaitResponse{StatusCode: int64(code)}
	if msg != "" {
		resp.Error = &containertypes.WaitExitError{Message: msg}
	}
	writeJSONBody(w, resp)
}

// waitFor polls the container until cond holds and returns its exit code
// and error text. A container removed by its monitor (--rm) can vanish
// between two polls: the monitor's exit file is watched closely (a cheap
// read) so that the code is seen between the exit and the removal, while
// the record is read less often (every read takes the database's lock).
func (s *Server) waitFor(ctx context.Context, c0 engine.Container, cond string) (int, string, error) {
	code, msg := c0.State.ExitCode, ""
	if c0.State.Status == engine.StatusCreated {
		code = 0
	}
	started := c0.State.Status == engine.StatusRunning
	var next time.Time
	for {
		if started {
			if n, ok := s.opts.Host.ExitStatus(c0.ID); ok {
				code = n
			}
		}
		if now := time.Now(); !now.Before(next) {
			next = now.Add(25 * time.Millisecond)
			c, err := s.b.Container(ctx, c0.ID)
			if errdefs.IsNotFound(err) {
				return code, msg, nil
			}
			if err != nil {
				return code, msg, err
			}
			running := c.State.Status == engine.StatusRunning
			if running || !c.State.StartedAt.Equal(c0.State.StartedAt) {
				started = true
			}
			if !running && started {
				code, msg = c.State.ExitCode, c.State.Error
			}
			switch cond {
			case "", "not-running":
				if !running {
					return c.State.ExitCode, c.State.Error, nil
				}
			case "next-exit":
				if !running && started {
					return code, msg, nil
				}
			}
		}
		delay := 25 * time.Millisecond
		if started {
			delay = 3 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return code, msg, ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	c, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if c.State.Status == engine.StatusRunning && !boolParam(r, "force") {
		writeError(w, &categorized{msg: "cannot remove container \"/" + c.Name + "\": container is running: stop the container before removing or force remove", cat: errdefs.ErrConflict})
		return
	}
	if err := s.b.Remove(ctx, c.ID, boolParam(r, "force")); err != nil {
		writeError(w, err)
		return
	}
	if boolParam(r, "v") && s.opts.Volumes != nil {
		for _, m := range convert.MountPoints(c, s.volumesDir()) {
			if v, err := s.opts.Volumes.Get(m.Name); m.Name != "" && err == nil && v.Anonymous() && len(s.volumeUsers(ctx, m.Name)) == 0 {
				if s.opts.Volumes.Remove(m.Name, false) == nil {
					s.record("volume", "destroy", m.Name, nil)
				}
			}
		}
	}
	s.record("container", "destroy", c.ID, map[string]string{"name": c.Name, "image": convert.ImageName(c)})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithoutCancel(r.Context())
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		writeError(w, err)
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
		s.record("container", "destroy", c.ID, map[string]string{"name": c.Name})
		rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
	}
	s.record("container", "prune", "", nil)
	writeJSON(w, http.StatusOK, rep)
}

// resize is POST /containers/{id}/resize?h=H&w=W: it tells the monitor
// (conmon's control FIFO, message "1 H W") to resize the terminal.
func (s *Server) resize(w http.ResponseWriter, r *http.Request) {
	c, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	h, err1 := intParam(r, "h", 0)
	wd, err2 := intParam(r, "w", 0)
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, err)
		return
	}
	if c.State.Status != engine.StatusRunning {
		writeError(w, &categorized{msg: "container " + c.ID + " is not running", cat: errdefs.ErrConflict})
		return
	}
	s.opts.Host.Resize(c.ID, h, wd)
	w.WriteHeader(http.StatusOK)
}
