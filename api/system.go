package api

import (
	"encoding/json"
	"net/http"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
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

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	wire.JSON(w, http.StatusOK, convert.Version(s.opts.Version, MinVersion, MaxVersion))
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

// events streams the event log (GET /events): since/until as Unix
// seconds (fractions allowed) or RFC 3339; filters type, event/action,
// container, image, network, volume. Without until it follows until the
// client goes away.
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
