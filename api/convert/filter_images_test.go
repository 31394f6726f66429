package convert

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
)

func TestFilterImages(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	img := func(name, id string, created time.Time, labels map[string]string) engine.Image {
		var i engine.Image
		i.Record.Name, i.Record.Config = name, digest.Digest("sha256:"+digits(id))
		i.Config.Created, i.Config.Config.Labels = &created, labels
		return i
	}
	imgs := []engine.Image{
		img("127.0.0.1:5093/busybox:latest", "a", t0, map[string]string{"k": "v"}),
		img("127.0.0.1:5093/busybox:v2", "b", t0.Add(time.Hour), nil),
		img("docker.io/library/alpine:3", "c", t0.Add(2*time.Hour), nil),
		img("sha256:"+digits("d"), "d", t0.Add(3*time.Hour), nil),
	}
	look := fakeLookup{imgs: map[string]string{"alpine:3": "sha256:" + digits("c")}}
	names := func(filters string) []string {
		t.Helper()
		kept, err := FilterImages(context.Background(), mustFilters(t, filters), imgs, look)
		if err != nil {
			t.Fatalf("%s: %v", filters, err)
		}
		var out []string
		for _, i := range kept {
			out = append(out, i.Record.Name[:min(len(i.Record.Name), 30)])
		}
		return out
	}
	for filters, want := range map[string][]string{
		`{"reference":["127.0.0.1:5093/busybox"]}`:    {"127.0.0.1:5093/busybox:latest", "127.0.0.1:5093/busybox:v2"},
		`{"reference":["127.0.0.1:5093/busybox:v2"]}`: {"127.0.0.1:5093/busybox:v2"},
		`{"reference":["alp*"]}`:                      {"docker.io/library/alpine:3"},
		`{"dangling":["true"]}`:                       {"sha256:" + digits("d")[:23]},
		`{"dangling":["0"],"label":["k=v"]}`:          {"127.0.0.1:5093/busybox:latest"},
		`{"before":["alpine:3"]}`:                     {"127.0.0.1:5093/busybox:latest", "127.0.0.1:5093/busybox:v2"},
		`{"since":["alpine:3"]}`:                      {"sha256:" + digits("d")[:23]},
	} {
		if got := names(filters); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", filters, got, want)
		}
	}
	for filters, want := range map[string]string{
		`{"bogus":["x"]}`:        "invalid filter 'bogus'",
		`{"dangling":["maybe"]}`: "invalid filter 'dangling=maybe'",
		`{"reference":["[x"]}`:   "invalid filter 'reference=[x'",
	} {
		_, err := FilterImages(context.Background(), mustFilters(t, filters), imgs, look)
		if !errdefs.IsInvalidArgument(err) || err.Error() != want+": invalid argument" {
			t.Errorf("%s: error %v, want %q", filters, err, want)
		}
	}
	if _, err := FilterImages(context.Background(), mustFilters(t, `{"since":["nope"]}`), imgs, look); !errdefs.IsNotFound(err) {
		t.Errorf("since an unknown image: %v, want not found", err)
	}
}

// digits is a 64-hex-digit ID made of s repeated.
func digits(s string) string {
	out := ""
	for len(out) < 64 {
		out += s
	}
	return out[:64]
}
