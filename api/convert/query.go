package convert

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/events"
	eventtypes "github.com/moby/moby/api/types/events"
	networktypes "github.com/moby/moby/api/types/network"
)

// ParseTime reads Docker's since/until: Unix seconds with an optional
// fraction ("1700000000.5"), or RFC 3339. "" is the zero time.
func ParseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, invalid("invalid time value: " + v)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, invalid("invalid time value: " + v)
		}
	}
	return time.Unix(s, ns), nil
}

// Filters is Docker's filters query parameter: key → set of values.
type Filters map[string]map[string]bool

// ParseFilters accepts {"key":{"v":true}} and the older {"key":["v"]}.
func ParseFilters(v string) (Filters, error) {
	f := Filters{}
	if v == "" {
		return f, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, invalid("invalid filter: " + err.Error())
	}
	for k, msg := range raw {
		set := map[string]bool{}
		var m map[string]bool
		var l []string
		if json.Unmarshal(msg, &m) == nil {
			for x, ok := range m {
				if ok {
					set[x] = true
				}
			}
		} else if json.Unmarshal(msg, &l) == nil {
			for _, x := range l {
				set[x] = true
			}
		} else {
			return nil, invalid("invalid filter value for " + k)
		}
		f[k] = set
	}
	return f, nil
}

// Has reports whether key is filtered on.
func (f Filters) Has(key string) bool { return len(f[key]) > 0 }

// Match reports whether value passes the filter key: true when key is not
// filtered on.
func (f Filters) Match(key, value string) bool {
	set := f[key]
	return len(set) == 0 || set[value]
}

// MatchLabels checks "label" filters ("k" or "k=v") against labels.
func (f Filters) MatchLabels(labels map[string]string) bool {
	for l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// MatchPrefix reports whether one of the set is a prefix of id (the id
// filter of containers and networks).
func MatchPrefix(set map[string]bool, id string) bool {
	for p := range set {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// MatchNetwork applies GET /networks's filters to n: name, driver, label
// and id (a prefix).
func (f Filters) MatchNetwork(n networktypes.Inspect) bool {
	return f.Match("name", n.Name) && f.Match("driver", n.Driver) && f.MatchLabels(n.Labels) &&
		(!f.Has("id") || MatchPrefix(f["id"], n.ID))
}

// MatchEvent applies GET /events's filters to ev: type, event and action
// (both the action), and a filter named after ev's type (container,
// image, network, volume) matching its ID or its "name" attribute.
func (f Filters) MatchEvent(ev events.Event) bool {
	if !f.Match("type", ev.Type) || !f.Match("event", ev.Action) || !f.Match("action", ev.Action) {
		return false
	}
	return !f.Has(ev.Type) || f.Match(ev.Type, ev.ID) || f.Match(ev.Type, ev.Attributes["name"])
}

// Event is ev as one message of GET /events (scope local).
func Event(ev events.Event) eventtypes.Message {
	return eventtypes.Message{
		Type: eventtypes.Type(ev.Type), Action: eventtypes.Action(ev.Action), Scope: "local",
		Actor: eventtypes.Actor{ID: ev.ID, Attributes: ev.Attributes},
		Time:  ev.TimeNano / int64(time.Second), TimeNano: ev.TimeNano,
	}
}

// MatchReference applies the reference filter (glob patterns on
// familiar names, with or without tag).
func MatchReference(patterns map[string]bool, tags []string) bool {
	for p := range patterns {
		for _, t := range tags {
			repo, _, _ := strings.Cut(t, ":")
			if ok, _ := pathMatch(p, t); ok {
				return true
			}
			if ok, _ := pathMatch(p, repo); ok {
				return true
			}
		}
	}
	return false
}

func pathMatch(pattern, name string) (bool, error) {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, `[^/]*`) + "$"
	return regexp.MatchString(re, name)
}
