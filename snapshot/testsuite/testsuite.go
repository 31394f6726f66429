// Package testsuite is the conformance suite every snapshot.Snapshotter
// implementation runs from its own tests:
//
//	func TestOverlay(t *testing.T) {
//		testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter { ... })
//	}
//
// Subtests that mount need root and skip otherwise. Two subtests re-execute
// the test binary (restricted with -test.run to the calling top-level test)
// as a worker process on the same root; Run notices the worker environment
// and does the worker's job instead of the suite.
//
// When a snapshotter has a method Check(context.Context) error (reporting
// metadata and directories that disagree), the suite calls it after crashes
// and concurrent use.
package testsuite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/snapshot"
)

// Factory makes a snapshotter rooted at root; called several times with
// the same root, it must give instances that share it.
type Factory func(t *testing.T, root string) snapshot.Snapshotter

// Run runs the conformance suite against snapshotters made by newSnapshotter.
func Run(t *testing.T, newSnapshotter func(t *testing.T, root string) snapshot.Snapshotter) {
	if mode := os.Getenv(envWorker); mode != "" {
		runWorker(t, mode, newSnapshotter)
		return
	}
	tests := []struct {
		name  string
		root  bool
		check func(t *testing.T, f Factory)
	}{
		{"PrepareCommitStat", false, testPrepareCommitStat},
		{"Walk", false, testWalk},
		{"NotFound", false, testNotFound},
		{"AlreadyExists", false, testAlreadyExists},
		{"WrongKind", false, testWrongKind},
		{"RemoveWithChildren", false, testRemoveWithChildren},
		{"RemoveAndReuseKey", false, testRemoveAndReuseKey},
		{"MountsStable", false, testMountsStable},
		{"Usage", false, testUsage},
		{"Close", false, testClose},
		{"LayeredFiles", true, testLayeredFiles},
		{"DeletionHidesLower", true, testDeletionHidesLower},
		{"MetadataThroughLayers", true, testMetadataThroughLayers},
		{"ViewReadOnly", true, testViewReadOnly},
		{"ConcurrentPrepare", false, testConcurrentPrepare},
		{"TwoInstances", false, testTwoInstances},
		{"TwoProcesses", false, testTwoProcesses},
		{"CrashCleanup", false, testCrashCleanup},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root to mount")
			}
			tc.check(t, newSnapshotter)
		})
	}
}

// open makes a snapshotter on a fresh root and closes it at the end.
func open(t *testing.T, f Factory) (snapshot.Snapshotter, string) {
	t.Helper()
	root := t.TempDir()
	return openAt(t, f, root), root
}

func openAt(t *testing.T, f Factory, root string) snapshot.Snapshotter {
	t.Helper()
	sn := f(t, root)
	t.Cleanup(func() { _ = sn.Close() })
	return sn
}

type checker interface {
	Check(ctx context.Context) error
}

func check(t *testing.T, sn snapshot.Snapshotter) {
	t.Helper()
	if c, ok := sn.(checker); ok {
		if err := c.Check(context.Background()); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err error, is func(error) bool, class string) {
	t.Helper()
	if err == nil || !is(err) {
		t.Errorf("%s: got error %v, want one matching errdefs.%s", what, err, class)
	}
}

// commitLayer prepares key on parent, writes files into it (path → content;
// content "" makes a directory), and commits it as name.
func commitLayer(t *testing.T, sn snapshot.Snapshotter, name, parent string, files map[string]string) {
	t.Helper()
	ctx := context.Background()
	key := "extract-" + name
	ms, err := sn.Prepare(ctx, key, parent)
	must(t, err)
	if len(files) > 0 {
		withWritable(t, ms, func(dir string) { writeFiles(t, dir, files) })
	}
	must(t, sn.Commit(ctx, name, key))
}

// withWritable runs fn on a directory presenting ms: the bind source
// itself when ms is one bind mount and we are not root, else a real mount.
func withWritable(t *testing.T, ms []mount.Mount, fn func(dir string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		if len(ms) == 1 && ms[0].Type == "bind" {
			fn(ms[0].Source)
			return
		}
		t.Skip("needs root to mount a layered snapshot")
	}
	withMounted(t, ms, fn)
}

// withMounted mounts ms on a temporary directory, runs fn, and unmounts.
func withMounted(t *testing.T, ms []mount.Mount, fn func(dir string)) {
	t.Helper()
	target := t.TempDir()
	if err := mount.All(ms, target); err != nil {
		t.Fatalf("mount %+v: %v", ms, err)
	}
	defer func() {
		if err := mount.Unmount(target); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	fn(target)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if files[n] == "" {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.WriteFile(p, []byte(files[n]), 0o644))
	}
}

func wantFile(t *testing.T, dir, name, content string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Errorf("read %s: %v", name, err)
		return
	}
	if string(b) != content {
		t.Errorf("%s = %q, want %q", name, b, content)
	}
}

func wantMissing(t *testing.T, dir, name string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: got %v, want it missing", name, err)
	}
}

func testPrepareCommitStat(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	before := time.Now().Add(-time.Second)
	ms, err := sn.Prepare(ctx, "k1", "")
	must(t, err)
	if len(ms) == 0 {
		t.Fatal("Prepare returned no mounts")
	}
	info, err := sn.Stat(ctx, "k1")
	must(t, err)
	if info.Name != "k1" || info.Parent != "" || info.Kind != snapshot.KindActive {
		t.Errorf("Stat(k1) = %+v, want active k1 without parent", info)
	}
	if info.Created.Before(before) || info.Created.Location() != time.UTC {
		t.Errorf("Created = %v, want a recent UTC time", info.Created)
	}
	must(t, sn.Commit(ctx, "c1", "k1"))
	if _, err := sn.Stat(ctx, "k1"); !errdefs.IsNotFound(err) {
		t.Errorf("Stat(k1) after commit: %v, want not found", err)
	}
	info, err = sn.Stat(ctx, "c1")
	must(t, err)
	if info.Name != "c1" || info.Kind != snapshot.KindCommitted {
		t.Errorf("Stat(c1) = %+v, want committed c1", info)
	}
	_, err = sn.Prepare(ctx, "k2", "c1")
	must(t, err)
	must(t, sn.Commit(ctx, "c2", "k2"))
	info, err = sn.Stat(ctx, "c2")
	must(t, err)
	if info.Parent != "c1" || info.Kind != snapshot.KindCommitted {
		t.Errorf("Stat(c2) = %+v, want committed child of c1", info)
	}
	_, err = sn.View(ctx, "v", "c2")
	must(t, err)
	info, err = sn.Stat(ctx, "v")
	must(t, err)
	if info.Parent != "c2" || info.Kind != snapshot.KindView {
		t.Errorf("Stat(v) = %+v, want view of c2", info)
	}
	check(t, sn)
}

func testWalk(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "base", "", nil)
	_, err := sn.Prepare(ctx, "active", "base")
	must(t, err)
	_, err = sn.View(ctx, "view", "base")
	must(t, err)
	got := map[string]string{}
	err = sn.Walk(ctx, func(i snapshot.Info) error {
		got[i.Name] = i.Kind.String() + "/" + i.Parent
		return nil
	})
	must(t, err)
	want := map[string]string{"base": "committed/", "active": "active/base", "view": "view/base"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Walk saw %v, want %v", got, want)
	}
	// fn may call back into the snapshotter, and its error stops the walk.
	stop := errors.New("stop")
	n := 0
	err = sn.Walk(ctx, func(i snapshot.Info) error {
		n++
		if _, err := sn.Stat(ctx, i.Name); err != nil {
			return err
		}
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Walk with failing fn: err %v after %d calls, want stop after 1", err, n)
	}
}

func testNotFound(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	_, err := sn.Stat(ctx, "nope")
	wantErr(t, "Stat", err, errdefs.IsNotFound, "ErrNotFound")
	_, err = sn.Mounts(ctx, "nope")
	wantErr(t, "Mounts", err, errdefs.IsNotFound, "ErrNotFound")
	_, err = sn.Usage(ctx, "nope")
	wantErr(t, "Usage", err, errdefs.IsNotFound, "ErrNotFound")
	wantErr(t, "Remove", sn.Remove(ctx, "nope"), errdefs.IsNotFound, "ErrNotFound")
	wantErr(t, "Commit", sn.Commit(ctx, "c", "nope"), errdefs.IsNotFound, "ErrNotFound")
	_, err = sn.Prepare(ctx, "k", "nope")
	wantErr(t, "Prepare on missing parent", err, errdefs.IsNotFound, "ErrNotFound")
	_, err = sn.View(ctx, "v", "nope")
	wantErr(t, "View on missing parent", err, errdefs.IsNotFound, "ErrNotFound")
	// A failed Prepare leaves nothing behind.
	n := 0
	must(t, sn.Walk(ctx, func(snapshot.Info) error { n++; return nil }))
	if n != 0 {
		t.Errorf("Walk saw %d snapshots after failed calls, want 0", n)
	}
	check(t, sn)
}

func testAlreadyExists(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "base", "", nil)
	_, err := sn.Prepare(ctx, "k", "")
	must(t, err)
	_, err = sn.Prepare(ctx, "k", "")
	wantErr(t, "Prepare of existing key", err, errdefs.IsAlreadyExists, "ErrAlreadyExists")
	_, err = sn.Prepare(ctx, "base", "")
	wantErr(t, "Prepare of committed name", err, errdefs.IsAlreadyExists, "ErrAlreadyExists")
	_, err = sn.View(ctx, "k", "base")
	wantErr(t, "View of existing key", err, errdefs.IsAlreadyExists, "ErrAlreadyExists")
	wantErr(t, "Commit to existing name", sn.Commit(ctx, "base", "k"), errdefs.IsAlreadyExists, "ErrAlreadyExists")
	// The failed commit kept k active.
	info, err := sn.Stat(ctx, "k")
	must(t, err)
	if info.Kind != snapshot.KindActive {
		t.Errorf("k is %v after failed commit, want active", info.Kind)
	}
	check(t, sn)
}

func testWrongKind(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "base", "", nil)
	_, err := sn.Prepare(ctx, "active", "")
	must(t, err)
	_, err = sn.View(ctx, "view", "base")
	must(t, err)
	_, err = sn.Prepare(ctx, "k", "active")
	wantErr(t, "Prepare on active parent", err, errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	_, err = sn.Prepare(ctx, "k", "view")
	wantErr(t, "Prepare on view parent", err, errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	wantErr(t, "Commit of view", sn.Commit(ctx, "c", "view"), errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	wantErr(t, "Commit of committed", sn.Commit(ctx, "c", "base"), errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	_, err = sn.Mounts(ctx, "base")
	wantErr(t, "Mounts of committed", err, errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
}

func testRemoveWithChildren(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "base", "", map[string]string{"f": "x"})
	commitLayer(t, sn, "mid", "base", nil)
	_, err := sn.View(ctx, "view", "mid")
	must(t, err)
	wantErr(t, "Remove of parent of a committed child", sn.Remove(ctx, "base"), errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	wantErr(t, "Remove of parent of a view", sn.Remove(ctx, "mid"), errdefs.IsFailedPrecondition, "ErrFailedPrecondition")
	if _, err := sn.Stat(ctx, "base"); err != nil {
		t.Errorf("base after refused Remove: %v", err)
	}
	must(t, sn.Remove(ctx, "view"))
	must(t, sn.Remove(ctx, "mid"))
	must(t, sn.Remove(ctx, "base"))
	for _, k := range []string{"view", "mid", "base"} {
		if _, err := sn.Stat(ctx, k); !errdefs.IsNotFound(err) {
			t.Errorf("Stat(%s) after Remove: %v, want not found", k, err)
		}
	}
	check(t, sn)
}

func testRemoveAndReuseKey(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	ms, err := sn.Prepare(ctx, "k", "")
	must(t, err)
	withWritable(t, ms, func(dir string) { writeFiles(t, dir, map[string]string{"old": "1"}) })
	must(t, sn.Remove(ctx, "k"))
	ms, err = sn.Prepare(ctx, "k", "")
	must(t, err)
	withWritable(t, ms, func(dir string) { wantMissing(t, dir, "old") })
	u, err := sn.Usage(ctx, "k")
	must(t, err)
	if u.Inodes != 1 {
		t.Errorf("reused key has %d inodes, want 1 (an empty layer)", u.Inodes)
	}
	check(t, sn)
}

func testMountsStable(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "l1", "", nil)
	commitLayer(t, sn, "l2", "l1", nil)
	for _, parent := range []string{"", "l1", "l2"} {
		key := "k-" + parent
		ms, err := sn.Prepare(ctx, key, parent)
		must(t, err)
		again, err := sn.Mounts(ctx, key)
		must(t, err)
		if fmt.Sprint(ms) != fmt.Sprint(again) {
			t.Errorf("Mounts(%s) = %v, Prepare gave %v", key, again, ms)
		}
		for _, m := range ms {
			if hasOption(m, "ro") {
				t.Errorf("active %s has a read-only mount %v", key, m)
			}
		}
		vms, err := sn.View(ctx, "v-"+parent, parent)
		must(t, err)
		for _, m := range vms {
			writable := strings.Contains(strings.Join(m.Options, ","), "upperdir=")
			if m.Type == "bind" && !hasOption(m, "ro") || m.Type != "bind" && writable {
				t.Errorf("view on %q: mount %v is not read-only", parent, m)
			}
		}
	}
	ms, err := sn.Mounts(ctx, "k-")
	must(t, err)
	if len(ms) != 1 || ms[0].Type != "bind" || !hasOption(ms[0], "rw") {
		t.Errorf("Prepare without parent gave %v, want one rw bind mount", ms)
	}
}

func hasOption(m mount.Mount, o string) bool {
	for _, x := range m.Options {
		if x == o {
			return true
		}
	}
	return false
}

func testUsage(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	ms, err := sn.Prepare(ctx, "k", "")
	must(t, err)
	empty, err := sn.Usage(ctx, "k")
	must(t, err)
	if empty.Inodes != 1 {
		t.Errorf("empty snapshot has %d inodes, want 1", empty.Inodes)
	}
	const size = 1 << 20
	data := bytes.Repeat([]byte("berth"), size/5+1)[:size]
	withWritable(t, ms, func(dir string) {
		must(t, os.WriteFile(filepath.Join(dir, "big"), data, 0o644))
		must(t, os.Link(filepath.Join(dir, "big"), filepath.Join(dir, "big-link")))
		must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
		must(t, os.Symlink("big", filepath.Join(dir, "d", "sym")))
	})
	u, err := sn.Usage(ctx, "k")
	must(t, err)
	if u.Inodes != empty.Inodes+3 {
		t.Errorf("Inodes = %d, want %d (root, big counted once, d, sym)", u.Inodes, empty.Inodes+3)
	}
	if u.Size < size || u.Size >= 2*size {
		t.Errorf("Size = %d, want between %d and %d (hard link counted once)", u.Size, size, 2*size)
	}
	must(t, sn.Commit(ctx, "c", "k"))
	uc, err := sn.Usage(ctx, "c")
	must(t, err)
	if uc.Inodes != u.Inodes || uc.Size < size {
		t.Errorf("usage after commit %+v, want the active's %+v", uc, u)
	}
	// A child's own layer starts small for layered snapshotters; a copying
	// one holds the full tree. Either way it is at least an empty layer.
	_, err = sn.Prepare(ctx, "child", "c")
	must(t, err)
	uch, err := sn.Usage(ctx, "child")
	must(t, err)
	if uch.Inodes < 1 {
		t.Errorf("child usage %+v", uch)
	}
}

func testClose(t *testing.T, f Factory) {
	sn := f(t, t.TempDir())
	must(t, sn.Close())
	must(t, sn.Close())
}

func testLayeredFiles(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "l1", "", map[string]string{"a": "a1", "dir/b": "b1", "keep": "k"})
	commitLayer(t, sn, "l2", "l1", map[string]string{"a": "a2", "dir/c": "c2"})
	commitLayer(t, sn, "l3", "l2", map[string]string{"d": "d3"})
	ms, err := sn.Prepare(ctx, "run", "l3")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		wantFile(t, dir, "a", "a2")
		wantFile(t, dir, "dir/b", "b1")
		wantFile(t, dir, "dir/c", "c2")
		wantFile(t, dir, "keep", "k")
		wantFile(t, dir, "d", "d3")
		writeFiles(t, dir, map[string]string{"keep": "changed", "new": "n"})
		wantFile(t, dir, "keep", "changed")
	})
	// Writes to the active snapshot never reach its parents.
	vms, err := sn.View(ctx, "check", "l3")
	must(t, err)
	withMounted(t, vms, func(dir string) {
		wantFile(t, dir, "keep", "k")
		wantMissing(t, dir, "new")
	})
	// The mounts survive a remount, with the writes kept.
	ms, err = sn.Mounts(ctx, "run")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		wantFile(t, dir, "keep", "changed")
		wantFile(t, dir, "new", "n")
	})
	check(t, sn)
}

func testDeletionHidesLower(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "l1", "", map[string]string{"gone": "x", "dir/gone": "y", "dir/stay": "z", "whole/f": "w"})
	ms, err := sn.Prepare(ctx, "k2", "l1")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		must(t, os.Remove(filepath.Join(dir, "gone")))
		must(t, os.Remove(filepath.Join(dir, "dir/gone")))
		must(t, os.RemoveAll(filepath.Join(dir, "whole")))
		wantMissing(t, dir, "gone")
	})
	must(t, sn.Commit(ctx, "l2", "k2"))
	ms, err = sn.Prepare(ctx, "k3", "l2")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		wantMissing(t, dir, "gone")
		wantMissing(t, dir, "dir/gone")
		wantMissing(t, dir, "whole")
		wantFile(t, dir, "dir/stay", "z")
		// A file of the same name can come back.
		writeFiles(t, dir, map[string]string{"gone": "again"})
		wantFile(t, dir, "gone", "again")
	})
	vms, err := sn.View(ctx, "v1", "l1")
	must(t, err)
	withMounted(t, vms, func(dir string) { wantFile(t, dir, "gone", "x") })
}

func testMetadataThroughLayers(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	ms, err := sn.Prepare(ctx, "k1", "")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		p := func(n string) string { return filepath.Join(dir, n) }
		must(t, os.WriteFile(p("suid"), []byte("#!/bin/sh\n"), 0o644))
		must(t, os.Chown(p("suid"), 1000, 1001))
		must(t, unix.Chmod(p("suid"), 0o4755))
		must(t, os.Link(p("suid"), p("hard")))
		must(t, os.Symlink("suid", p("sym")))
		must(t, os.Lchown(p("sym"), 1002, 1002))
		must(t, unix.Mkfifo(p("fifo"), 0o600))
		must(t, unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Setxattr(p("suid"), "user.berth", []byte("v"), 0))
		must(t, os.Mkdir(p("olddir"), 0o755))
		must(t, unix.Chmod(p("olddir"), 0o1777))
		must(t, os.WriteFile(p("olddir/f"), []byte("f"), 0o600))
		must(t, os.Chtimes(p("olddir/f"), old, old))
		must(t, os.Chtimes(p("olddir"), old, old))
	})
	must(t, sn.Commit(ctx, "l1", "k1"))
	ms, err = sn.Prepare(ctx, "k2", "l1")
	must(t, err)
	withMounted(t, ms, func(dir string) {
		st := func(n string) *syscall.Stat_t {
			var s syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(dir, n), &s); err != nil {
				t.Fatalf("lstat %s: %v", n, err)
			}
			return &s
		}
		s := st("suid")
		if s.Mode&07777 != 0o4755 || s.Uid != 1000 || s.Gid != 1001 {
			t.Errorf("suid: mode %o owner %d:%d, want 4755 1000:1001", s.Mode&07777, s.Uid, s.Gid)
		}
		h := st("hard")
		if h.Ino != s.Ino || s.Nlink != 2 {
			t.Errorf("hard link: inode %d vs %d, nlink %d; want one inode with 2 links", h.Ino, s.Ino, s.Nlink)
		}
		if l, err := os.Readlink(filepath.Join(dir, "sym")); err != nil || l != "suid" {
			t.Errorf("symlink: %q %v", l, err)
		}
		if s := st("sym"); s.Uid != 1002 {
			t.Errorf("symlink owner %d, want 1002", s.Uid)
		}
		if s := st("fifo"); s.Mode&unix.S_IFMT != unix.S_IFIFO {
			t.Errorf("fifo has mode %o", s.Mode)
		}
		if s := st("null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != unix.Mkdev(1, 3) {
			t.Errorf("device: mode %o rdev %d", s.Mode, s.Rdev)
		}
		buf := make([]byte, 16)
		if n, err := unix.Getxattr(filepath.Join(dir, "suid"), "user.berth", buf); err != nil || string(buf[:n]) != "v" {
			t.Errorf("xattr user.berth: %q %v", buf[:max(n, 0)], err)
		}
		for _, n := range []string{"olddir", "olddir/f"} {
			s := st(n)
			if got := time.Unix(s.Mtim.Unix()).UTC(); !got.Equal(old) {
				t.Errorf("%s mtime %v, want %v", n, got, old)
			}
		}
		if s := st("olddir"); s.Mode&07777 != 0o1777 {
			t.Errorf("olddir mode %o, want 1777", s.Mode&07777)
		}
	})
}

func testViewReadOnly(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "l1", "", map[string]string{"one": "1"})
	commitLayer(t, sn, "l2", "l1", map[string]string{"two": "2"})
	for _, tc := range []struct{ parent, file string }{{"l1", "one"}, {"l2", "two"}, {"", ""}} {
		ms, err := sn.View(ctx, "view-"+tc.parent, tc.parent)
		must(t, err)
		withMounted(t, ms, func(dir string) {
			if tc.file != "" {
				wantFile(t, dir, "one", "1")
				wantFile(t, dir, tc.file, map[string]string{"one": "1", "two": "2"}[tc.file])
			}
			err := os.WriteFile(filepath.Join(dir, "x"), []byte("x"), 0o644)
			if !errors.Is(err, syscall.EROFS) {
				t.Errorf("write into view of %q: %v, want EROFS", tc.parent, err)
			}
			if tc.file != "" {
				if err := os.Remove(filepath.Join(dir, tc.file)); !errors.Is(err, syscall.EROFS) {
					t.Errorf("remove in view of %q: %v, want EROFS", tc.parent, err)
				}
			}
		})
	}
}

func testConcurrentPrepare(t *testing.T, f Factory) {
	ctx := context.Background()
	sn, _ := open(t, f)
	commitLayer(t, sn, "base", "", map[string]string{"f": "base"})
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	mounts := make([][]mount.Mount, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mounts[i], errs[i] = sn.Prepare(ctx, "k"+strconv.Itoa(i), "base")
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Prepare k%d: %v", i, err)
			continue
		}
		s := fmt.Sprint(mounts[i])
		if seen[s] {
			t.Errorf("k%d has the same mounts as another key: %s", i, s)
		}
		seen[s] = true
	}
	// Racing on one key: exactly one wins, the others see it exists.
	var won, exists int
	var mu sync.Mutex
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := sn.Prepare(ctx, "same", "base")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errdefs.IsAlreadyExists(err):
				exists++
			default:
				t.Errorf("racing Prepare: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || exists != 9 {
		t.Errorf("racing Prepare of one key: %d won, %d already exists; want 1 and 9", won, exists)
	}
	count := 0
	must(t, sn.Walk(ctx, func(snapshot.Info) error { count++; return nil }))
	if count != n+2 {
		t.Errorf("Walk saw %d snapshots, want %d", count, n+2)
	}
	check(t, sn)
}

// churn prepares, commits, views and removes snapshots named prefix-*.
// It leaves prefix-c0 … prefix-c<rounds-1> committed.
func churn(sn snapshot.Snapshotter, prefix, base string, rounds int) error {
	ctx := context.Background()
	for i := 0; i < rounds; i++ {
		key := fmt.Sprintf("%s-k%d", prefix, i)
		name := fmt.Sprintf("%s-c%d", prefix, i)
		if _, err := sn.Prepare(ctx, key, base); err != nil {
			return err
		}
		if err := sn.Commit(ctx, name, key); err != nil {
			return err
		}
		v := fmt.Sprintf("%s-v%d", prefix, i)
		if _, err := sn.View(ctx, v, name); err != nil {
			return err
		}
		if _, err := sn.Usage(ctx, v); err != nil {
			return err
		}
		if err := sn.Remove(ctx, v); err != nil {
			return err
		}
		tmp := fmt.Sprintf("%s-t%d", prefix, i)
		if _, err := sn.Prepare(ctx, tmp, name); err != nil {
			return err
		}
		if err := sn.Remove(ctx, tmp); err != nil {
			return err
		}
	}
	return nil
}

func wantCommitted(t *testing.T, sn snapshot.Snapshotter, prefix string, rounds int) {
	t.Helper()
	for i := 0; i < rounds; i++ {
		name := fmt.Sprintf("%s-c%d", prefix, i)
		info, err := sn.Stat(context.Background(), name)
		if err != nil || info.Kind != snapshot.KindCommitted {
			t.Errorf("Stat(%s) = %+v, %v; want committed", name, info, err)
		}
	}
}

func testTwoInstances(t *testing.T, f Factory) {
	root := t.TempDir()
	a := openAt(t, f, root)
	b := openAt(t, f, root)
	commitLayer(t, a, "base", "", map[string]string{"f": "x"})
	const rounds = 8
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, sn := range []snapshot.Snapshotter{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = churn(sn, "inst"+strconv.Itoa(i), "base", rounds)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	// Each instance sees the other's work.
	wantCommitted(t, a, "inst1", rounds)
	wantCommitted(t, b, "inst0", rounds)
	check(t, a)
}

const (
	envWorker = "BERTH_SNAPSHOT_TESTSUITE_WORKER"
	envRoot   = "BERTH_SNAPSHOT_TESTSUITE_ROOT"
	envPrefix = "BERTH_SNAPSHOT_TESTSUITE_PREFIX"
	envRounds = "BERTH_SNAPSHOT_TESTSUITE_ROUNDS"
	// workerStarted is printed by a worker once its first operation is done.
	workerStarted = "berth-snapshot-worker-started"
)

// runWorker is the body of a re-executed test binary.
func runWorker(t *testing.T, mode string, f Factory) {
	sn := f(t, os.Getenv(envRoot))
	defer sn.Close()
	prefix := os.Getenv(envPrefix)
	rounds, _ := strconv.Atoi(os.Getenv(envRounds))
	switch mode {
	case "churn":
		if err := churn(sn, prefix, "base", rounds); err != nil {
			t.Fatalf("worker: %v", err)
		}
	case "crash":
		// Runs until killed, through every operation.
		for i := 0; ; i++ {
			if err := churn(sn, fmt.Sprintf("%s%d", prefix, i), "base", 1); err != nil {
				t.Fatalf("worker: %v", err)
			}
			if i == 0 {
				fmt.Println(workerStarted)
			}
			ctx := context.Background()
			if err := sn.Remove(ctx, fmt.Sprintf("%s%d-c0", prefix, i)); err != nil {
				t.Fatalf("worker: %v", err)
			}
		}
	default:
		t.Fatalf("unknown worker mode %q", mode)
	}
}

// worker returns a command re-running the current top-level test as a
// worker on root.
func worker(t *testing.T, mode, root, prefix string, rounds int) *exec.Cmd {
	top := strings.SplitN(t.Name(), "/", 2)[0]
	exe, err := os.Executable()
	must(t, err)
	c := exec.Command(exe, "-test.run=^"+regexp.QuoteMeta(top)+"$", "-test.count=1")
	c.Env = append(os.Environ(),
		envWorker+"="+mode, envRoot+"="+root, envPrefix+"="+prefix,
		envRounds+"="+strconv.Itoa(rounds))
	return c
}

func testTwoProcesses(t *testing.T, f Factory) {
	root := t.TempDir()
	sn := openAt(t, f, root)
	commitLayer(t, sn, "base", "", map[string]string{"f": "x"})
	const rounds = 8
	cmd := worker(t, "churn", root, "proc1", rounds)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	err := churn(sn, "proc0", "base", rounds)
	werr := cmd.Wait()
	if err != nil {
		t.Errorf("this process: %v", err)
	}
	if werr != nil {
		t.Fatalf("worker process: %v\n%s", werr, out.String())
	}
	wantCommitted(t, sn, "proc0", rounds)
	wantCommitted(t, sn, "proc1", rounds)
	check(t, sn)
}

func testCrashCleanup(t *testing.T, f Factory) {
	root := t.TempDir()
	ctx := context.Background()
	sn := openAt(t, f, root)
	files := map[string]string{}
	for i := 0; i < 200; i++ {
		files[fmt.Sprintf("d%d/f%d", i%10, i)] = strings.Repeat("x", 4096)
	}
	commitLayer(t, sn, "base", "", files)
	must(t, sn.Close())
	for round := 0; round < 6; round++ {
		cmd := worker(t, "crash", root, fmt.Sprintf("r%d-", round), 0)
		stdout, err := cmd.StdoutPipe()
		must(t, err)
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		must(t, cmd.Start())
		if !waitLine(stdout, workerStarted, 30*time.Second) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("worker did not start: %s", errOut.String())
		}
		time.Sleep(time.Duration(round*7) * time.Millisecond)
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		after := openAt(t, f, root)
		// Everything recorded is usable…
		err = after.Walk(ctx, func(i snapshot.Info) error {
			if i.Kind != snapshot.KindCommitted {
				if _, err := after.Mounts(ctx, i.Name); err != nil {
					return err
				}
			}
			_, err := after.Usage(ctx, i.Name)
			return err
		})
		if err != nil {
			t.Fatalf("round %d: after kill -9: %v", round, err)
		}
		// …and the next write cleans up what the crash left.
		_, err = after.Prepare(ctx, "probe", "base")
		must(t, err)
		must(t, after.Remove(ctx, "probe"))
		check(t, after)
		must(t, after.Close())
	}
}

// waitLine reads r until a line equal to want, for at most timeout; it
// keeps draining r in the background afterwards.
func waitLine(r io.Reader, want string, timeout time.Duration) bool {
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		ok := false
		for sc.Scan() {
			if !ok && sc.Text() == want {
				ok = true
				found <- true
			}
		}
		if !ok {
			found <- false
		}
	}()
	select {
	case ok := <-found:
		return ok
	case <-time.After(timeout):
		return false
	}
}
