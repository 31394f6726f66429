package containerfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/containerd/errdefs"
)

// MountPoint is one mount of a container as cp sees it: Docker's cp
// reads and writes through a container's binds, volumes and the /etc
// files the engine binds, not the rootfs directory underneath them.
type MountPoint struct {
	// Destination is the absolute path in the container.
	Destination string
	// Source is the host path mounted there: a directory or a file.
	// Unused for a tmpfs.
	Source string
	// ReadOnly refuses copies into the mount ("mounted volume is marked
	// read-only", errdefs.ErrPermissionDenied), as Docker.
	ReadOnly bool
	// Tmpfs is a tmpfs mount: only a running container has one, reached
	// through its process's root (/proc/PID/root).
	Tmpfs bool
}

// mounted is a MountPoint in a view, with its root opened on first use.
type mounted struct {
	MountPoint
	rel  string   // Destination without the leading "/"
	root *os.Root // the source directory, or a file source's directory
	base string   // "." for a directory source, else the file's name
}

// view is a container's filesystem as its processes see it: the rootfs
// with the container's mounts over it. It is an archive.Tree whose names
// are relative to the container's "/", so that archive.ResolveInRoot
// walks it as the kernel would walk the container's tree: symbolic links
// are followed with absolute targets restarting at the container's root
// and ".." stopping there, so a link inside a mount can lead back into
// the rootfs or into another mount, never to another host path.
type view struct {
	c      record.Container
	rootfs *os.Root
	// mounts are in mount order: a later one over the same destination
	// hides an earlier one. offline are tmpfs mounts of a container that
	// is not running: they have no contents.
	mounts, offline []*mounted
}

// newView is container c's view over rootfs with mounts (Run.Mounts,
// the --init binary, then extra), to be closed by the caller.
func newView(c record.Container, rootfs *os.Root, extra []MountPoint) *view {
	v := &view{c: c, rootfs: rootfs}
	var all []MountPoint
	for _, m := range c.Run.Mounts {
		if m.Destination == "" || !path.IsAbs(m.Destination) {
			continue
		}
		ro := false
		for _, o := range m.Options {
			ro = ro || o == "ro"
		}
		switch m.Type {
		case "bind":
			all = append(all, MountPoint{Destination: m.Destination, Source: m.Source, ReadOnly: ro})
		case "tmpfs":
			all = append(all, MountPoint{Destination: m.Destination, ReadOnly: ro, Tmpfs: true})
		}
	}
	if c.Run.Init && c.Run.InitPath != "" {
		all = append(all, MountPoint{Destination: "/sbin/docker-init", Source: c.Run.InitPath, ReadOnly: true})
	}
	for _, m := range append(all, extra...) {
		m.Destination = path.Clean(m.Destination)
		if m.Destination == "/" {
			continue
		}
		mt := &mounted{MountPoint: m, rel: strings.TrimPrefix(m.Destination, "/")}
		if m.Tmpfs && c.State.Status != record.StatusRunning {
			v.offline = append(v.offline, mt)
		} else {
			v.mounts = append(v.mounts, mt)
		}
	}
	return v
}

func (v *view) close() {
	for _, m := range v.mounts {
		if m.root != nil {
			m.root.Close()
		}
	}
}

// covering is the mount of mounts that name (relative to the
// container's "/") lies in: the longest destination that is name or a
// parent of it, the later one on a tie; nil for none.
func covering(mounts []*mounted, name string) *mounted {
	var best *mounted
	for _, m := range mounts {
		if (name == m.rel || strings.HasPrefix(name, m.rel+"/")) && (best == nil || len(m.rel) >= len(best.rel)) {
			best = m
		}
	}
	return best
}

// locate returns the root and the name inside it that hold name
// (relative to the container's "/"; "" or "." for the root), and the
// mount it lies in (nil for the rootfs). A tmpfs of a stopped container
// gives errdefs.ErrFailedPrecondition.
func (v *view) locate(name string) (*mounted, *os.Root, string, error) {
	name = strings.Trim(name, "/")
	if name == "." {
		name = ""
	}
	m := covering(v.mounts, name)
	if off := covering(v.offline, name); off != nil && (m == nil || len(off.rel) >= len(m.rel)) {
		return nil, nil, "", fmt.Errorf("%s is a tmpfs mount of container %s, which is not running: its contents exist only while it runs: %w", off.Destination, v.c.ShortID(), errdefs.ErrFailedPrecondition)
	}
	if m == nil {
		if name == "" {
			name = "."
		}
		return nil, v.rootfs, name, nil
	}
	if err := v.open(m); err != nil {
		return nil, nil, "", err
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(name, m.rel), "/")
	return m, m.root, path.Join(m.base, rest), nil
}

// open opens m's root once: a bind's source (followed on the host as
// the mount did), or a running container's tmpfs through its process's
// root, checked to be the container's rootfs so that a reused pid
// cannot lead elsewhere.
func (v *view) open(m *mounted) error {
	if m.root != nil {
		return nil
	}
	if m.Tmpfs {
		proc := fmt.Sprintf("/proc/%d/root", v.c.State.Pid)
		pr, err := os.OpenRoot(proc)
		if err != nil {
			return fmt.Errorf("tmpfs mount %s: %w", m.Destination, err)
		}
		defer pr.Close()
		if !sameDir(pr, v.rootfs) {
			return fmt.Errorf("tmpfs mount %s: container %s is not running: %w", m.Destination, v.c.ShortID(), errdefs.ErrFailedPrecondition)
		}
		r, err := pr.OpenRoot(m.rel)
		if err != nil {
			return fmt.Errorf("tmpfs mount %s: %w", m.Destination, err)
		}
		m.root, m.base = r, "."
		return nil
	}
	src, err := filepath.EvalSymlinks(m.Source)
	if err != nil {
		return fmt.Errorf("source of mount %s: %w", m.Destination, err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("source of mount %s: %w", m.Destination, err)
	}
	dir, base := src, "."
	if !fi.IsDir() {
		dir, base = filepath.Dir(src), filepath.Base(src)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("source of mount %s: %w", m.Destination, err)
	}
	m.root, m.base = r, base
	return nil
}

// sameDir reports whether two roots are the same directory.
func sameDir(a, b *os.Root) bool {
	fa, err1 := a.Stat(".")
	fb, err2 := b.Stat(".")
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// Lstat describes name as the container sees it (archive.Tree).
func (v *view) Lstat(name string) (fs.FileInfo, error) {
	_, r, rel, err := v.locate(name)
	if err != nil {
		return nil, err
	}
	return r.Lstat(rel)
}

// Readlink reads the link name as the container sees it (archive.Tree).
func (v *view) Readlink(name string) (string, error) {
	_, r, rel, err := v.locate(name)
	if err != nil {
		return "", err
	}
	return r.Readlink(rel)
}

// location is where a container path lies: root and rel inside it, the
// mount (nil for the rootfs), the real path in the container and its
// Lstat info (nil when it does not exist).
type location struct {
	mount *mounted
	root  *os.Root
	rel   string
	cpath string
	info  fs.FileInfo
}

// lookup resolves p in the container (archive.ResolveInRoot over the
// view) and locates the result.
func (v *view) lookup(p string, followLast bool) (location, error) {
	rel, fi, err := lookup(v, p, followLast)
	if err != nil || fi == nil {
		return location{}, err
	}
	m, r, inRoot, err := v.locate(rel)
	if err != nil {
		return location{}, err
	}
	return location{mount: m, root: r, rel: inRoot, cpath: path.Join("/", rel), info: fi}, nil
}

// lookup resolves p inside root (archive.ResolveInRoot: ".." stops at
// the root, symbolic links are followed inside it, the last one only when
// followLast) and returns its real path ("." for the root) with its Lstat
// info. info is nil when p does not exist or runs through a file.
func lookup(root archive.Tree, p string, followLast bool) (rel string, info fs.FileInfo, err error) {
	r, err := archive.ResolveInRoot(root, p, followLast)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return "", nil, nil
	}
	if err != nil || !r.Exists {
		return "", nil, err
	}
	if r.Path == "" {
		fi, err := root.Lstat(".")
		return ".", fi, err
	}
	return r.Path, r.Info, nil
}

// writable refuses a copy into mount m (nil: the rootfs) when it is
// read-only, with Docker's messages.
func (v *view) writable(m *mounted) error {
	switch {
	case m == nil && v.c.Run.ReadOnlyRootfs:
		return fmt.Errorf("container rootfs is marked read-only: %w", errdefs.ErrPermissionDenied)
	case m != nil && m.ReadOnly:
		return fmt.Errorf("mounted volume is marked read-only: %w", errdefs.ErrPermissionDenied)
	}
	return nil
}

// mountAt is the opened mount whose destination is exactly cpath, for
// tree walks that cross into mounts; ok is false when none is.
func (v *view) mountAt(cpath string) (r *os.Root, rel string, ok bool, err error) {
	name := strings.TrimPrefix(cpath, "/")
	m := covering(v.mounts, name)
	if m == nil || m.rel != name {
		return nil, "", false, nil
	}
	if err := v.open(m); err != nil {
		return nil, "", false, err
	}
	return m.root, m.base, true, nil
}
