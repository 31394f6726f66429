package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	volumetypes "github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeView(v volume.Volume) volumetypes.Volume { return engine.VolumeView(v) }

// volumeUsers lists the IDs of containers that mount the volume name.
func (s *Server) volumeUsers(ctx context.Context, name string) []string {
	if s.opts.Volumes == nil {
		return nil
	}
	dir := s.opts.Volumes.DataDir(name)
	cs, _ := s.b.Containers(ctx, true)
	var ids []string
	for _, c := range cs {
		for _, m := range c.Run.Mounts {
			if m.Source == dir {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	return ids
}

// volumes returns the store, or writes 501 when the server has none.
func (s *Server) volumes(w http.ResponseWriter) Volumes {
	if s.opts.Volumes == nil {
		wire.Error(w, wire.Err(errdefs.ErrNotImplemented, "volumes are not available"))
	}
	return s.opts.Volumes
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	st := s.volumes(w)
	if st == nil {
		return
	}
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	vols, err := st.List()
	if err != nil {
		wire.Error(w, err)
		return
	}
	resp := volumetypes.ListResponse{Volumes: []volumetypes.Volume{}, Warnings: []string{}}
	for _, v := range vols {
		if !f.MatchPattern("name", v.Name) || !f.Match("driver", "local") || !f.MatchLabels(v.Labels) {
			continue
		}
		if f.Has("dangling") && f.Match("dangling", "true") != (len(s.volumeUsers(r.Context(), v.Name)) == 0) {
			continue
		}
		resp.Volumes = append(resp.Volumes, s.volumeView(v))
	}
	wire.JSON(w, http.StatusOK, resp)
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	st := s.volumes(w)
	if st == nil {
		return
	}
	body, err := wire.Body(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	var req volumetypes.CreateRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			wire.Error(w, wire.Invalid("invalid JSON: "+err.Error()))
			return
		}
	}
	v, err := st.Create(req.Name, req.Driver, req.Labels, req.DriverOpts)
	if err != nil {
		wire.Error(w, err)
		return
	}
	s.record("volume", "create", v.Name, map[string]string{"driver": "local"})
	wire.JSON(w, http.StatusCreated, s.volumeView(v))
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) {
	st := s.volumes(w)
	if st == nil {
		return
	}
	v, err := st.Get(r.PathValue("name"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, s.volumeView(v))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	st := s.volumes(w)
	if st == nil {
		return
	}
	name := r.PathValue("name")
	users := s.volumeUsers(r.Context(), name)
	if err := st.Remove(name, len(users) > 0); err != nil {
		if errdefs.IsConflict(err) && len(users) > 0 {
			err = wire.Err(errdefs.ErrConflict, "remove "+name+": volume is in use - ["+users[0]+"]")
		}
		wire.Error(w, err)
		return
	}
	s.record("volume", "destroy", name, nil)
	w.WriteHeader(http.StatusNoContent)
}

// pruneVolumes removes unused volumes: anonymous ones only (label
// com.docker.volume.anonymous), unless the filter all=true (Docker ≥ 1.42
// semantics).
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) {
	st := s.volumes(w)
	if st == nil {
		return
	}
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	all := f.Has("all") && (f.Match("all", "true") || f.Match("all", "1"))
	names, space, err := st.Prune(func(v volume.Volume) bool {
		if !all && !v.Anonymous() {
			return true
		}
		return !f.MatchLabels(v.Labels) || len(s.volumeUsers(r.Context(), v.Name)) > 0
	})
	if err != nil {
		wire.Error(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	for _, n := range names {
		s.record("volume", "destroy", n, nil)
	}
	wire.JSON(w, http.StatusOK, volumetypes.PruneReport{VolumesDeleted: names, SpaceReclaimed: space})
}
