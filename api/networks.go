package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	networktypes "github.com/moby/moby/api/types/network"
)

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	f, err := convert.ParseFilters(r.URL.Query().Get("filters"))
	if err == nil {
		err = f.CheckNetworkFilters()
	}
	if err != nil {
		wire.Error(w, err)
		return
	}
	m, ok := s.networkManager(w)
	if !ok {
		return
	}
	if _, err := m.EnsureDefault(r.Context()); err != nil {
		wire.Error(w, err)
		return
	}
	nets, err := m.List(r.Context())
	if err != nil {
		wire.Error(w, err)
		return
	}
	var all []networktypes.Inspect
	for _, n := range nets {
		all = append(all, convert.Network(n))
	}
	all = append(all, convert.BuiltinNetworks()...)
	out := []networktypes.Inspect{}
	for _, n := range all {
		if f.MatchNetwork(n) {
			out = append(out, n)
		}
	}
	wire.JSON(w, http.StatusOK, out)
}

func (s *Server) inspectNetwork(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if n, ok := convert.BuiltinNetwork(id); ok {
		wire.JSON(w, http.StatusOK, n)
		return
	}
	m, ok := s.networkManager(w)
	if !ok {
		return
	}
	if id == "bridge" {
		m.EnsureDefault(r.Context())
	}
	n, err := m.Inspect(r.Context(), id)
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, convert.Network(n))
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	body, err := wire.Body(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	o, err := convert.NetworkCreate(body)
	if err != nil {
		wire.Error(w, err)
		return
	}
	m, ok := s.networkManager(w)
	if !ok {
		return
	}
	n, err := m.Create(r.Context(), o)
	if err != nil {
		wire.Error(w, err)
		return
	}
	s.record("network", "create", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	wire.JSON(w, http.StatusCreated, networktypes.CreateResponse{ID: n.ID})
}

func (s *Server) removeNetwork(w http.ResponseWriter, r *http.Request) {
	m, ok := s.networkManager(w)
	if !ok {
		return
	}
	n, err := m.Inspect(r.Context(), r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	if err := m.Remove(r.Context(), n.ID); err != nil {
		wire.Error(w, err)
		return
	}
	s.record("network", "destroy", n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	m, ok := s.networkManager(w)
	if !ok {
		return
	}
	names, err := m.Prune(r.Context())
	if err != nil {
		wire.Error(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	for _, n := range names {
		s.record("network", "destroy", n, map[string]string{"name": n})
	}
	wire.JSON(w, http.StatusOK, networktypes.PruneReport{NetworksDeleted: names})
}

// connectNetwork is POST /networks/{id}/connect: the body's Container
// joins the network, with EndpointConfig.Aliases and
// EndpointConfig.IPAMConfig.IPv4Address (Docker's --alias and --ip). A
// running container gets the interface at once. 404 for an unknown
// network or container, 409 when already connected or the address is
// taken, 400 for host/none networks and modes.
func (s *Server) connectNetwork(w http.ResponseWriter, r *http.Request) {
	var req networktypes.ConnectRequest
	n, ok := s.networkVerb(w, r, &req)
	if !ok {
		return
	}
	var o engine.ConnectOptions
	if ep := req.EndpointConfig; ep != nil {
		o.Aliases = ep.Aliases
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			o.IP = ep.IPAMConfig.IPv4Address.String()
		}
	}
	if err := s.b.ConnectNetwork(context.WithoutCancel(r.Context()), n.ID, req.Container, o); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// disconnectNetwork is POST /networks/{id}/disconnect: the body's
// Container leaves the network (Force: even a stale endpoint). 404 for an
// unknown network or container, 400 when not connected.
func (s *Server) disconnectNetwork(w http.ResponseWriter, r *http.Request) {
	var req networktypes.DisconnectRequest
	n, ok := s.networkVerb(w, r, &req)
	if !ok {
		return
	}
	if err := s.b.DisconnectNetwork(context.WithoutCancel(r.Context()), n.ID, req.Container, req.Force); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// networkVerb decodes a connect/disconnect body into req and finds the
// network of the path; ok false once an error has been sent.
func (s *Server) networkVerb(w http.ResponseWriter, r *http.Request, req any) (network.Network, bool) {
	body, err := wire.Body(r)
	if err != nil {
		wire.Error(w, err)
		return network.Network{}, false
	}
	if err := json.Unmarshal(body, req); err != nil {
		wire.Error(w, wire.Invalid("invalid JSON: "+err.Error()))
		return network.Network{}, false
	}
	id := r.PathValue("id")
	if _, ok := convert.BuiltinNetwork(id); ok {
		wire.Error(w, wire.Invalid("container cannot be disconnected from or connected to network "+id))
		return network.Network{}, false
	}
	m, ok := s.networkManager(w)
	if !ok {
		return network.Network{}, false
	}
	if id == "bridge" {
		m.EnsureDefault(r.Context())
	}
	n, err := m.Inspect(r.Context(), id)
	if err != nil {
		wire.Error(w, err)
		return network.Network{}, false
	}
	return n, true
}

// networkManager is s.networks(), or false once its error has been sent.
func (s *Server) networkManager(w http.ResponseWriter) (Networks, bool) {
	m, err := s.networks()
	if err != nil {
		wire.Error(w, err)
		return nil, false
	}
	return m, true
}
