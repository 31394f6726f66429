package api

import (
	"encoding/json"
	"net/http"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
	networktypes "github.com/moby/moby/api/types/network"
)

var errNotImplemented = errdefs.ErrNotImplemented

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	m, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := m.EnsureDefault(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	nets, err := m.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	var all []networktypes.Inspect
	for _, n := range nets {
		all = append(all, convert.Network(n))
	}
	all = append(all, convert.BuiltinNetworks()...)
	out := []networktypes.Inspect{}
	for _, n := range all {
		if !f.Match("name", n.Name) || !f.Match("driver", n.Driver) || !f.MatchLabels(n.Labels) || f.Has("id") && !matchPrefix(f["id"], n.ID) {
			continue
		}
		out = append(out, n)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for _, n := range convert.BuiltinNetworks() {
		if n.Name == id {
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	m, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	if id == "bridge" {
		m.EnsureDefault(r.Context())
	}
	n, err := m.Inspect(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, convert.Network(n))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req networktypes.CreateRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, invalid("invalid JSON: "+err.Error()))
		return
	}
	if req.Name == "" {
		writeError(w, invalid("network name is required"))
		return
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		writeError(w, &categorized{msg: "IPv6 networks are not implemented", cat: errNotImplemented})
		return
	}
	o := network.CreateOptions{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Labels: req.Labels, Options: req.Options}
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		if len(req.IPAM.Config) > 1 {
			writeError(w, invalid("only one IPAM config is supported"))
			return
		}
		c := req.IPAM.Config[0]
		o.Subnet, o.Gateway, o.IPRange = c.Subnet, c.Gateway, c.IPRange
	}
	m, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	n, err := m.Create(r.Context(), o)
	if err != nil {
		writeError(w, err)
		return
	}
	s.record("network", "create", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	writeJSON(w, http.StatusCreated, networktypes.CreateResponse{ID: n.ID})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	m, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	n, err := m.Inspect(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := m.Remove(r.Context(), n.ID); err != nil {
		writeError(w, err)
		return
	}
	s.record("network", "destroy", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	m, err := s.networks()
	if err != nil {
		writeError(w, err)
		return
	}
	names, err := m.Prune(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	for _, n := range names {
		s.record("network", "destroy", n, map[string]string{"name": n})
	}
	writeJSON(w, http.StatusOK, networktypes.PruneReport{NetworksDeleted: names})
}

// connectNetwork and disconnectNetwork need the engine to attach a
// running container's namespace to another network: not in phase 1.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	writeError(w, &categorized{msg: "network connect is not implemented yet", cat: errNotImplemented})
}

func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	writeError(w, &categorized{msg: "network disconnect is not implemented yet", cat: errNotImplemented})
}
