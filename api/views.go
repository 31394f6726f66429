package api

import (
	"context"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/engine"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

// endpoints lists the container's network endpoints (best effort).
func (s *Server) endpoints(ctx context.Context, c engine.Container) map[string]*networktypes.EndpointSettings {
	out := map[string]*networktypes.EndpointSettings{}
	mode := c.Net.Mode
	if mode == "" {
		mode = "bridge"
	}
	m, err := s.networks()
	if err == nil && c.State.Status == engine.StatusRunning {
		if eps, err := m.Endpoints(ctx, c.ID); err == nil {
			for _, ep := range eps {
				mac := convert.HWAddr(ep.MAC)
				out[ep.NetworkName] = &networktypes.EndpointSettings{
					NetworkID: ep.NetworkID, EndpointID: ep.ContainerID + "/" + ep.NetworkID,
					Gateway: ep.Gateway, IPAddress: ep.Address.Addr(), IPPrefixLen: ep.Address.Bits(),
					MacAddress: mac, Aliases: ep.Aliases,
				}
			}
		}
	}
	if len(out) == 0 && !strings.HasPrefix(mode, "container:") {
		out[mode] = &networktypes.EndpointSettings{}
	}
	return out
}

// volumesDir is where the volume store keeps volumes ("" without one).
func (s *Server) volumesDir() string {
	if s.opts.Volumes == nil {
		return ""
	}
	return strings.TrimSuffix(s.opts.Volumes.DataDir("x"), "/x/_data")
}

// summary is one entry of GET /containers/json.
func (s *Server) summary(ctx context.Context, c engine.Container) containertypes.Summary {
	return convert.Summary(c, s.endpoints(ctx, c), s.volumesDir())
}

// inspect is GET /containers/{id}/json.
func (s *Server) inspect(ctx context.Context, c engine.Container) containertypes.InspectResponse {
	return convert.Inspect(c, s.endpoints(ctx, c), s.volumesDir(), s.b.LogPath(c.ID), s.b.Options().Snapshotter)
}
