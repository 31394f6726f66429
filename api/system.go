package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	volumetypes "github.com/moby/moby/api/types/volume"
)

// ping answers GET and HEAD /_ping with "OK" and the headers the CLI
// negotiates from.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write([]byte("OK"))
}

// version is GET /version: the Engine component and the programs it
// runs containers with (convert.Components).
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	wire.JSON(w, http.StatusOK, convert.Version(s.opts.Version, MinVersion, MaxVersion, convert.Components(s.b.Options())...))
}

// info is GET /info: the engine's counts and the host's description
// (convert.Info).
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		wire.Error(w, err)
		return
	}
	imgs, err := s.b.Images(ctx)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.Info(s.b.Options(), s.opts.Version, cs, len(imgs)))
}

// events streams the event log (GET /events), as Docker: since/until
// as Unix seconds (fractions allowed) or RFC 3339. Without since only
// events from now on are sent (until alone bounds that wait); with since
// the history from then, then new events until until, or until the
// client goes away. filters: see convert.EventFilter.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var opts events.ReadOptions
	var err error
	if opts.Since, err = convert.ParseTime(q.Get("since")); err != nil {
		wire.Error(w, err)
		return
	}
	if opts.Until, err = convert.ParseTime(q.Get("until")); err != nil {
		wire.Error(w, err)
		return
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
		wire.Error(w, wire.Invalid("`since` time ("+q.Get("since")+") cannot be after `until` time ("+q.Get("until")+")"))
		return
	}
	if opts.Since.IsZero() {
		opts.Since = time.Now()
	}
	f, err := convert.ParseFilters(q.Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	opts.Follow = true
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	wire.Flush(w)
	if s.opts.Events == nil {
		if !opts.Until.IsZero() {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Until(opts.Until)):
			}
			return
		}
		<-r.Context().Done()
		return
	}
	enc := json.NewEncoder(w)
	s.opts.Events.Read(r.Context(), opts, func(ev events.Event) error {
		if !f.MatchEvent(ev) {
			return nil
		}
		if err := enc.Encode(convert.Event(ev)); err != nil {
			return err
		}
		wire.Flush(w)
		return nil
	})
}

// recordContainer appends a container event of this API's own (attach,
// restart, top, copies, exec) with Docker's attributes; the engine logs
// the rest (create, start, die, destroy, kill, pause …) whoever asks.
func (s *Server) recordContainer(c engine.Container, action string, extra map[string]string) {
	s.record("container", action, c.ID, engine.ContainerEventAttributes(c, extra))
}

// systemDF is GET /system/df: images, containers and volumes with their
// sizes (build cache: none).
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	imgs, err := s.b.Images(ctx)
	if err != nil {
		wire.Error(w, err)
		return
	}
	cs, err := s.b.Containers(ctx, true)
	if err != nil {
		wire.Error(w, err)
		return
	}
	var resp struct {
		LayersSize int64
		Images     []imagetypes.Summary
		Containers []containertypes.Summary
		Volumes    []volumetypes.Volume
		BuildCache []any
	}
	resp.Images = convert.ImageSummaries(imgs, cs)
	for _, sum := range resp.Images {
		resp.LayersSize += sum.Size
	}
	for _, c := range cs {
		resp.Containers = append(resp.Containers, s.summary(ctx, c))
	}
	if s.opts.Volumes != nil {
		vols, _ := s.opts.Volumes.List()
		for _, v := range vols {
			dv := s.volumeView(v)
			dv.UsageData = &volumetypes.UsageData{Size: s.opts.Volumes.Size(v.Name), RefCount: int64(len(s.volumeUsers(ctx, v.Name)))}
			resp.Volumes = append(resp.Volumes, dv)
		}
	}
	resp.BuildCache = []any{}
	wire.JSON(w, http.StatusOK, resp)
}
