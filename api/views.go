package api

import (
	"context"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	containertypes "github.com/moby/moby/api/types/container"
)

// volumesDir is where the volume store keeps volumes ("" without one).
func (s *Server) volumesDir() string {
	if s.opts.Volumes == nil {
		return ""
	}
	return strings.TrimSuffix(s.opts.Volumes.DataDir("x"), "/x/_data")
}

// summary is one entry of GET /containers/json: c with its network
// endpoints (read, best effort, while it runs) and its volumes.
func (s *Server) summary(ctx context.Context, c engine.Container) containertypes.Summary {
	var eps []network.Endpoint
	if m, err := s.networks(); err == nil && c.State.Status == engine.StatusRunning {
		eps, _ = m.Endpoints(ctx, c.ID)
	}
	return convert.Summary(c, convert.Endpoints(c, eps), s.volumesDir())
}
