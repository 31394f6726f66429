package engine

import (
	"bytes"
	"context"
	"io"
	"os"

	"github.com/berthproject/berth/engine/internal/containerfs"
	"github.com/berthproject/berth/engine/internal/containerops"
	"github.com/berthproject/berth/image"
)

// Filesystem verbs on containers (cp, diff, export); the work is package
// containerfs's. Its types are re-exported here.
type (
	// PathStat describes one path inside a container, as Docker's
	// X-Docker-Container-Path-Stat: base name, size in bytes, mode, mtime
	// and, for a symbolic link, its target.
	PathStat = containerfs.PathStat
	// CopyOptions tune copying into and out of a container (`docker cp`):
	// FollowLink (-L), Rename (the tar's top entry; "." for a directory's
	// children) and KeepOwner (-a).
	CopyOptions = containerfs.CopyOptions
	// Change is one line of `docker diff`: Kind is "A", "C" or "D"; Path
	// is absolute inside the container.
	Change = containerfs.Change
)

// Change kinds, as `docker diff` prints them.
const (
	ChangeModify = containerfs.ChangeModify
	ChangeAdd    = containerfs.ChangeAdd
	ChangeDelete = containerfs.ChangeDelete
)

// containerFS is what package containerfs needs of the engine.
func (e *Engine) containerFS() *containerfs.FS {
	return &containerfs.FS{Snaps: e.snaps, Scratch: e.opts.RunRoot, Bundle: e.bundleDir, EtcMounts: e.etcMounts}
}

// etcMounts are the /etc files a start binds into container c, as
// netops writes them (the host's /etc/hosts and /etc/resolv.conf,
// read-only, with the host network), those that exist: they are
// written at the first start.
func (e *Engine) etcMounts(c Container) []containerfs.MountPoint {
	var out []containerfs.MountPoint
	for _, name := range []string{"hostname", "hosts", "resolv.conf"} {
		src, ro := e.nets.EtcFile(c.ID, name), false
		if c.Net.Mode == "host" && name != "hostname" {
			src, ro = "/etc/"+name, true
		}
		if _, err := os.Stat(src); err == nil {
			out = append(out, containerfs.MountPoint{Destination: "/etc/" + name, Source: src, ReadOnly: ro})
		}
	}
	return out
}

// StatContainerPath describes path p inside container ref (Docker's HEAD
// archive), running or not. p is resolved as the container sees it:
// through its binds, volumes, /etc/hosts, /etc/hostname and
// /etc/resolv.conf and, while it runs, its tmpfs mounts (the longest
// mount destination holding the path wins); symbolic links are followed
// inside the container's tree, never to other host paths, a link at the
// end only with followLink (else it is described, with its LinkTarget).
// A missing path gives errdefs.ErrNotFound ("Could not find the file P
// in container REF"); a path in a tmpfs of a stopped container
// errdefs.ErrFailedPrecondition.
func (e *Engine) StatContainerPath(ctx context.Context, ref, p string, followLink bool) (PathStat, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return PathStat{}, err
	}
	return e.fs.StatPath(ctx, c, ref, p, followLink)
}

// CopyFromContainer writes path src of container ref to w as a tar
// stream, as `docker cp CONTAINER:SRC -`. src is resolved as
// StatContainerPath resolves it, and a directory's tree includes what is
// mounted inside it. A missing src gives errdefs.ErrNotFound.
func (e *Engine) CopyFromContainer(ctx context.Context, ref, src string, opts CopyOptions, w io.Writer) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	return e.fs.CopyFrom(ctx, c, ref, src, opts, w)
}

// CopyToContainer extracts the tar stream r into directory dstDir of
// container ref, as `docker cp - CONTAINER:DIR`. dstDir is resolved as
// StatContainerPath resolves it; entries land where the container sees
// them (in its binds and volumes; a bind-mounted file such as /etc/hosts
// is rewritten in place), each extraction confined to its tree (package
// archive). Errors: errdefs.ErrNotFound when dstDir does not exist;
// errdefs.ErrInvalidArgument when it is not a directory, the tar is
// malformed or an entry would replace a mount point;
// errdefs.ErrPermissionDenied for a read-only mount ("mounted volume is
// marked read-only") or rootfs.
func (e *Engine) CopyToContainer(ctx context.Context, ref, dstDir string, r io.Reader, opts CopyOptions) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	return e.fs.CopyTo(ctx, c, ref, dstDir, r, opts)
}

// ExtractTar applies the tar stream r to directory dir, every entry
// confined to dir (package archive's rules); with keepOwner false files
// are owned by the caller.
func ExtractTar(ctx context.Context, dir string, r io.Reader, keepOwner bool) error {
	return containerfs.ExtractTar(ctx, dir, r, keepOwner)
}

// WriteTar writes the file tree at rel inside root to w as a tar whose
// top entry is named name ("." for a directory's children only).
// Symbolic links are stored as links (opts.FollowLink affects only how
// the caller resolved rel); hard links within the tree as links; sockets
// are skipped. Without opts.KeepOwner entries are owned by 0:0.
func WriteTar(ctx context.Context, root *os.Root, rel, name string, opts CopyOptions, w io.Writer) error {
	return containerfs.WriteTar(ctx, root, rel, name, opts, w)
}

// Diff lists the changes in container ref's filesystem relative to its
// image, sorted by path, as `docker diff`. With the overlay snapshotter
// they come from the upper directory (a 0:0 character device is a
// deletion, an opaque directory a change); with vfs from comparing the
// container's tree with the image's. Unknown container:
// errdefs.ErrNotFound.
func (e *Engine) Diff(ctx context.Context, ref string) ([]Change, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return nil, err
	}
	return e.fs.Diff(ctx, c)
}

// ExportContainer writes the filesystem of container ref (ID, name or
// unique prefix) to w as a tar, like `docker export`. The rootfs is
// mounted read-only in a private temporary directory (lower layers and the
// container's own changes, whiteouts resolved) and unmounted afterwards.
// An unknown container gives errdefs.ErrNotFound; one that has no rootfs
// yet is exported from its image.
func (e *Engine) ExportContainer(ctx context.Context, ref string, w io.Writer) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	return e.fs.Export(ctx, c, w)
}

// Commit makes a new image from container ref: its image plus one layer
// holding the container's changes (deletions as OCI ".wh." whiteouts,
// opaque directories as ".wh..wh..opq"), with the config changed by
// opts, as `docker commit`. It returns the new image's record. Errors:
// errdefs.ErrNotFound for an unknown container or a container whose image
// is gone; errdefs.ErrInvalidArgument for a bad reference or change.
func (e *Engine) Commit(ctx context.Context, ref string, opts CommitOptions) (image.Record, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return image.Record{}, err
	}
	return e.images.Commit(ctx, c, opts, func() ([]byte, error) {
		if opts.Pause && c.State.Status == StatusRunning && !c.State.Paused {
			rt := e.life.RuntimeOf(c)
			if _, err := containerops.RuntimeCmd(ctx, rt, "pause", c.ID); err == nil {
				defer containerops.RuntimeCmd(context.WithoutCancel(ctx), rt, "resume", c.ID)
			}
		}
		var layer bytes.Buffer
		err := e.fs.WriteChanges(ctx, c, &layer)
		return layer.Bytes(), err
	})
}
