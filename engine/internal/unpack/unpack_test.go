package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/vfs"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newUnpacker is an Unpacker over a vfs snapshotter and a content store
// in a temporary directory. vfs mounts are bind mounts: root only.
func newUnpacker(t *testing.T) *Unpacker {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (bind mounts)")
	}
	dir := t.TempDir()
	snaps, err := vfs.New(filepath.Join(dir, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snaps.Close() })
	cs, err := content.New(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(dir, "run")
	if err := os.Mkdir(scratch, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Unpacker{Snaps: snaps, Content: cs, Scratch: scratch}
}

// layer stores a gzip layer holding the file name (content body) and
// returns its descriptor and diff ID.
func layer(t *testing.T, u *Unpacker, name, body string) (ocispec.Descriptor, digest.Digest) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())}
	if err := u.Content.Write(context.Background(), desc.Digest, desc.Size, &gz); err != nil {
		t.Fatal(err)
	}
	return desc, digest.FromBytes(raw.Bytes())
}

// names lists the snapshots, sorted.
func names(t *testing.T, s snapshot.Snapshotter) []string {
	t.Helper()
	var out []string
	if err := s.Walk(context.Background(), func(i snapshot.Info) error {
		out = append(out, i.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func sorted(ds ...digest.Digest) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	slices.Sort(out)
	return out
}

// TestUnpack: layers become committed snapshots named by chain ID, with
// their parents; a second Unpack reuses them; a layer whose content does
// not match its diff ID gives ErrDataLoss and leaves no snapshot; Remove
// deletes an image's snapshots.
func TestUnpack(t *testing.T) {
	ctx := context.Background()
	u := newUnpacker(t)
	l1, d1 := layer(t, u, "a", "one")
	l2, d2 := layer(t, u, "b", "two")
	cfg := ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{d1, d2}}}
	chains := ChainIDs(cfg.RootFS.DiffIDs)
	if chains[0] != d1 || chains[1] == d2 || len(chains) != 2 {
		t.Fatalf("chain IDs %v of %v", chains, cfg.RootFS.DiffIDs)
	}
	top, err := u.Unpack(ctx, cfg, []ocispec.Descriptor{l1, l2})
	if err != nil || top != chains[1].String() {
		t.Fatalf("Unpack = %q, %v; want %s", top, err, chains[1])
	}
	if info, err := u.Snaps.Stat(ctx, top); err != nil || info.Parent != chains[0].String() || info.Kind != snapshot.KindCommitted {
		t.Fatalf("top snapshot %+v, %v", info, err)
	}
	if got, want := names(t, u.Snaps), sorted(chains...); !slices.Equal(got, want) {
		t.Fatalf("snapshots %v, want %v", got, want)
	}
	if again, err := u.Unpack(ctx, cfg, []ocispec.Descriptor{l1, l2}); err != nil || again != top {
		t.Fatalf("second Unpack = %q, %v", again, err)
	}
	if top, err := u.Unpack(ctx, ocispec.Image{}, nil); err != nil || top != "" {
		t.Fatalf("Unpack of no layers = %q, %v", top, err)
	}

	bad := ocispec.Image{RootFS: ocispec.RootFS{DiffIDs: []digest.Digest{d1, digest.FromString("other")}}}
	if _, err := u.Unpack(ctx, bad, []ocispec.Descriptor{l1, l2}); !errdefs.IsDataLoss(err) {
		t.Fatalf("Unpack with a wrong diff ID: %v, want DataLoss", err)
	}
	if got, want := names(t, u.Snaps), sorted(chains...); !slices.Equal(got, want) {
		t.Fatalf("after a failed unpack: snapshots %v, want %v", got, want)
	}

	if err := u.Remove(ctx, cfg.RootFS.DiffIDs); err != nil {
		t.Fatal(err)
	}
	if got := names(t, u.Snaps); len(got) != 0 {
		t.Fatalf("after Remove: snapshots %v", got)
	}
	if err := u.Remove(ctx, cfg.RootFS.DiffIDs); err != nil {
		t.Fatalf("Remove of removed snapshots: %v", err)
	}
}

// manifest is the manifest and raw config of an image of layers.
func manifest(t *testing.T, layers []ocispec.Descriptor, diffIDs []digest.Digest) (ocispec.Manifest, []byte) {
	t.Helper()
	cfg, err := json.Marshal(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Manifest{Config: ocispec.Descriptor{Digest: digest.FromBytes(cfg)}, Layers: layers}, cfg
}

// TestSink: a pull's sink unpacks once the blobs are announced, in any
// order; Abort removes what it committed; a bad config or a second
// manifest is refused; a cancelled sink stops waiting for blobs.
func TestSink(t *testing.T) {
	ctx := context.Background()
	u := newUnpacker(t)
	l1, d1 := layer(t, u, "a", "one")
	l2, d2 := layer(t, u, "b", "two")
	layers, diffIDs := []ocispec.Descriptor{l1, l2}, []digest.Digest{d1, d2}

	s := u.NewSink(ctx)
	defer s.Close()
	if err := s.Wait(); err != nil {
		t.Fatalf("Wait before Manifest: %v", err)
	}
	m, cfg := manifest(t, layers, diffIDs)
	var unpacked []digest.Digest // only the sink's goroutine appends
	if err := s.Manifest(m, cfg, func(d digest.Digest) { unpacked = append(unpacked, d) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Manifest(m, cfg, nil); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("second Manifest: %v, want FailedPrecondition", err)
	}
	s.LayerReady(l2.Digest)
	s.LayerReady(l1.Digest)
	s.LayerReady(l1.Digest) // twice: harmless
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	chains := ChainIDs(diffIDs)
	if got, want := names(t, u.Snaps), sorted(chains...); !slices.Equal(got, want) {
		t.Fatalf("snapshots %v, want %v", got, want)
	}
	if !slices.Equal(unpacked, []digest.Digest{l1.Digest, l2.Digest}) {
		t.Fatalf("unpacked in order %v, want %v", unpacked, []digest.Digest{l1.Digest, l2.Digest})
	}
	// Sizes are the uncompressed tar streams', whatever the compression.
	sizes := s.Sizes()
	for i, l := range layers {
		want, err := u.UncompressedSize(l)
		if err != nil {
			t.Fatal(err)
		}
		if want <= l.Size || sizes[diffIDs[i]] != want {
			t.Fatalf("layer %d: sink measured %d, UncompressedSize %d, compressed %d", i, sizes[diffIDs[i]], want, l.Size)
		}
	}
	s.Abort()
	if got := names(t, u.Snaps); len(got) != 0 {
		t.Fatalf("after Abort: snapshots %v", got)
	}

	s = u.NewSink(ctx)
	defer s.Close()
	m, cfg = manifest(t, layers, diffIDs[:1])
	if err := s.Manifest(m, cfg, nil); !errdefs.IsDataLoss(err) {
		t.Fatalf("Manifest with too few diff IDs: %v, want DataLoss", err)
	}
	if err := s.Manifest(m, []byte("{"), nil); !errdefs.IsDataLoss(err) {
		t.Fatalf("Manifest with a malformed config: %v, want DataLoss", err)
	}

	// Layer 1 is ready, layer 2 never comes: the sink waits until Abort.
	s = u.NewSink(ctx)
	defer s.Close()
	m, cfg = manifest(t, layers, diffIDs)
	if err := s.Manifest(m, cfg, nil); err != nil {
		t.Fatal(err)
	}
	s.LayerReady(l1.Digest)
	s.Abort()
	if err := s.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after Abort: %v, want Canceled", err)
	}
	if got := names(t, u.Snaps); len(got) != 0 {
		t.Fatalf("after an aborted unpack: snapshots %v", got)
	}
}
