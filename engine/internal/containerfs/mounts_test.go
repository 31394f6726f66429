package containerfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testView builds a container tree from plain directories: a rootfs
// with empty mount points, a bind directory with links that would leave
// it on the host, a bind file, a read-only bind and a tmpfs of a stopped
// container.
func testView(t *testing.T) (v *view, rootfs, src, hosts string) {
	t.Helper()
	dir := t.TempDir()
	rootfs, src = filepath.Join(dir, "rootfs"), filepath.Join(dir, "host", "src")
	for _, d := range []string{"etc", "h", "ro", "tt"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	os.WriteFile(filepath.Join(rootfs, "etc", "hosts"), nil, 0o755)
	os.WriteFile(filepath.Join(rootfs, "marker"), []byte("inside"), 0o644)
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("bind data"), 0o644)
	os.WriteFile(filepath.Join(dir, "host", "secret"), []byte("host secret"), 0o600)
	os.WriteFile(filepath.Join(dir, "marker"), []byte("host marker"), 0o644)
	for name, target := range map[string]string{"root": "/", "up": "../..", "esc": "../secret"} {
		os.Symlink(target, filepath.Join(src, name))
	}
	hosts = filepath.Join(dir, "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644)
	c := record.Container{ID: "0123456789abcdef", State: record.State{Status: record.StatusExited}, Run: runtime.RunOptions{Mounts: []specs.Mount{
		{Type: "bind", Source: src, Destination: "/h"},
		{Type: "bind", Source: filepath.Join(dir, "host"), Destination: "/ro", Options: []string{"rbind", "ro"}},
		{Type: "tmpfs", Source: "tmpfs", Destination: "/tt"},
	}}}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	v = newView(c, root, []MountPoint{{Destination: "/etc/hosts", Source: hosts}})
	t.Cleanup(func() { v.close(); root.Close() })
	return v, rootfs, src, hosts
}

func readAt(t *testing.T, l location) string {
	t.Helper()
	data, err := l.root.ReadFile(l.rel)
	if err != nil {
		t.Fatalf("read %s: %v", l.cpath, err)
	}
	return string(data)
}

func TestViewLookup(t *testing.T) {
	v, _, _, _ := testView(t)
	for p, want := range map[string]string{
		"/h/f":           "bind data",
		"/etc/hosts":     "127.0.0.1 localhost\n",
		"/h/root/h/f":    "bind data",
		"/h/up/marker":   "inside", // ../.. from /h stops at the container's root
		"/h/root/marker": "inside",
		"/ro/secret":     "host secret",
	} {
		l, err := v.lookup(p, true)
		if err != nil || l.info == nil {
			t.Fatalf("lookup %s: %+v %v", p, l, err)
		}
		if got := readAt(t, l); got != want {
			t.Errorf("lookup %s: %q, want %q", p, got, want)
		}
	}
	// ../secret from /h is /secret in the container, which does not exist.
	for _, p := range []string{"/h/esc", "/h/up/host/secret", "/h/f/x", "/etc/hosts/x"} {
		if l, err := v.lookup(p, true); err != nil || l.info != nil {
			t.Errorf("lookup %s: %+v %v, want not found", p, l, err)
		}
	}
	if l, err := v.lookup("/h/esc", false); err != nil || l.info == nil || l.mount == nil || l.mount.Destination != "/h" {
		t.Errorf("lookup of the link itself: %+v %v", l, err)
	}
	if _, err := v.lookup("/tt/x", true); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("tmpfs of a stopped container: %v", err)
	}
	l, _ := v.lookup("/ro", true)
	if err := v.writable(l.mount); !errdefs.IsPermissionDenied(err) {
		t.Errorf("read-only bind: %v", err)
	}
	if l, _ := v.lookup("/h", true); v.writable(l.mount) != nil {
		t.Error("read-write bind refused")
	}
}

func TestViewExtractRoutes(t *testing.T) {
	v, rootfs, src, hosts := testView(t)
	before, _ := os.Stat(hosts)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, body string }{{"h/", ""}, {"h/new", "routed"}, {"etc/hosts", "10.0.0.1 planted\n"}, {"etc/other", "rootfs"}} {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.body == "" {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		tw.WriteHeader(hdr)
		tw.Write([]byte(e.body))
	}
	tw.Close()
	d, _ := os.Open(rootfs)
	defer d.Close()
	if err := v.extract(context.Background(), "/", d, &buf); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{filepath.Join(src, "new"): "routed", hosts: "10.0.0.1 planted\n", filepath.Join(rootfs, "etc", "other"): "rootfs"} {
		if data, err := os.ReadFile(p); string(data) != want {
			t.Errorf("%s: %q %v, want %q", p, data, err, want)
		}
	}
	if after, _ := os.Stat(hosts); !os.SameFile(before, after) {
		t.Error("the bind-mounted file was replaced, not rewritten in place")
	}
	if _, err := os.Stat(filepath.Join(rootfs, "h", "new")); err == nil {
		t.Error("an entry in a mount went to the rootfs underneath")
	}

	// A link in place of a mount point, an entry in a read-only mount or
	// in a stopped container's tmpfs are refused.
	for name, is := range map[string]func(error) bool{"h": errdefs.IsInvalidArgument, "ro/x": errdefs.IsPermissionDenied, "tt/x": errdefs.IsFailedPrecondition} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: "/"}
		tw.WriteHeader(hdr)
		tw.Close()
		if err := v.extract(context.Background(), "/", d, &buf); !is(err) {
			t.Errorf("extract %s: %v", name, err)
		}
	}
}
