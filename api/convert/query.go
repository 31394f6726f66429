package convert

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
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
