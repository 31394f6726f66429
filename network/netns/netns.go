// Package netns creates, enters and removes persistent network namespaces
// that are bind-mounted at a file path, the way `ip netns add` does, so that
// an OCI runtime can join them through the runtime spec
// (linux.namespaces[{type: "network", path: ...}]) and so that they outlive
// the berth process that created them.
//
// Namespace switching happens only on a goroutine that locks its OS thread,
// switches, does its work and switches the thread back to the namespace it
// came from before unlocking it, so no other goroutine ever runs in the
// wrong namespace and no thread (not even the main thread, which Go parks
// rather than exits when a locked goroutine ends on it) stays behind in a
// container's namespace keeping it alive. Only when switching back fails is
// the thread left locked, so that the runtime discards it (see the CNI ns
// package's README on why switching namespaces in a long-lived
// multi-threaded Go process is otherwise unsafe).
package netns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// New creates a new network namespace and bind-mounts it at path, which must
// not exist yet (errdefs.ErrAlreadyExists otherwise). The parent directory is
// created and, like /run/netns for iproute2, turned into a shared mount point
// so that a later Remove unmounts the namespace from mount namespaces that
// copied it. The new namespace has only a loopback interface, which is left
// down (Setup in package bridge, or the caller, brings it up).
//
// If anything fails, New leaves nothing behind. Requires CAP_SYS_ADMIN.
func New(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	if err := makeShared(dir); err != nil {
		return fmt.Errorf("netns: make %s a shared mount: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("netns %s: %w", path, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("netns: %w", err)
	}
	f.Close()

	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

// Remove unmounts the namespace at path and removes the file. The namespace
// itself disappears once no process is in it and nothing else holds it.
// Remove is idempotent: a missing path or one that is not mounted is not an
// error.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Do runs fn on an OS thread that has joined the network namespace at
// path (a bind-mounted namespace file or /proc/PID/ns/net) and returns fn's
// error; the thread is switched back to its own namespace afterwards (and
// discarded if that fails). fn must not start goroutines that expect to
// stay in the namespace: they run on other threads. Sockets fn opens stay
// in the namespace, so fn can open a netlink socket there for use on any
// thread later (see bridge.Attach).
// A path that does not exist gives errdefs.ErrNotFound.
func Do(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns %s: %w", path, errdefs.ErrNotFound)
		}
		return fmt.Errorf("netns: %w", err)
	}
	defer f.Close()
	return onThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns %s: setns: %w", path, err)
		}
		return fn()
	})
}

// onThread runs fn, which may move its thread to another network
// namespace, on a new goroutine locked to its OS thread. Afterwards the
// thread rejoins the namespace it started in and is unlocked, so the
// runtime may reuse it; if it cannot rejoin, the goroutine exits locked
// and the runtime discards the thread.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- fmt.Errorf("netns: %w", err)
			return // still locked: the thread goes, harmless here
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
		errc <- err
	}()
	return <-errc
}

// makeShared makes dir a mount point with shared propagation, bind-mounting
// it onto itself first when it is not a mount point yet.
func makeShared(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	mounted, shared, err := mountInfo(abs)
	if err != nil {
		return err
	}
	if shared {
		return nil
	}
	if !mounted {
		if err := unix.Mount(abs, abs, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
	}
	return unix.Mount("none", abs, "", unix.MS_SHARED|unix.MS_REC, "")
}

// mountInfo reports whether dir is a mount point and whether its topmost
// mount has shared propagation.
func mountInfo(dir string) (mounted, shared bool, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || unescape(fields[4]) != dir {
			continue
		}
		mounted = true
		shared = false
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				shared = true
			}
		}
	}
	return mounted, shared, sc.Err()
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
