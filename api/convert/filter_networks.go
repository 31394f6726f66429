package convert

import (
	"regexp"
	"slices"

	networktypes "github.com/moby/moby/api/types/network"
)

// networkFilterKeys are the keys GET /networks accepts, Docker's.
var networkFilterKeys = []string{"dangling", "driver", "id", "label", "name", "scope", "type"}

// CheckNetworkFilters refuses, as dockerd does, a key GET /networks does
// not know ("invalid filter 'KEY'"), a type other than custom or builtin
// ("invalid filter: 'type'='V'") and a dangling filter that is not one
// boolean: errdefs.ErrInvalidArgument.
func (f Filters) CheckNetworkFilters() error {
	for k := range f {
		if !slices.Contains(networkFilterKeys, k) {
			return invalid("invalid filter '" + k + "'")
		}
	}
	for v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return invalid("invalid filter: 'type'='" + v + "'")
		}
	}
	if len(f["dangling"]) > 1 {
		return invalid(`got more than one value for filter key "dangling"`)
	}
	for v := range f["dangling"] {
		if _, ok := parseBool(v); !ok {
			return invalid(`invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`)
		}
	}
	return nil
}

// MatchNetwork applies GET /networks's filters to n, as dockerd: name and
// id match as regular expressions (so any substring), driver and scope
// exactly, label by key or key=value, type custom (user-defined) or
// builtin (bridge, host, none), dangling true for user-defined networks
// no container is attached to (n.Containers) and false for the others.
// Values of one key are OR-ed, keys AND-ed.
func (f Filters) MatchNetwork(n networktypes.Inspect) bool {
	builtin := n.Name == "bridge" || n.Name == "host" || n.Name == "none"
	if !f.MatchPattern("name", n.Name) || !f.MatchPattern("id", n.ID) || !f.Match("driver", n.Driver) ||
		!f.Match("scope", n.Scope) || !f.MatchLabels(n.Labels) {
		return false
	}
	typ := "custom"
	if builtin {
		typ = "builtin"
	}
	if !f.Match("type", typ) {
		return false
	}
	for v := range f["dangling"] {
		want, _ := parseBool(v)
		if want != (!builtin && len(n.Containers) == 0) {
			return false
		}
	}
	return true
}

// MatchPattern reports whether value passes the filter key as dockerd's
// filters.Args.Match does: equal to one of the values, or matched by one
// read as a regular expression (unanchored: "web" matches "myweb1"); a
// value that is no valid expression only matches equal. True when key is
// not filtered on. The name filters of networks and volumes use it.
func (f Filters) MatchPattern(key, value string) bool {
	set := f[key]
	if len(set) == 0 || set[value] {
		return true
	}
	for p := range set {
		if ok, err := regexp.MatchString(p, value); err == nil && ok {
			return true
		}
	}
	return false
}

// parseBool reads a dangling value as dockerd does ("true"/"1",
// "false"/"0").
func parseBool(v string) (b, ok bool) {
	switch v {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}
