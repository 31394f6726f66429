package fetcher

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/testutil"
	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushFiles writes img's manifest, config and layers to files and opens
// them read-only, in PushRequest's order.
func pushFiles(t *testing.T, img v1.Image) (*PushRequest, []*os.File) {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	add := func(data []byte) {
		p := filepath.Join(dir, strings.Repeat("b", len(files)+1))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	raw, _ := img.RawManifest()
	d, _ := img.Digest()
	mt, _ := img.MediaType()
	m, _ := img.Manifest()
	cfg, _ := img.RawConfigFile()
	req := &PushRequest{
		Manifest: Blob{Digest: d.String(), Size: int64(len(raw)), MediaType: string(mt)},
		Config:   Blob{Digest: m.Config.Digest.String(), Size: m.Config.Size, MediaType: string(m.Config.MediaType)},
	}
	add(raw)
	add(cfg)
	layers, _ := img.Layers()
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		add(data)
		req.Layers = append(req.Layers, Blob{Digest: m.Layers[i].Digest.String(), Size: m.Layers[i].Size, MediaType: string(m.Layers[i].MediaType)})
	}
	return req, files
}

// converse runs one request and returns the frames before "done", or the
// error frame's error.
func converse(t *testing.T, opts Options, req *Request) ([]Frame, error) {
	t.Helper()
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(Frame{Type: TypeRequest, Request: req}); err != nil {
		t.Fatal(err)
	}
	var frames []Frame
	for {
		f, err := c.Next()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(frames), err)
		}
		switch f.Type {
		case TypeDone:
			return frames, nil
		case TypeError:
			return frames, Err(f)
		}
		f.Payload = nil
		frames = append(frames, f)
	}
}

// statuses maps each layer digest to its progress statuses in order,
// "Pushing" counted once.
func statuses(frames []Frame) map[string][]string {
	out := map[string][]string{}
	for _, f := range frames {
		s := out[f.Digest]
		if f.Status == StatusPushing && len(s) > 0 && s[len(s)-1] == StatusPushing {
			continue
		}
		if f.Status == StatusMounted {
			f.Status += " " + f.From
		}
		out[f.Digest] = append(s, f.Status)
	}
	return out
}

// TestPushConversation pushes an image from file descriptors, through a
// fetcher process and in-process: every layer is uploaded ("Pushed") and
// the registry serves the manifest under the tag with the same digest; a
// second push finds every layer there; a push to another repository
// mounts them.
func TestPushConversation(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte("a")}}, {{Name: "b", Content: []byte("bb")}}, {{Name: "c", Content: []byte("ccc")}}}, v1.Config{})
	for _, mode := range []struct {
		name string
		opts Options
	}{{"process", Options{Command: selfFetcher}}, {"in-process", Options{}}} {
		t.Run(mode.name, func(t *testing.T) {
			p, files := pushFiles(t, img)
			mode.opts.Files = files
			ref := reg.Addr + "/" + mode.name + "/pushed:1"
			frames, err := converse(t, mode.opts, &Request{Op: OpPush, Reference: ref, Push: p, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			st := statuses(frames)
			for i, l := range p.Layers {
				want := []string{StatusPreparing, StatusPushing, StatusPushed}
				if i == 0 { // top first: the base layer waits for a slot
					want = []string{StatusPreparing, StatusWaiting, StatusPushing, StatusPushed}
				}
				if !slices.Equal(st[l.Digest], want) {
					t.Errorf("layer %d: %v, want %v", i, st[l.Digest], want)
				}
			}
			r, _ := name.ParseReference(ref, name.Insecure)
			desc, err := remote.Get(r)
			if err != nil {
				t.Fatal(err)
			}
			if desc.Digest.String() != p.Manifest.Digest {
				t.Fatalf("registry serves %s, pushed %s", desc.Digest, p.Manifest.Digest)
			}

			frames, err = converse(t, mode.opts, &Request{Op: OpPush, Reference: ref, Push: p})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Layers {
				if got := statuses(frames)[l.Digest]; !slices.Equal(got, []string{StatusPreparing, StatusExists}) {
					t.Errorf("second push of %s: %v", l.Digest, got)
				}
			}

			from := mode.name + "/pushed"
			for i := range p.Layers {
				p.Layers[i].MountFrom = []string{mode.name + "/nosuch", from}
			}
			frames, err = converse(t, mode.opts, &Request{Op: OpPush, Reference: reg.Addr + "/" + mode.name + "/other:2", Push: p})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range p.Layers {
				if got := statuses(frames)[l.Digest]; !slices.Equal(got, []string{StatusPreparing, StatusMounted + " " + from}) {
					t.Errorf("push to another repository of %s: %v", l.Digest, got)
				}
			}
		})
	}
}

// TestPushWithoutFiles: a push whose blobs were not passed fails with
// an invalid-argument error and contacts nothing.
func TestPushWithoutFiles(t *testing.T) {
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte("a")}}}, v1.Config{})
	p, files := pushFiles(t, img)
	_, err := converse(t, Options{Files: files[:1]}, &Request{Op: OpPush, Reference: "127.0.0.1:1/x:1", Push: p})
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("push with too few files: %v", err)
	}
}

// TestLoginAndTags checks a credential against a registry with HTTP
// basic auth through a fetcher process, and lists tags.
func TestLoginAndTags(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.WithHtpasswd("alice", "s3cret"))
	opts := Options{Command: selfFetcher}
	if _, err := converse(t, opts, &Request{Op: OpLogin, Registry: reg.Addr, Auth: &Auth{Username: "alice", Password: "wrong"}}); !errdefs.IsUnauthorized(err) ||
		!strings.Contains(err.Error(), reg.Addr) {
		t.Fatalf("login with a wrong password: %v", err)
	}
	if _, err := converse(t, opts, &Request{Op: OpLogin, Registry: reg.Addr, Auth: &Auth{Username: "alice", Password: "s3cret"}}); err != nil {
		t.Fatalf("login: %v", err)
	}

	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte("a")}}}, v1.Config{})
	for _, tag := range []string{"1", "2", "latest"} {
		reg.Push(t, "tagged:"+tag, img)
	}
	auth := &Auth{Username: "alice", Password: "s3cret"}
	frames, err := converse(t, opts, &Request{Op: OpTags, Reference: reg.Addr + "/tagged", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, f := range frames {
		tags = append(tags, f.Tags...)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"1", "2", "latest"}) {
		t.Fatalf("tags %v", tags)
	}
	if _, err := converse(t, opts, &Request{Op: OpTags, Reference: reg.Addr + "/tagged"}); !errdefs.IsUnauthorized(err) {
		t.Fatalf("tags without credentials: %v", err)
	}
	p, files := pushFiles(t, img)
	_, err = converse(t, Options{Command: selfFetcher, Files: files}, &Request{Op: OpPush, Reference: reg.Addr + "/tagged:3", Push: p})
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "pushing "+reg.Addr+"/tagged:3: no basic auth credentials") {
		t.Fatalf("push without credentials: %v", err)
	}
}
