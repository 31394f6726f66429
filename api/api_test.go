package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// fakeBackend knows one container, inspect (by its ID), and answers
// everything else about containers with ErrNotFound; every other method
// is the nil interface's (a test calling one panics, showing the handler
// reached further than it should).
type fakeBackend struct {
	Backend
	inspect containertypes.InspectResponse
	resized []uint16 // the last ResizeTTY's height and width
}

func noSuch(ref string) error {
	return fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
}

func (*fakeBackend) Container(_ context.Context, ref string) (engine.Container, error) {
	return engine.Container{}, noSuch(ref)
}

func (b *fakeBackend) InspectContainer(_ context.Context, ref string, size bool) (containertypes.InspectResponse, error) {
	if ref != b.inspect.ID || ref == "" {
		return containertypes.InspectResponse{}, noSuch(ref)
	}
	// A copy: the handler adapts it in place.
	data, _ := json.Marshal(b.inspect)
	var out containertypes.InspectResponse
	json.Unmarshal(data, &out)
	if size {
		n := int64(42)
		out.SizeRw = &n
	}
	return out, nil
}

func (b *fakeBackend) ResizeTTY(_ context.Context, ref string, height, width uint16) error {
	if ref != b.inspect.ID || ref == "" {
		return noSuch(ref)
	}
	b.resized = []uint16{height, width}
	return nil
}

func serve(t *testing.T, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	return serveWith(t, &fakeBackend{}, method, target, body)
}

func serveWith(t *testing.T, b Backend, method, target, body string) *httptest.ResponseRecorder {
	t.Helper()
	s := New(Options{Backend: b, Version: "test"})
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
			var e wire.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
				t.Errorf("%s %s: error body %q is not Docker's {\"message\": …}", c.method, c.target, rec.Body)
			}
			if strings.HasSuffix(e.Message, ": not found") {
				t.Errorf("%s %s: category suffix leaked: %q", c.method, c.target, e.Message)
			}
		}
	}
}

// GET /containers/{id}/json is the engine's inspect, adapted to the
// request's API version as dockerd adapts it.
func TestInspectByVersion(t *testing.T) {
	id := strings.Repeat("ab", 32)
	b := &fakeBackend{inspect: containertypes.InspectResponse{
		ID: id, Name: "/web", Config: &containertypes.Config{Hostname: "webhost"},
		ImageManifestDescriptor: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Size: 7},
		NetworkSettings: &containertypes.NetworkSettings{Networks: map[string]*networktypes.EndpointSettings{
			"bridge": {Aliases: []string{}}, "appnet": {Aliases: []string{"db"}},
		}},
	}}
	get := func(target string) containertypes.InspectResponse {
		rec := serveWith(t, b, "GET", target, "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		var out containertypes.InspectResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	now := get("/containers/" + id + "/json?size=1")
	if now.ImageManifestDescriptor == nil || now.SizeRw == nil || *now.SizeRw != 42 {
		t.Errorf("newest version: descriptor %v, SizeRw %v", now.ImageManifestDescriptor, now.SizeRw)
	}
	if a := now.NetworkSettings.Networks["appnet"].Aliases; !slices.Equal(a, []string{"db"}) {
		t.Errorf("newest version: aliases %v", a)
	}
	if get("/v1.47/containers/"+id+"/json").ImageManifestDescriptor != nil {
		t.Error("1.47: ImageManifestDescriptor present")
	}
	old := get("/v1.44/containers/" + id + "/json")
	if a := old.NetworkSettings.Networks["appnet"].Aliases; !slices.Equal(a, []string{"db", id[:12], "webhost"}) {
		t.Errorf("1.44: user-defined network aliases %v, want db, the short ID and the hostname", a)
	}
	if a := old.NetworkSettings.Networks["bridge"].Aliases; len(a) != 0 {
		t.Errorf("1.44: bridge aliases %v, want none", a)
	}
	if rec := serveWith(t, b, "GET", "/containers/nosuch/json", ""); rec.Code != 404 {
		t.Errorf("missing container: %d", rec.Code)
	}
}

// POST /containers/{id}/resize checks the size, then asks the engine.
func TestResize(t *testing.T) {
	id := strings.Repeat("cd", 32)
	b := &fakeBackend{inspect: containertypes.InspectResponse{ID: id}}
	for _, c := range []struct {
		query string
		code  int
	}{{"h=-1&w=80", 400}, {"h=24&w=70000", 400}, {"h=x&w=1", 400}, {"h=24&w=80", 200}} {
		if rec := serveWith(t, b, "POST", "/containers/"+id+"/resize?"+c.query, ""); rec.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.query, rec.Code, rec.Body, c.code)
		}
	}
	if !slices.Equal(b.resized, []uint16{24, 80}) {
		t.Errorf("engine resized to %v, want 24x80", b.resized)
	}
	if rec := serveWith(t, b, "POST", "/containers/nosuch/resize?h=1&w=1", ""); rec.Code != 404 {
		t.Errorf("missing container: %d", rec.Code)
	}
}

var _ http.Handler = (*Server)(nil)
