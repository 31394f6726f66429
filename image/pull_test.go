package image

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/internal/testutil"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type events []ProgressEvent

func (e *events) Write(p []byte) (int, error) { return len(p), nil }
func (e *events) ReportProgress(ev ProgressEvent) {
	*e = append(*e, ev)
}

func (e events) statuses(id string) []string {
	var out []string
	for _, ev := range e {
		if ev.ID == id && (ev.Status != "Downloading" || len(out) == 0 || out[len(out)-1] != "Downloading") {
			out = append(out, ev.Status)
		}
	}
	return out
}

// TestPullProgressAndReuse pulls through the fetcher (in-process here: the
// test binary has no fetcher command) and checks Docker's per-layer
// statuses, the byte counts, reuse on a second pull and an empty ingest
// directory.
func TestPullProgressAndReuse(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte(strings.Repeat("a", 100000))}}}, v1.Config{})
	ref, mdigest := reg.Push(t, "p:latest", img)
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cs, err := content.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A stale partial blob from a killed pull is pruned.
	stale := filepath.Join(dir, "ingest", "stale")
	os.WriteFile(stale, []byte("x"), 0o600)
	old := mustTime(t, "2000-01-01T00:00:00Z")
	os.Chtimes(stale, old, old)

	var ev events
	rec, err := Pull(t.Context(), cs, named, PullOptions{Progress: &ev})
	if err != nil {
		t.Fatal(err)
	}
	if rec.RepoDigest.String() != mdigest || rec.Target.Digest.String() != mdigest || !cs.Has(rec.Target.Digest) || !cs.Has(rec.Config) {
		t.Fatalf("record %+v", rec)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	short := ld.Hex[:12]
	want := []string{"Pulling fs layer", "Downloading", "Verifying Checksum", "Download complete", "Pull complete"}
	if got := ev.statuses(short); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("layer statuses %q, want %q", got, want)
	}
	var last ProgressEvent
	for _, e := range ev {
		if e.ID == short && e.Status == "Downloading" {
			last = e
		}
	}
	if last.Current != size || last.Total != size {
		t.Fatalf("last progress %+v, want %d/%d", last, size, size)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(entries) != 0 {
		t.Fatalf("ingest not empty: %v", entries)
	}

	ev = nil
	if _, err := Pull(t.Context(), cs, named, PullOptions{Progress: &ev}); err != nil {
		t.Fatal(err)
	}
	if got := ev.statuses(short); len(got) != 1 || got[0] != "Already exists" {
		t.Fatalf("second pull statuses %q", got)
	}

	// Plain writers get Docker's non-terminal lines.
	var sb strings.Builder
	cs2, _ := content.New(t.TempDir())
	if _, err := Pull(t.Context(), cs2, named, PullOptions{Progress: &sb}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), short+": Pull complete\n") || strings.Contains(sb.String(), "Downloading") {
		t.Fatalf("plain output:\n%s", sb.String())
	}
}

func TestPullErrors(t *testing.T) {
	reg := testutil.StartRegistry(t)
	cs, _ := content.New(t.TempDir())
	named, _ := reference.ParseNormalizedNamed(reg.Addr + "/nosuch:latest")
	_, err := Pull(t.Context(), cs, named, PullOptions{})
	if !errdefs.IsNotFound(err) || !strings.HasPrefix(err.Error(), "manifest for "+reg.Addr+"/nosuch:latest not found") {
		t.Fatalf("missing tag: %v", err)
	}
	reg.Stop()
	_, err = Pull(t.Context(), cs, named, PullOptions{})
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "registry unreachable") {
		t.Fatalf("registry down: %v", err)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// sink records what a pull tells its LayerSink.
type sink struct {
	mu       sync.Mutex
	manifest *ocispec.Manifest
	config   []byte
	ready    []digest.Digest
	early    bool // a layer reported before the manifest
}

func (s *sink) Manifest(m ocispec.Manifest, config []byte, _ func(digest.Digest)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifest, s.config = &m, config
	return nil
}

func (s *sink) Wait() error { return nil }

func (s *sink) LayerReady(d digest.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifest == nil {
		s.early = true
	}
	s.ready = append(s.ready, d)
}

// TestPullLayerSink: the sink hears of the manifest and config first,
// then of each distinct layer exactly once, downloaded or already there,
// and only once its blob is in the store.
func TestPullLayerSink(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{
		{{Name: "a", Content: []byte("a")}}, {{Name: "b", Content: []byte("b")}}, {{Name: "c", Content: []byte("c")}},
	}, v1.Config{})
	ref, _ := reg.Push(t, "sink:latest", img)
	named, _ := reference.ParseNormalizedNamed(ref)
	m, _ := img.Manifest()
	cs, _ := content.New(t.TempDir())
	// The first layer is already there.
	first, _ := img.LayerByDigest(m.Layers[0].Digest)
	rc, _ := first.Compressed()
	if err := cs.Write(t.Context(), digest.Digest(m.Layers[0].Digest.String()), m.Layers[0].Size, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()

	var s sink
	if _, err := Pull(t.Context(), cs, named, PullOptions{Layers: &s}); err != nil {
		t.Fatal(err)
	}
	if s.manifest == nil || s.early || len(s.manifest.Layers) != 3 {
		t.Fatalf("manifest %v, layer before manifest %v", s.manifest, s.early)
	}
	rawCfg, _ := img.RawConfigFile()
	if !bytes.Equal(s.config, rawCfg) {
		t.Fatalf("config %q", s.config)
	}
	if len(s.ready) != 3 {
		t.Fatalf("ready %v, want each of the 3 layers once", s.ready)
	}
	seen := map[digest.Digest]bool{}
	for _, d := range s.ready {
		if seen[d] || !cs.Has(d) {
			t.Fatalf("layer %s reported twice or not in the store", d)
		}
		seen[d] = true
	}
}

// TestPullCorruptLayer: a registry serving a layer whose bytes do not
// match its digest fails the pull with errdefs.ErrDataLoss; the layer is
// not committed, no ingest file is left and the sink never hears of it.
func TestPullCorruptLayer(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: bytes.Repeat([]byte("a"), 300_000)}}}, v1.Config{})
	ref, _ := reg.Push(t, "corrupt:latest", img)
	named, _ := reference.ParseNormalizedNamed(ref)
	m, _ := img.Manifest()
	ld := m.Layers[0].Digest
	data := filepath.Join(reg.StorageDir, "docker", "registry", "v2", "blobs", "sha256", ld.Hex[:2], ld.Hex, "data")
	b, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // same size, other bytes
	if err := os.WriteFile(data, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cs, _ := content.New(dir)
	var s sink
	_, err = Pull(t.Context(), cs, named, PullOptions{Layers: &s})
	if !errdefs.IsDataLoss(err) || !strings.Contains(err.Error(), ld.String()) {
		t.Fatalf("corrupt layer: %v, want a data-loss error naming %s", err, ld)
	}
	if cs.Has(digest.Digest(ld.String())) || len(s.ready) != 0 {
		t.Fatalf("corrupt layer committed (%v) or reported ready (%v)", cs.Has(digest.Digest(ld.String())), s.ready)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(entries) != 0 {
		t.Fatalf("ingest not empty: %v", entries)
	}
}

// TestPullCommittedReportsNewBlobs: PullOptions.Committed names exactly the
// blobs a pull added (index-less image: config, layers, manifest), and none
// on a second pull that finds them all.
func TestPullCommittedReportsNewBlobs(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte("a")}}, {{Name: "b", Content: []byte("b")}}}, v1.Config{})
	ref, _ := reg.Push(t, "c:1", img)
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pull := func() []string {
		var mu sync.Mutex
		var got []string
		_, err := Pull(t.Context(), cs, named, PullOptions{Insecure: true, Committed: func(d digest.Digest) {
			mu.Lock()
			got = append(got, d.String())
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	var want []string
	var blobs []string
	cs.Walk(func(d digest.Digest, _ int64) error { blobs = append(blobs, d.String()); return nil })
	if len(blobs) != 0 {
		t.Fatalf("store not empty: %v", blobs)
	}
	got := pull()
	cs.Walk(func(d digest.Digest, _ int64) error { want = append(want, d.String()); return nil })
	slices.Sort(want)
	if len(want) != 4 || !slices.Equal(got, want) {
		t.Fatalf("Committed reported %v, the store holds %v (want config, 2 layers, manifest)", got, want)
	}
	if again := pull(); len(again) != 0 {
		t.Fatalf("second pull reported %v as new", again)
	}
}
