package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pullFailExit is the exit status of a failed `berth pull`: Docker's CLI
// exits 1 for a request the engine refused (only run/create use 125).
const pullFailExit = 1

// storeState is what a pull can leave in an engine's store: committed
// blobs, ingest files, snapshot directories and image records.
type storeState struct {
	blobs, ingest, snapshots []string
	images                   string
}

func (e *env) storeState() storeState {
	e.t.Helper()
	list := func(pattern string) []string {
		m, err := filepath.Glob(filepath.Join(e.root, pattern))
		if err != nil {
			e.t.Fatal(err)
		}
		slices.Sort(m)
		return m
	}
	return storeState{
		blobs:     list("content/blobs/sha256/*"),
		ingest:    list("content/ingest/*"),
		snapshots: list("snapshots/*/snapshots/*"),
		images:    e.ok("images", "-a", "-q", "--no-trunc"),
	}
}

// diff says how after differs from s ("" when equal).
func (s storeState) diff(after storeState) string {
	var out []string
	for _, c := range []struct {
		what          string
		before, after []string
	}{{"blobs", s.blobs, after.blobs}, {"ingest files", s.ingest, after.ingest}, {"snapshots", s.snapshots, after.snapshots}} {
		for _, p := range c.after {
			if !slices.Contains(c.before, p) {
				out = append(out, "new "+c.what+": "+p)
			}
		}
		for _, p := range c.before {
			if !slices.Contains(c.after, p) {
				out = append(out, "lost "+c.what+": "+p)
			}
		}
	}
	if s.images != after.images {
		out = append(out, "images: "+strconv.Quote(s.images)+" became "+strconv.Quote(after.images))
	}
	return strings.Join(out, "\n")
}

// pullFails runs `berth pull ref` and checks Docker's failure shape: exit
// pullFailExit, exactly one line on stderr ("Error: ..."), naming the
// image (subject) and containing each of causes; and that the store is
// exactly as before.
func (e *env) pullFails(ref, subject string, causes ...string) {
	e.t.Helper()
	before := e.storeState()
	r := e.berth("pull", ref)
	if r.code != pullFailExit {
		e.t.Fatalf("pull %s: exit %d, want %d\nstdout: %s\nstderr: %s", ref, r.code, pullFailExit, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "Error: ") || !strings.HasSuffix(r.stderr, "\n") {
		e.t.Fatalf("pull %s: stderr is not one error line: %q", ref, r.stderr)
	}
	for _, want := range append([]string{subject}, causes...) {
		if !strings.Contains(r.stderr, want) {
			e.t.Fatalf("pull %s: stderr %q lacks %q", ref, r.stderr, want)
		}
	}
	for _, suffix := range []string{": data loss", ": unavailable", ": not found", ": unknown", ": not implemented", ": unauthenticated"} {
		if strings.HasSuffix(strings.TrimSpace(r.stderr), suffix) {
			e.t.Fatalf("pull %s: stderr shows the error category: %q", ref, r.stderr)
		}
	}
	e.t.Logf("pull %s: %s", ref, strings.TrimSpace(r.stderr))
	if d := before.diff(e.storeState()); d != "" {
		e.t.Fatalf("pull %s (%q) changed the store:\n%s", ref, strings.TrimSpace(r.stderr), d)
	}
}

// gzipBytes compresses data.
func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// blobFault is a proxy fault that hits GET requests for one blob only.
func blobFault(dg v1.Hash, fault func(resp *http.Response) error) func(*http.Response) error {
	return func(resp *http.Response) error {
		if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+dg.String()) || resp.StatusCode != http.StatusOK {
			return nil
		}
		// Let the other layers commit (and unpack) first, so that the
		// failure has something to clean up.
		time.Sleep(500 * time.Millisecond)
		return fault(resp)
	}
}

// corrupt flips one byte of a body, keeping its length.
type corrupt struct {
	rc      io.ReadCloser
	flipped bool
}

func (c *corrupt) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if n > 0 && !c.flipped {
		p[n/2] ^= 0xff
		c.flipped = true
	}
	return n, err
}

func (c *corrupt) Close() error { return c.rc.Close() }

// TestPullBadInput: every kind of bad registry input fails the pull with
// one line naming the image and the cause, and leaves the store as it was:
// no new blob, ingest file, snapshot or image record. The engine already
// holds an image sharing the first layer, which must survive.
func TestPullBadInput(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newEnv(t)

	shared := []testutil.TarEntry{{Name: "shared", Content: []byte("shared layer\n")}}
	cfg := v1.Config{Cmd: []string{"/shared"}}
	baseRef, _ := reg.Push(t, "base:1", testutil.LayeredImage(t, [][]testutil.TarEntry{shared}, cfg))
	e.ok("pull", baseRef)

	// A three-layer image: the shared layer, a middle one that downloads
	// and unpacks, and a last one the faults hit.
	three := testutil.LayeredImage(t, [][]testutil.TarEntry{
		shared,
		{{Name: "middle", Content: bytes.Repeat([]byte("m"), 64<<10)}},
		{{Name: "last", Content: bytes.Repeat([]byte("l"), 256<<10)}},
	}, cfg)
	reg.Push(t, "three:1", three)
	layers, err := three.Layers()
	if err != nil {
		t.Fatal(err)
	}
	last, err := layers[2].Digest()
	if err != nil {
		t.Fatal(err)
	}

	// A layer whose stored blob is a gzip stream cut in half: its digest
	// matches, its content is not a whole layer.
	whole := gzipBytes(t, testutil.TarBytes(t, []testutil.TarEntry{{Name: "big", Content: bytes.Repeat([]byte("0123456789abcdef"), 8<<10)}}))
	truncated, err := mutate.Append(testutil.LayeredImage(t, [][]testutil.TarEntry{shared}, cfg),
		mutate.Addendum{Layer: static.NewLayer(whole[:len(whole)/2], types.OCILayer)})
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "truncated:1", truncated)

	unknown, err := mutate.Append(testutil.LayeredImage(t, [][]testutil.TarEntry{shared}, cfg),
		mutate.Addendum{Layer: static.NewLayer([]byte("not a tar"), "application/vnd.berth.test.unknown")})
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "unknown:1", unknown)

	// An index that lists one manifest, for an architecture not this host's.
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	base := testutil.LayeredImage(t, [][]testutil.TarEntry{shared}, cfg)
	foreign, err := mutate.ConfigFile(base, mustConfig(t, base, other))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{
		Add: foreign, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: other}},
	})
	tag, err := name.NewTag(reg.Addr+"/foreign:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}

	corruptAddr := proxyRegistry(t, reg, blobFault(last, func(resp *http.Response) error {
		resp.Body = &corrupt{rc: resp.Body}
		return nil
	}))
	cutAddr := proxyRegistry(t, reg, blobFault(last, func(resp *http.Response) error {
		// Content-Length stays: the client sees the connection close early.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, resp.ContentLength/2), resp.Body}
		return nil
	}))
	failAddr := proxyRegistry(t, reg, blobFault(last, func(resp *http.Response) error {
		resp.Body.Close()
		body := `{"errors":[{"code":"UNKNOWN","message":"storage backend failed"}]}`
		resp.StatusCode, resp.Status = http.StatusInternalServerError, "500 Internal Server Error"
		resp.Header.Set("Content-Type", "application/json")
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		resp.ContentLength = int64(len(body))
		resp.Body = io.NopCloser(strings.NewReader(body))
		return nil
	}))
	authReg := testutil.StartRegistry(t, testutil.WithHtpasswd("alice", "s3cret"))
	authReg.Push(t, "private:1", testutil.LayeredImage(t, [][]testutil.TarEntry{shared}, cfg))

	for _, tc := range []struct {
		name, ref, subject string
		causes             []string
	}{
		{"blob does not match its digest", corruptAddr + "/three:1", corruptAddr + "/three:1", []string{last.String(), "digest mismatch"}},
		{"layer transfer cut short", cutAddr + "/three:1", cutAddr + "/three:1", []string{last.String(), "the registry sent", "bytes"}},
		{"truncated layer", reg.Addr + "/truncated:1", reg.Addr + "/truncated:1", []string{"unpacking layer", "unexpected EOF"}},
		{"unknown layer media type", reg.Addr + "/unknown:1", reg.Addr + "/unknown:1", []string{`unsupported layer media type "application/vnd.berth.test.unknown"`}},
		{"index for another platform only", reg.Addr + "/foreign:1", reg.Addr + "/foreign:1", []string{"no matching manifest for linux/" + runtime.GOARCH}},
		{"unknown tag (404)", reg.Addr + "/three:nosuch", reg.Addr + "/three:nosuch", []string{"manifest for " + reg.Addr + "/three:nosuch not found", "manifest unknown: manifest unknown"}},
		{"unknown repository (404)", reg.Addr + "/nosuch:1", reg.Addr + "/nosuch:1", []string{"manifest for " + reg.Addr + "/nosuch:1 not found", "manifest unknown: manifest unknown"}},
		{"no credentials (401)", authReg.Addr + "/private:1", authReg.Addr + "/private", []string{"pull access denied", "unauthorized"}},
		{"server fault (500)", failAddr + "/three:1", failAddr + "/three:1", []string{"500", "storage backend failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.pullFails(tc.ref, tc.subject, tc.causes...)
		})
	}
	e.t = t

	// The faults were the proxies': the same image straight from the
	// registry pulls.
	e.ok("pull", reg.Addr+"/three:1")
	if _, err := os.Stat(filepath.Join(e.root, "content", "blobs", "sha256", last.Hex)); err != nil {
		t.Fatalf("good pull did not store the last layer: %v", err)
	}
}

// mustConfig is img's config file for linux/arch.
func mustConfig(t *testing.T, img v1.Image, arch string) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	return cf
}
