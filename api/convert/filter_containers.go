package convert

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

// ContainerLookup is what the container filters resolve references
// with: *engine.Engine and the API's Backend satisfy it.
type ContainerLookup interface {
	Container(ctx context.Context, ref string) (engine.Container, error)
	InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error)
}

// NetworkLister lists the networks, for the network filter's ID prefixes.
type NetworkLister interface {
	List(ctx context.Context) ([]network.Network, error)
}

// ContainerFilterOptions are what NewContainerMatcher needs beyond the
// filters: Lookup (required) resolves before, since and ancestor;
// Networks (nil: names only) lets network match ID prefixes; VolumeDir is
// the volumes' directory (see VolumeName) for volume names.
type ContainerFilterOptions struct {
	Lookup    ContainerLookup
	Networks  NetworkLister
	VolumeDir string
}

// containerFilterKeys are the keys GET /containers/json and `ps` accept,
// Docker's.
var containerFilterKeys = []string{
	"ancestor", "before", "exited", "expose", "health", "id", "isolation", "is-task",
	"label", "name", "network", "publish", "since", "status", "volume",
}

// containerStates are the values of the status filter, Docker's.
var containerStates = []string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}

// healthStates are the values of the health filter, Docker's.
var healthStates = []string{"starting", "healthy", "unhealthy", "none"}

// ContainerMatcher applies Docker's container list filters (GET
// /containers/json, `docker ps --filter`); make it with
// NewContainerMatcher.
type ContainerMatcher struct {
	f          Filters
	names      []*regexp.Regexp
	ids        []*regexp.Regexp
	exited     []int
	ancestors  map[string]bool // image IDs and names as given
	before     []engine.Container
	since      []engine.Container
	networkIDs map[string]string // network name → ID
	publish    map[string]bool   // "PORT/PROTO"
	expose     map[string]bool
	volumeDir  string
}

// FilterArgs parses `--filter KEY=VALUE` flags into Filters (KEY lower
// case, as the docker CLI sends it). A flag without "=" gives
// errdefs.ErrInvalidArgument.
func FilterArgs(args []string) (Filters, error) {
	f := Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %w", errdefs.ErrInvalidArgument)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if f[k] == nil {
			f[k] = map[string]bool{}
		}
		f[k][strings.TrimSpace(v)] = true
	}
	return f, nil
}

// checkKeys refuses a key not in keys, as Docker: "invalid filter 'KEY'"
// (errdefs.ErrInvalidArgument).
func (f Filters) checkKeys(keys []string) error {
	for k := range f {
		if !slices.Contains(keys, k) {
			return invalidFilter(k)
		}
	}
	return nil
}

func invalidFilter(kv string) error {
	return fmt.Errorf("invalid filter '%s': %w", kv, errdefs.ErrInvalidArgument)
}

// NewContainerMatcher validates f as Docker does and resolves what it
// references. Errors: errdefs.ErrInvalidArgument for an unknown key
// ("invalid filter 'KEY'"), a bad status, exited, health or is-task
// value, or a bad port; errdefs.ErrNotFound for a before or since
// container that does not exist. An ancestor naming no image matches only
// containers created from that name, as Docker ignores it.
func NewContainerMatcher(ctx context.Context, f Filters, o ContainerFilterOptions) (*ContainerMatcher, error) {
	if err := f.checkKeys(containerFilterKeys); err != nil {
		return nil, err
	}
	m := &ContainerMatcher{f: f, ancestors: map[string]bool{}, volumeDir: o.VolumeDir}
	for v := range f["status"] {
		if !slices.Contains(containerStates, v) {
			return nil, invalidFilter("status=" + v)
		}
	}
	for v := range f["health"] {
		if !slices.Contains(healthStates, v) {
			return nil, fmt.Errorf("Unrecognised filter value for health: %s: %w", v, errdefs.ErrInvalidArgument)
		}
	}
	for v := range f["is-task"] {
		if v != "true" && v != "false" {
			return nil, fmt.Errorf("Invalid filter 'is-task=%s': %w", v, errdefs.ErrInvalidArgument)
		}
	}
	for v := range f["exited"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, invalidFilter("exited=" + v)
		}
		m.exited = append(m.exited, n)
	}
	m.names, m.ids = regexps(f["name"]), regexps(f["id"])
	for v := range f["ancestor"] {
		m.ancestors[v] = true
		if img, err := o.Lookup.InspectImage(ctx, v); err == nil {
			m.ancestors[img.ID] = true
		}
	}
	for _, k := range []string{"before", "since"} {
		for v := range f[k] {
			c, err := o.Lookup.Container(ctx, v)
			if err != nil {
				return nil, err
			}
			if k == "before" {
				m.before = append(m.before, c)
			} else {
				m.since = append(m.since, c)
			}
		}
	}
	if f.Has("network") && o.Networks != nil {
		nets, err := o.Networks.List(ctx)
		if err != nil {
			return nil, err
		}
		m.networkIDs = map[string]string{}
		for _, n := range nets {
			m.networkIDs[n.Name] = n.ID
		}
	}
	var err error
	if m.publish, err = portSet(f["publish"]); err != nil {
		return nil, err
	}
	if m.expose, err = portSet(f["expose"]); err != nil {
		return nil, err
	}
	return m, nil
}

// regexps compiles the values of a regexp-matched filter (name, id); a
// value that is no regular expression matches nothing, as in Docker.
func regexps(vals map[string]bool) []*regexp.Regexp {
	var out []*regexp.Regexp
	for v := range vals {
		if re, err := regexp.Compile(v); err == nil {
			out = append(out, re)
		}
	}
	return out
}

// portSet parses publish/expose values: "PORT[/PROTO]" or
// "START-END[/PROTO]", tcp by default, into "PORT/PROTO" keys.
func portSet(vals map[string]bool) (map[string]bool, error) {
	out := map[string]bool{}
	for v := range vals {
		spec, proto, _ := strings.Cut(v, "/")
		if proto == "" {
			proto = "tcp"
		}
		lo, hi, isRange := strings.Cut(spec, "-")
		start, err1 := strconv.ParseUint(lo, 10, 16)
		end := start
		var err2 error
		if isRange {
			end, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || end < start || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fmt.Errorf("invalid port specification: %q: %w", v, errdefs.ErrInvalidArgument)
		}
		for p := start; p <= end; p++ {
			out[strconv.FormatUint(p, 10)+"/"+proto] = true
		}
	}
	return out, nil
}

// ImpliesAll reports whether the filters select stopped containers too
// without --all: a status or exited filter.
func (m *ContainerMatcher) ImpliesAll() bool {
	return m.f.Has("status") || m.f.Has("exited")
}

// Match reports whether c passes every filter key (values of one key are
// alternatives; label values must all hold), as Docker: name and id are
// regular expressions (name with or without the leading "/"), ancestor
// the image as named or its ID, exited the code of a container that ran,
// before/since creation order, network a network name or ID prefix,
// volume a volume name, bind source or mount destination,
// publish/expose a host/container port of the listed ports, health
// "none" (berth runs no healthchecks), is-task "false".
func (m *ContainerMatcher) Match(c engine.Container) bool {
	f := m.f
	if !f.Match("status", c.DisplayStatus()) || !f.MatchLabels(c.Labels) ||
		!f.Match("health", "none") || !f.Match("is-task", "false") || f.Has("isolation") {
		return false
	}
	if f.Has("name") && !anyMatch(m.names, c.Name, "/"+c.Name) {
		return false
	}
	if f.Has("id") && !anyMatch(m.ids, c.ID) {
		return false
	}
	if f.Has("exited") && (c.State.Status != engine.StatusExited || c.State.StartedAt.IsZero() ||
		!slices.Contains(m.exited, c.State.ExitCode)) {
		return false
	}
	if f.Has("ancestor") && !m.ancestors[c.Image] && !m.ancestors[c.ImageName] && !m.ancestors[c.ImageID.String()] {
		return false
	}
	for _, b := range m.before {
		if c.ID == b.ID || !c.Created.Before(b.Created) {
			return false
		}
	}
	for _, s := range m.since {
		if c.ID == s.ID || !c.Created.After(s.Created) {
			return false
		}
	}
	return (!f.Has("network") || m.matchNetwork(c)) && (!f.Has("volume") || m.matchVolume(c)) &&
		((len(m.publish) == 0 && len(m.expose) == 0) || m.matchPorts(c))
}

func anyMatch(res []*regexp.Regexp, values ...string) bool {
	for _, re := range res {
		for _, v := range values {
			if re.MatchString(v) {
				return true
			}
		}
	}
	return false
}

// containerNetworks are the names of the networks c is configured on:
// its network mode's (unless disconnected) and those it was connected to.
func containerNetworks(c engine.Container) []string {
	var out []string
	mode := c.Net.Mode
	if mode == "" {
		mode = "bridge"
	}
	if !c.Net.PrimaryDetached && !strings.HasPrefix(mode, "container:") {
		out = append(out, mode)
	}
	for _, a := range c.Net.Extra {
		out = append(out, a.Network)
	}
	return out
}

func (m *ContainerMatcher) matchNetwork(c engine.Container) bool {
	for _, name := range containerNetworks(c) {
		if m.f.Match("network", name) {
			return true
		}
		if id := m.networkIDs[name]; id != "" && MatchPrefix(m.f["network"], id) {
			return true
		}
	}
	return false
}

func (m *ContainerMatcher) matchVolume(c engine.Container) bool {
	for _, mp := range mountPoints(c, m.volumeDir) {
		name := mp.Name
		if name == "" {
			name = mp.Source
		}
		if m.f.Match("volume", name) || m.f.Match("volume", mp.Destination) {
			return true
		}
	}
	return false
}

// matchPorts applies publish and expose to the ports ps shows for c.
func (m *ContainerMatcher) matchPorts(c engine.Container) bool {
	for _, p := range ports(c) {
		if p.PublicPort != 0 && m.publish[strconv.Itoa(int(p.PublicPort))+"/"+p.Type] {
			return true
		}
		if m.expose[strconv.Itoa(int(p.PrivatePort))+"/"+p.Type] {
			return true
		}
	}
	return false
}
