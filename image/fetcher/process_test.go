package fetcher

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/testutil"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestMain lets this test binary be its own fetcher: started as
// "/proc/self/exe fetcher" it runs Main instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == "fetcher" {
		if err := Main(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var selfFetcher = &Command{Path: "/proc/self/exe", Args: []string{"fetcher"}}

// readBlob reads one whole blob stream.
func readBlob(t *testing.T, c *Conn) (Frame, []byte) {
	t.Helper()
	f, err := c.Next()
	if err != nil || f.Type != TypeBlob {
		t.Fatalf("want a blob frame, got %+v, %v", f, err)
	}
	var data []byte
	for {
		d, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		if d.Type == TypeEnd {
			return f, data
		}
		if d.Type != TypeData || d.ID != f.ID {
			t.Fatalf("unexpected frame %+v", d)
		}
		data = append(data, d.Payload...)
	}
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// TestProcessConversation runs a whole conversation with a fetcher
// process against a real registry and checks, while the fetcher waits for
// the fetch list, that it has no privileges left.
func TestProcessConversation(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t)
	img := testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "a", Content: []byte("a")}}, {{Name: "b", Content: []byte("b")}}}, v1.Config{})
	ref, mdigest := reg.Push(t, "conv:latest", img)

	c, err := Start(t.Context(), Options{Command: selfFetcher})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Pid() == 0 {
		t.Fatal("root Start ran the fetcher in-process")
	}
	if err := c.Send(Frame{Type: TypeRequest, Request: &Request{Reference: ref, OS: "linux", Architecture: "amd64"}}); err != nil {
		t.Fatal(err)
	}
	mf, raw := readBlob(t, c)
	if mf.Kind != KindManifest || mf.Digest != mdigest || int64(len(raw)) != mf.Size {
		t.Fatalf("manifest frame %+v (%d bytes), want digest %s", mf, len(raw), mdigest)
	}
	cf, _ := readBlob(t, c)
	if cf.Kind != KindConfig {
		t.Fatalf("config frame %+v", cf)
	}

	st := procStatus(t, c.Pid())
	for k, v := range map[string]string{
		"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534", "Groups": "",
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
	} {
		if st[k] != v {
			t.Errorf("fetcher %s: %q, want %q", k, st[k], v)
		}
	}
	// The parent's own threads keep their bounding set: only the thread
	// that forked dropped it.
	if self := procStatus(t, os.Getpid()); self["CapBnd"] == "0000000000000000" || self["NoNewPrivs"] != "0" {
		t.Errorf("parent lost privileges: CapBnd %s NoNewPrivs %s", self["CapBnd"], self["NoNewPrivs"])
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := layers[1].Digest()
	if err := c.Send(Frame{Type: TypeFetch, Digests: []string{want.String()}}); err != nil {
		t.Fatal(err)
	}
	lf, data := readBlob(t, c)
	if lf.Kind != KindLayer || lf.Digest != want.String() || int64(len(data)) != lf.Size {
		t.Fatalf("layer frame %+v (%d bytes), want %s", lf, len(data), want)
	}
	if f, err := c.Next(); err != nil || f.Type != TypeDone {
		t.Fatalf("want done, got %+v, %v", f, err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestProcessErrorCategory: a registry 404 seen by the fetcher process
// reaches the parent as ErrNotFound with the image named.
func TestProcessErrorCategory(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t)
	for _, mode := range []struct {
		name string
		opts Options
	}{{"process", Options{Command: selfFetcher}}, {"in-process", Options{}}} {
		t.Run(mode.name, func(t *testing.T) {
			c, err := Start(t.Context(), mode.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ref := reg.Addr + "/nosuch:latest"
			if err := c.Send(Frame{Type: TypeRequest, Request: &Request{Reference: ref, OS: "linux", Architecture: "amd64"}}); err != nil {
				t.Fatal(err)
			}
			f, err := c.Next()
			if err != nil || f.Type != TypeError {
				t.Fatalf("want an error frame, got %+v, %v", f, err)
			}
			if e := Err(f); !errdefs.IsNotFound(e) || !strings.Contains(e.Error(), "manifest for "+ref+" not found") {
				t.Fatalf("error %v", e)
			}
		})
	}
}

// TestMainRefusesRoot: the fetcher body never does registry I/O as root.
func TestMainRefusesRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	if err := Main(); !errdefs.IsPermissionDenied(err) {
		t.Fatalf("Main as root: %v", err)
	}
}

// TestCancelStopsProcess: cancelling the context kills a fetcher that is
// waiting.
func TestCancelStopsProcess(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Start(ctx, Options{Command: selfFetcher})
	if err != nil {
		t.Fatal(err)
	}
	pid := c.Pid()
	cancel()
	if _, err := c.Next(); err == nil {
		t.Fatal("Next after cancel succeeded")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Fatalf("fetcher %d still exists", pid)
	}
}
