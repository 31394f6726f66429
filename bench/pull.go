package main

import (
	"archive/tar"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Shape of the pull benchmark's image: 6 layers of 17 MB of random bytes
// (gzip cannot shrink them), about 102 MB compressed in all.
const (
	pullLayers     = 6
	pullLayerBytes = 17_000_000
	pullFiles      = 4 // per layer
	pullRepo       = "bench/random:latest"
)

// randomImage builds the pull benchmark's image and returns it with its
// compressed size in bytes. Layer i holds data/layerI/file0..3 filled from
// a ChaCha8 stream with a fixed seed, so the digests never change.
func randomImage(t *benchTB) (v1.Image, int64) {
	layers := make([][]testutil.TarEntry, pullLayers)
	for i := range layers {
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("berth-bench-layer-%d", i))
		rng := rand.NewChaCha8(seed)
		dir := fmt.Sprintf("data/layer%d/", i)
		layers[i] = []testutil.TarEntry{{Name: "data/", Type: tar.TypeDir}, {Name: dir, Type: tar.TypeDir}}
		for f := range pullFiles {
			buf := make([]byte, pullLayerBytes/pullFiles)
			rng.Read(buf)
			layers[i] = append(layers[i], testutil.TarEntry{Name: fmt.Sprintf("%sfile%d", dir, f), Content: buf})
		}
	}
	img := testutil.LayeredImage(t, layers, v1.Config{Cmd: []string{"/bin/true"}})
	m, err := img.Manifest()
	t.check(err, "manifest")
	var size int64
	for _, l := range m.Layers {
		size += l.Size
	}
	return img, size
}

// benchPull measures `berth pull` (download, verify, unpack into overlay
// snapshots) into a fresh --root against `skopeo copy` (download, verify)
// into a fresh OCI layout, both from the loopback registry, alternating, n
// times each after one untimed warm-up of each.
func benchPull(t *benchTB, env *benchEnv, ref string, size int64, n int) result {
	ctx := t.Context()
	dir := t.TempDir()
	var last berthRoot // the root to `berth rm -f` in if interrupted
	t.Cleanup(func() { last.removeContainers() })
	// fresh removes the previous directory, syncs the disk so that
	// neither tool pays for the other's writeback, and makes a new one.
	prev := ""
	fresh := func() string {
		if prev != "" {
			removeAll(prev)
		}
		unix.Sync()
		d, err := os.MkdirTemp(dir, "pull-")
		t.check(err, "mkdir")
		prev = d
		return d
	}
	pullBerth := func() (time.Duration, error) {
		last = newBerthRoot(env.berth, fresh())
		return run(ctx, last.bin, last.args("pull", "-q", "--tls-verify=false", ref)...)
	}
	pullSkopeo := func() (time.Duration, error) {
		layout := filepath.Join(fresh(), "oci")
		return run(ctx, "skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
			"docker://"+ref, "oci:"+layout+":latest")
	}

	log.Printf("pull: warm-up, then %d pulls each of berth and skopeo, alternating", n)
	bs, ss := alternate(t, n, pullBerth, pullSkopeo)
	removeAll(prev)
	return result{
		name:     "pull",
		what:     fmt.Sprintf("pull, %d layers, %.0f MB compressed, fresh root", pullLayers, float64(size)/1e6),
		baseline: "skopeo copy to oci: (no unpack)",
		berth:    bs, base: ss, targets: []target{{ratioAtMost, 1.5, "pull target"}},
	}
}
