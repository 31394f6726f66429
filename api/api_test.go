package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
)

// fakeBackend answers Container with ErrNotFound; every other method is
// the nil interface's (a test calling one panics, showing the handler
// reached further than it should).
type fakeBackend struct {
	Backend
}

func (fakeBackend) Container(_ context.Context, ref string) (engine.Container, error) {
	return engine.Container{}, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

func serve(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	s := New(Options{Backend: fakeBackend{}, Version: "test"})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

func TestVersionPrefixAndHeaders(t *testing.T) {
	cases := []struct {
		method, target string
		code           int
		body           string
	}{
		{"GET", "/_ping", 200, "OK"},
		{"HEAD", "/_ping", 200, ""},
		{"GET", "/v1.24/_ping", 200, "OK"},
		{"GET", "/v1.50/_ping", 200, "OK"},
		{"GET", "/v1.51/_ping", 400, "client version 1.51 is too new. Maximum supported API version is 1.50"},
		{"GET", "/v1.23/_ping", 400, "client version 1.23 is too old"},
		{"GET", "/v1.x/_ping", 400, "malformed API version"},
		{"GET", "/v1.45/containers/abc/json", 404, "No such container: abc"},
		{"POST", "/v1.45/containers/abc/wait?condition=nope", 400, "invalid condition: nope"},
		{"GET", "/nosuch", 404, "page not found"},
	}
	for _, c := range cases {
		rec := serve(t, c.method, c.target, "")
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.target, rec.Code, rec.Body, c.code, c.body)
		}
		h := rec.Header()
		if h.Get("Api-Version") != MaxVersion || h.Get("Ostype") != "linux" || h.Get("Docker-Experimental") != "false" || !strings.HasPrefix(h.Get("Server"), "Berth/test") {
			t.Errorf("%s %s: headers %v", c.method, c.target, h)
		}
		if c.code >= 400 {
			var e errorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
				t.Errorf("%s %s: error body %q is not Docker's {\"message\": …}", c.method, c.target, rec.Body)
			}
			if strings.HasSuffix(e.Message, ": not found") {
				t.Errorf("%s %s: category suffix leaked: %q", c.method, c.target, e.Message)
			}
		}
	}
}

func TestStatusOf(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errdefs.ErrNotFound, 404},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), 409},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrInvalidArgument, 400},
		{errdefs.ErrNotImplemented, 501},
		{errdefs.ErrUnavailable, 503},
		{errdefs.ErrPermissionDenied, 403},
		{errdefs.ErrUnauthenticated, 401},
		{errors.New("disk on fire"), 500},
	}
	for _, c := range cases {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

var _ http.Handler = (*Server)(nil)
