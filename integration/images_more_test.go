package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImageSizesUnpacked: sizes are the uncompressed layers', the same
// for one image ID pulled through a Docker and an OCI manifest.
func TestImageSizesUnpacked(t *testing.T) {
	reg := testutil.StartRegistry(t)
	img := testutil.BusyboxImage(t)
	ref, _ := reg.Push(t, "busybox:latest", img)
	oref, _ := reg.Push(t, "oci/busybox:latest", mutate.MediaType(img, types.OCIManifestSchema1))
	layers, _ := img.Layers()
	var want, compressed int64
	for _, l := range layers {
		rc, _ := l.Uncompressed()
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		want += n
		c, _ := l.Size()
		compressed += c
	}
	e := newEnv(t)
	e.ok("pull", ref)
	e.ok("pull", oref)
	for _, r := range []string{ref, oref} {
		if got := e.inspect(r, "{{.Size}}"); got != strconv.FormatInt(want, 10) {
			t.Fatalf("%s: Size %s, want the uncompressed %d (compressed %d)", r, got, want, compressed)
		}
	}
	if e.inspect(ref, "{{.Id}}") != e.inspect(oref, "{{.Id}}") {
		t.Fatal("one image through two manifests got two IDs")
	}
}

// TestPullDigestNamesAndStatus: digest refs are repo digests only; an
// up-to-date pull says so; platform handling.
func TestPullDigestNamesAndStatus(t *testing.T) {
	reg, ref := busybox(t)
	_, dg := reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	repo := reg.Addr + "/busybox"
	e := newEnv(t)
	out := e.ok("pull", repo)
	if !strings.HasPrefix(out, "Using default tag: latest\n") || !strings.Contains(out, "Status: Downloaded newer image for "+ref+"\n") {
		t.Fatalf("first pull:\n%s", out)
	}
	out = e.ok("pull", ref)
	if !strings.Contains(out, "Status: Image is up to date for "+ref+"\n") || strings.Contains(out, "Already exists") {
		t.Fatalf("second pull:\n%s", out)
	}
	out = e.ok("pull", repo+"@"+dg)
	if !strings.Contains(out, dg+": Pulling from busybox\n") {
		t.Fatalf("digest pull:\n%s", out)
	}
	if got := e.inspect(ref, "{{json .RepoTags}} {{json .RepoDigests}}"); got != `["`+ref+`"] ["`+repo+"@"+dg+`"]` {
		t.Fatalf("names after digest pull: %s", got)
	}
	if out := e.ok("images", "--format", "{{.Repository}} {{.Tag}}"); out != repo+" latest\n" {
		t.Fatalf("images:\n%s", out)
	}
	if out := e.ok("images", "--digests", "--format", "{{.Tag}} {{.Digest}}"); out != "latest "+dg+"\n" {
		t.Fatalf("images --digests:\n%s", out)
	}
	out = e.ok("rmi", "-f", e.inspect(ref, "{{.Id}}"))
	if strings.Count(out, "Untagged: "+repo+"@"+dg+"\n") != 1 {
		t.Fatalf("rmi -f:\n%s", out)
	}
	out = e.ok("pull", "--platform", "arm64", ref)
	if !strings.Contains(out, "WARNING: image with reference "+ref+" was found but its platform (linux/amd64) does not match the specified platform (linux/arm64)\n") {
		t.Fatalf("pull --platform arm64:\n%s", out)
	}
}

// TestImageOutputDetails: Docker's messages and shapes.
func TestImageOutputDetails(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	e.ok("tag", ref, "other:1")
	if ids := strings.Fields(e.ok("images", "-q")); len(ids) != 2 || ids[0] != ids[1] {
		t.Fatalf("images -q: %v", ids)
	}
	e.fails(`template: :1:2: executing "" at <.Nope>: can't evaluate field Nope`, "images", "--format", "{{.Nope}}")
	if got := e.inspect(ref, "{{json .Parent}}{{json .Comment}}{{json .Author}}"); got != `""""""` {
		t.Fatalf("inspect Parent/Comment/Author: %s", got)
	}
	e.fails("invalid reference format: repository name (library/UPPER/x) must be lowercase", "pull", "UPPER/x")
	e.fails("No such image: nothere:latest", "image", "inspect", "nothere")
	if out := e.ok("history", "-H=false", ref); !strings.Contains(strings.SplitN(out, "\n", 2)[0], "CREATED AT") {
		t.Fatalf("history -H=false:\n%s", out)
	}
	cid := strings.TrimSpace(e.ok("create", ref, "true"))
	id := e.inspect(ref, "{{.Id}}")
	e.ok("rmi", "other:1")
	e.fails("unable to delete "+strings.TrimPrefix(id, "sha256:")[:12]+" (must be forced) - image is being used by stopped container "+cid[:12], "rmi", strings.TrimPrefix(id, "sha256:")[:12])
	out := e.ok("system", "df", "-v")
	for _, want := range []string{"Images space usage:", "SHARED SIZE", "Containers space usage:", "LOCAL VOLUMES", "Local Volumes space usage:", "VOLUME NAME", "Build cache usage: 0B", "CACHE ID"} {
		if !strings.Contains(out, want) {
			t.Fatalf("system df -v lacks %q:\n%s", want, out)
		}
	}
}

// TestImagePruneBlobs: prune removes every blob of a pruned image, and
// old blobs no image references (an abandoned pull's).
func TestImagePruneBlobs(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	blobs := filepath.Join(e.root, "content", "blobs", "sha256")
	if _, err := os.Stat(blobs); err != nil {
		matches, _ := filepath.Glob(filepath.Join(e.root, "*", "blobs", "sha256"))
		if len(matches) != 1 {
			t.Fatalf("no blob directory under %s", e.root)
		}
		blobs = matches[0]
	}
	count := func() int { es, _ := os.ReadDir(blobs); return len(es) }
	e.ok("image", "prune", "-a", "-f")
	if n := count(); n != 0 {
		t.Fatalf("%d blobs left after prune -a", n)
	}
	// An abandoned pull's blob: young ones stay (a resume reuses them), old ones go.
	e.ok("pull", ref)
	e.ok("rmi", ref)
	e.ok("pull", ref)
	orphan := filepath.Join(blobs, strings.Repeat("0", 64))
	if err := os.WriteFile(orphan, []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	e.ok("image", "prune", "-f")
	if _, err := os.Stat(orphan); err != nil {
		t.Fatal("young unreferenced blob swept")
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(orphan, old, old)
	e.ok("image", "prune", "-f")
	if _, err := os.Stat(orphan); err == nil {
		t.Fatal("old unreferenced blob kept")
	}
	if e.inspect(ref, "{{.Id}}") == "" {
		t.Fatal("image lost")
	}
}

// TestImageSaveOCIManifest: a Docker schema2 image saves as an OCI
// manifest in the layout half, readable by skopeo and umoci.
func TestImageSaveOCIManifest(t *testing.T) {
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	dir := t.TempDir()
	saved := filepath.Join(dir, "b.tar")
	e.ok("save", "-o", saved, ref)
	layout := filepath.Join(dir, "layout")
	os.Mkdir(layout, 0o755)
	if out, err := exec.Command("tar", "-xf", saved, "-C", layout).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	out, err := exec.Command("skopeo", "inspect", "oci:"+layout+":latest").CombinedOutput()
	if err != nil || !strings.Contains(string(out), e.inspect(ref, "{{index .RootFS.Layers 0}}")[:0]) {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	if out, err := exec.Command("umoci", "unpack", "--rootless", "--image", layout+":latest", filepath.Join(dir, "bundle")).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	f := newEnv(t)
	f.ok("load", "-i", saved)
	if f.inspect(ref, "{{.Id}}") != e.inspect(ref, "{{.Id}}") {
		t.Fatal("load of the saved archive changed the ID")
	}
}
