package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestManyLayersLongRoot: an image with more layers than one page of
// overlay mount options can name (130 layers under a --root of 200+
// characters) pulls and runs, and whiteouts and opaque directories across
// layers give the tree Docker would show.
func TestManyLayersLongRoot(t *testing.T) {
	e := newEnv(t)
	long := filepath.Join(filepath.Dir(e.root), strings.Repeat("a-long-directory-name-", 10))
	e.root = filepath.Join(long, "root")
	reg := testutil.StartRegistry(t)

	const extra = 129
	layers := make([]v1.Layer, 0, extra)
	for i := 1; i <= extra; i++ {
		entries := []testutil.TarEntry{
			{Name: "layers/", Type: '5'},
			{Name: fmt.Sprintf("layers/l%03d", i), Content: []byte(fmt.Sprint(i))},
		}
		switch i {
		case 5:
			entries = append(entries, testutil.TarEntry{Name: "victim", Content: []byte("doomed")})
		case 10:
			entries = append(entries, testutil.TarEntry{Name: ".wh.victim"})
		case 20:
			entries = append(entries, testutil.TarEntry{Name: "opq/", Type: '5'}, testutil.TarEntry{Name: "opq/old", Content: []byte("old")})
		case 30:
			entries = append(entries, testutil.TarEntry{Name: "opq/", Type: '5'}, testutil.TarEntry{Name: "opq/.wh..wh..opq"}, testutil.TarEntry{Name: "opq/new", Content: []byte("new")})
		}
		layers = append(layers, testutil.TarLayer(t, entries))
	}
	img, err := mutate.AppendLayers(testutil.BusyboxImage(t), layers...)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reg.Push(t, "deep:latest", img)
	e.ok("pull", ref)
	out := e.ok("run", "--rm", ref, "sh", "-c", "ls /layers | wc -l; cat /layers/l129; echo; ls / | grep -c victim; ls /opq")
	if want := "129\n129\n0\nnew\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
