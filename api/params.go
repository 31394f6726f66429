package api

import (
	"net/http"
	"strconv"
	"strings"
)

// boolParam reads a query flag as dockerd does: absent, "", "0", "no",
// "false" and "none" are false; anything else is true.
func boolParam(r *http.Request, name string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// intParam reads an integer query parameter; def when absent. A malformed
// value gives ErrInvalidArgument.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalid("invalid value for " + name + ": " + v)
	}
	return n, nil
}
