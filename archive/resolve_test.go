package archive

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"
)

// TestResolveInRoot walks names through a tree with relative, absolute,
// escaping and looping links and checks the real path, whether it exists,
// what the last component is, and the error classes.
func TestResolveInRoot(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "a/b"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "a/f"), []byte("x"), 0o644))
	must(os.Symlink("b", filepath.Join(dir, "a/rel")))          // a/rel -> a/b
	must(os.Symlink("/a", filepath.Join(dir, "abs")))           // abs -> root/a
	must(os.Symlink("../../../..", filepath.Join(dir, "a/up"))) // climbs, stops at root
	must(os.Symlink("f", filepath.Join(dir, "a/tofile")))
	must(os.Symlink("missing/../b", filepath.Join(dir, "a/dangling")))
	must(os.Symlink("loop2", filepath.Join(dir, "loop1")))
	must(os.Symlink("loop1", filepath.Join(dir, "loop2")))
	root, err := os.OpenRoot(dir)
	must(err)
	defer root.Close()

	for _, tc := range []struct {
		name       string
		followLast bool
		path       string
		exists     bool
		mode       fs.FileMode // Info's type, when the name exists and is not the root
	}{
		{"", true, "", true, 0},
		{"/", true, "", true, 0},
		{"../../a", true, "a", true, fs.ModeDir},
		{"a/b", true, "a/b", true, fs.ModeDir},
		{"a/rel", true, "a/b", true, fs.ModeDir},
		{"a/rel", false, "a/rel", true, fs.ModeSymlink},
		{"a/rel/x/y", true, "a/b/x/y", false, 0},
		{"abs/f", false, "a/f", true, 0},
		{"abs/tofile", true, "a/f", true, 0},
		{"abs/tofile", false, "a/tofile", true, fs.ModeSymlink},
		{"a/up/a/b", true, "a/b", true, fs.ModeDir},
		{"a/up", true, "", true, 0},
		{"a/b/..", true, "a", true, fs.ModeDir},
		{"nope", false, "nope", false, 0},
		{"loop1", false, "loop1", true, fs.ModeSymlink},
	} {
		r, err := ResolveInRoot(root, tc.name, tc.followLast)
		if err != nil {
			t.Errorf("%q (follow %v): %v", tc.name, tc.followLast, err)
			continue
		}
		if r.Path != tc.path || r.Exists != tc.exists {
			t.Errorf("%q (follow %v) = %q exists %v; want %q exists %v", tc.name, tc.followLast, r.Path, r.Exists, tc.path, tc.exists)
		}
		switch {
		case !r.Exists || r.Path == "":
			if r.Info != nil {
				t.Errorf("%q: Info %v, want nil", tc.name, r.Info.Mode())
			}
		case r.Info == nil || r.Info.Mode().Type() != tc.mode:
			t.Errorf("%q: Info %v, want type %v", tc.name, r.Info, tc.mode)
		}
	}

	for _, tc := range []struct {
		name string
		is   func(error) bool
	}{
		{"loop1", errdefs.IsInvalidArgument},
		{"loop1/x", errdefs.IsInvalidArgument},
		{"a/f/x", func(err error) bool { return errdefs.IsInvalidArgument(err) && errors.Is(err, syscall.ENOTDIR) }},
		{"a/tofile/x", func(err error) bool { return errors.Is(err, syscall.ENOTDIR) }},
		{"a/dangling", func(err error) bool { return errdefs.IsInvalidArgument(err) && errors.Is(err, fs.ErrNotExist) }},
	} {
		if _, err := ResolveInRoot(root, tc.name, true); err == nil || !tc.is(err) {
			t.Errorf("%q: error %v, wrong class", tc.name, err)
		}
	}
}
