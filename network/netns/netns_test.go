package netns

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestNewDoRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "netns")
	p := filepath.Join(dir, "c1")
	if err := New(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(p); unix.Unmount(dir, unix.MNT_DETACH) })
	if err := New(p); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second New: %v", err)
	}
	var names []string
	if err := Do(p, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "lo" {
		t.Fatalf("new namespace has links %v, want only lo", names)
	}
	// Compare with this thread's namespace: /proc/self is the thread-group
	// leader, which may be a thread New discarded (Go wedges m0 instead of
	// exiting it).
	var st1, st2 unix.Stat_t
	runtime.LockOSThread()
	e1, e2 := unix.Stat(p, &st1), unix.Stat("/proc/thread-self/ns/net", &st2)
	runtime.UnlockOSThread()
	if e1 != nil || e2 != nil || st1.Ino == st2.Ino {
		t.Fatal("namespace file is the host namespace")
	}
	for range 2 {
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("file left after Remove")
	}
	if err := Do(p, func() error { return nil }); !errdefs.IsNotFound(err) {
		t.Fatalf("Do on removed: %v", err)
	}
}

// TestNoThreadLeftInNamespace checks that after New and Do no thread of
// the process (the main one included) is still in the new namespace,
// which would keep it alive after Remove.
func TestNoThreadLeftInNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "netns")
	p := filepath.Join(dir, "c1")
	if err := New(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Remove(p); unix.Unmount(dir, unix.MNT_DETACH) })
	for range 20 {
		if err := Do(p, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var ns unix.Stat_t
	if err := unix.Stat(p, &ns); err != nil {
		t.Fatal(err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("list threads: %v", err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(task, &st); err != nil {
			continue // the thread exited meanwhile
		}
		if st.Ino == ns.Ino && st.Dev == ns.Dev {
			t.Errorf("thread %s is still in the container's namespace", task)
		}
	}
	// And the namespace really goes once unmounted: a thread left in it
	// would show up as the namespace still being reachable above.
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
}
