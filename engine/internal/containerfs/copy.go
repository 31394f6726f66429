package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/mount"
	"github.com/containerd/errdefs"
)

// PathStat describes one path inside a container, as Docker's
// X-Docker-Container-Path-Stat: base name, size in bytes, mode, mtime
// and, for a symbolic link, its target.
type PathStat struct {
	Name       string
	Size       int64
	Mode       fs.FileMode
	Mtime      time.Time
	LinkTarget string
}

// CopyOptions tune copying into and out of a container (`docker cp`).
type CopyOptions struct {
	// FollowLink (-L) copies what a symbolic link source points to
	// rather than the link.
	FollowLink bool
	// Rename names the top entry of the tar instead of the source's base
	// name; "." writes the children of a directory source at the top
	// (Docker's "SRC/." form).
	Rename string
	// KeepOwner (-a) keeps the source's uid/gid; otherwise tars made of
	// host files are owned by 0:0 and extraction on the host leaves files
	// owned by the caller, as Docker's cp.
	KeepOwner bool
}

// WithRootfs calls fn with the container's root filesystem: the mounted
// rootfs of a running container, else its snapshot mounted in a private
// temporary directory for the call (read-only unless writable).
func (cf *FS) WithRootfs(ctx context.Context, c record.Container, writable bool, fn func(rootfs string) error) error {
	if c.State.Status == record.StatusRunning {
		return fn(filepath.Join(cf.Bundle(c.ID), "rootfs"))
	}
	mounts, err := cf.Snaps.Mounts(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("container %s has no root filesystem: %w", c.ShortID(), err)
	}
	if !writable {
		mounts = readOnlyMounts(mounts)
	}
	if err := os.MkdirAll(cf.Scratch, 0o711); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(cf.Scratch, "cp-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := mount.All(mounts, dir); err != nil {
		return err
	}
	defer mount.Unmount(dir)
	return fn(dir)
}

// withView calls fn with container c's filesystem as its processes see
// it: the rootfs (WithRootfs) with the container's mounts over it.
func (cf *FS) withView(ctx context.Context, c record.Container, writable bool, fn func(v *view) error) error {
	var extra []MountPoint
	if cf.EtcMounts != nil {
		extra = cf.EtcMounts(c)
	}
	return cf.WithRootfs(ctx, c, writable, func(rootfs string) error {
		root, err := os.OpenRoot(rootfs)
		if err != nil {
			return err
		}
		defer root.Close()
		v := newView(c, root, extra)
		defer v.close()
		return fn(v)
	})
}

// StatPath describes path p inside container c, named ref by the caller
// (Docker's HEAD archive). p is resolved as the container sees it: through
// its binds, volumes, the /etc files the engine binds and, while it runs,
// its tmpfs mounts (the longest mount destination that holds the path
// wins); symbolic links are followed inside the container's tree (never
// to other host paths), a link at the end only with followLink (else it
// is described, with its LinkTarget). A missing path gives
// errdefs.ErrNotFound ("Could not find the file P in container REF"); a
// tmpfs of a stopped container errdefs.ErrFailedPrecondition.
func (cf *FS) StatPath(ctx context.Context, c record.Container, ref, p string, followLink bool) (PathStat, error) {
	var st PathStat
	err := cf.withView(ctx, c, false, func(v *view) error {
		l, err := v.lookup(p, followLink)
		if err != nil {
			return err
		}
		if l.info == nil {
			return fmt.Errorf("Could not find the file %s in container %s: %w", p, ref, errdefs.ErrNotFound)
		}
		fi := l.info
		st = PathStat{Name: path.Base("/" + p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			st.LinkTarget, _ = l.root.Readlink(l.rel)
		}
		return nil
	})
	return st, err
}

// CopyFrom writes path src of container c (named ref) to w as a tar
// stream, as `docker cp CONTAINER:SRC -`. src is resolved as StatPath
// resolves it, and a directory's tree includes what is mounted inside it.
// A missing src gives errdefs.ErrNotFound.
func (cf *FS) CopyFrom(ctx context.Context, c record.Container, ref, src string, opts CopyOptions, w io.Writer) error {
	return cf.withView(ctx, c, false, func(v *view) error {
		l, err := v.lookup(src, opts.FollowLink)
		if err != nil {
			return err
		}
		if l.info == nil {
			return fmt.Errorf("Could not find the file %s in container %s: %w", src, ref, errdefs.ErrNotFound)
		}
		name := opts.Rename
		if name == "" {
			name = path.Base("/" + src)
			if name == "/" {
				name = "."
			}
		}
		tw := tar.NewWriter(w)
		tp := treeTar{ctx: ctx, tw: tw, keepOwner: opts.KeepOwner, links: map[[2]uint64]string{}, mounts: v.mountAt}
		if err := tp.top(l.root, l.rel, name, l.cpath); err != nil {
			return err
		}
		return tw.Close()
	})
}

// CopyTo extracts the tar stream r into directory dstDir of container c
// (named ref), as `docker cp - CONTAINER:DIR`. dstDir is resolved as
// StatPath resolves it and the extraction is confined to the tree it
// lands in (package archive); entries that fall on mounts below dstDir
// go into those mounts (a bind-mounted file is rewritten in place).
// Errors: errdefs.ErrNotFound when dstDir does not exist;
// errdefs.ErrInvalidArgument when it is not a directory, the tar is
// malformed or an entry would replace a mount point;
// errdefs.ErrPermissionDenied for a read-only mount ("mounted volume is
// marked read-only") or read-only rootfs, as Docker.
func (cf *FS) CopyTo(ctx context.Context, c record.Container, ref, dstDir string, r io.Reader, opts CopyOptions) error {
	return cf.withView(ctx, c, !c.Run.ReadOnlyRootfs, func(v *view) error {
		l, err := v.lookup(dstDir, true)
		if err != nil {
			return err
		}
		if l.info == nil {
			return fmt.Errorf("Could not find the file %s in container %s: %w", dstDir, ref, errdefs.ErrNotFound)
		}
		if err := v.writable(l.mount); err != nil {
			return err
		}
		d, err := l.root.Open(l.rel)
		if err != nil {
			return fmt.Errorf("Could not find the file %s in container %s: %w", dstDir, ref, errdefs.ErrNotFound)
		}
		defer d.Close()
		if fi, err := d.Stat(); err != nil || !fi.IsDir() {
			return fmt.Errorf("extraction point is not a directory: %w", errdefs.ErrInvalidArgument)
		}
		return v.extract(ctx, l.cpath, d, r)
	})
}

// ExtractTar applies the tar stream r to directory dir, every entry
// confined to dir (package archive's rules); with keepOwner false files
// are owned by the caller.
func ExtractTar(ctx context.Context, dir string, r io.Reader, keepOwner bool) error {
	var opts []archive.ApplyOption
	if !keepOwner {
		opts = append(opts, archive.WithoutChown())
	}
	_, err := archive.Apply(ctx, dir, r, opts...)
	return err
}

// WriteTar writes the file tree at rel inside root to w as a tar whose
// top entry is named name ("." for a directory's children only).
// Symbolic links are stored as links (opts.FollowLink affects only how
// the caller resolved rel); hard links within the tree as links; sockets
// are skipped. Without opts.KeepOwner entries are owned by 0:0.
func WriteTar(ctx context.Context, root *os.Root, rel, name string, opts CopyOptions, w io.Writer) error {
	tw := tar.NewWriter(w)
	tp := treeTar{ctx: ctx, tw: tw, keepOwner: opts.KeepOwner, links: map[[2]uint64]string{}}
	if err := tp.top(root, rel, name, ""); err != nil {
		return err
	}
	return tw.Close()
}

type treeTar struct {
	ctx       context.Context
	tw        *tar.Writer
	keepOwner bool
	links     map[[2]uint64]string
	// mounts, when set, gives the root of the mount whose destination is
	// the container path cpath (ok false for none): the walk crosses
	// into it as the container's tree does.
	mounts func(cpath string) (r *os.Root, rel string, ok bool, err error)
}

// top adds the tree at rel in root as name ("." for a directory's
// children only); cpath is its path in the container ("" outside one).
func (t *treeTar) top(root *os.Root, rel, name, cpath string) error {
	if name == "." {
		return t.children(root, rel, "", cpath)
	}
	return t.add(root, rel, name, cpath)
}

func (t *treeTar) children(root *os.Root, rel, name, cpath string) error {
	d, err := root.Open(rel)
	if err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, de := range entries {
		child := ""
		if cpath != "" {
			child = path.Join(cpath, de.Name())
		}
		if err := t.add(root, path.Join(rel, de.Name()), path.Join(name, de.Name()), child); err != nil {
			return err
		}
	}
	return nil
}

func (t *treeTar) add(root *os.Root, rel, name, cpath string) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	if t.mounts != nil && cpath != "" {
		r, mrel, ok, err := t.mounts(cpath)
		if err != nil {
			return err
		}
		if ok {
			root, rel = r, mrel
		}
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket != 0 {
		return nil
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = root.Readlink(rel); err != nil {
			return err
		}
	}
	hdr, err := t.header(fi, link, name)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := t.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			t.links[key] = hdr.Name
		}
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		return t.children(root, rel, name, cpath)
	case hdr.Typeflag == tar.TypeReg && hdr.Size > 0:
		f, err := root.Open(rel)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(t.tw, f, hdr.Size); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s shrank while being copied", name)
			}
			return err
		}
	}
	return nil
}

// header is the tar header of fi stored as name (a leading "/" dropped,
// "/" appended for a directory): PAX format, no user or group names,
// access and change times left out, owner 0:0 unless keepOwner.
func (t *treeTar) header(fi fs.FileInfo, link, name string) (*tar.Header, error) {
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, err
	}
	hdr.Name = strings.TrimPrefix(name, "/")
	hdr.Uname, hdr.Gname, hdr.Format = "", "", tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if !t.keepOwner {
		hdr.Uid, hdr.Gid = 0, 0
	}
	if fi.IsDir() {
		hdr.Name += "/"
	}
	return hdr, nil
}
