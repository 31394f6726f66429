// Package overlay is the default Snapshotter: each snapshot is one
// overlayfs layer, stacked on its committed parents.
//
// Layout under the root (see package storage for the metadata, the
// multi-process locking and the crash-safety ordering):
//
//	snapshots/<id>/fs    the layer's files (the overlay upperdir while active)
//	snapshots/<id>/work  the overlay workdir of an active snapshot; removed
//	                     right after Commit (a crash there leaves it behind,
//	                     which is harmless: Usage and mounts ignore it)
//
// Ids are short decimal numbers so that lowerdir lists of images with many
// layers fit in the one page of mount options the kernel accepts.
package overlay

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/storage"
	"github.com/containerd/errdefs"
)

// Option configures New.
type Option func(*config)

type config struct {
	mountOptions []string
	skipCheck    bool
}

// WithMountOptions adds options (for example "userxattr" for rootless
// use, or "metacopy=on") to every overlay mount the snapshotter describes.
// Bind mounts are not affected.
func WithMountOptions(opts ...string) Option {
	return func(c *config) { c.mountOptions = append(c.mountOptions, opts...) }
}

// WithoutSupportCheck skips the check that the kernel has overlayfs; the
// snapshotter then only describes mounts (useful where a helper in another
// mount namespace performs them).
func WithoutSupportCheck() Option {
	return func(c *config) { c.skipCheck = true }
}

type snapshotter struct {
	storage.Common
	options []string // extra overlay options, index=off first when needed
}

var _ snapshot.Snapshotter = (*snapshotter)(nil)

// New opens (creating if needed) an overlay snapshotter rooted at root.
// It returns an error matching errdefs.ErrNotImplemented if the kernel
// does not list overlayfs in /proc/filesystems (and, when run as root, a
// test mount in root fails too). Several processes may use one root at
// once.
func New(root string, opts ...Option) (snapshot.Snapshotter, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	st, err := storage.Open(root)
	if err != nil {
		return nil, err
	}
	if !c.skipCheck {
		if err := supported(st.Root()); err != nil {
			return nil, err
		}
	}
	var options []string
	if indexOn() {
		// With index=on the kernel ties an upper dir to the lower dirs
		// it first met; layers are shared by many stacks, so turn it off.
		options = append(options, "index=off")
	}
	options = append(options, c.mountOptions...)
	return &snapshotter{Common: storage.Common{St: st}, options: options}, nil
}

// supported reports errdefs.ErrNotImplemented if overlayfs is missing.
func supported(root string) error {
	if hasFilesystem("overlay") {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("overlayfs is not in /proc/filesystems: %w", errdefs.ErrNotImplemented)
	}
	// The module may load on first use: try a mount.
	dir, err := os.MkdirTemp(root, "check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"l1", "l2", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	m := mount.Mount{Type: "overlay", Source: "overlay", Options: []string{
		"lowerdir=" + filepath.Join(dir, "l1") + ":" + filepath.Join(dir, "l2")}}
	if err := m.Mount(filepath.Join(dir, "m")); err != nil {
		return fmt.Errorf("overlayfs test mount failed (%v): %w", err, errdefs.ErrNotImplemented)
	}
	return mount.Unmount(filepath.Join(dir, "m"))
}

func hasFilesystem(name string) bool {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[len(fields)-1] == name {
			return true
		}
	}
	return false
}

func indexOn() bool {
	b, err := os.ReadFile("/sys/module/overlay/parameters/index")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

func (s *snapshotter) work(id uint64) string { return filepath.Join(s.St.Dir(id), "work") }

// Prepare creates an active snapshot. With no parent its mount is a
// read-write bind of the empty layer; with parents it is an overlay of the
// parents' layers (nearest first) under the new upper dir. A parent that
// is not committed gives errdefs.ErrFailedPrecondition.
func (s *snapshotter) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent)
}

// View creates a read-only snapshot of parent: a read-only bind of a
// single-layer parent (or of an empty directory for parent ""), else an
// overlay of the parents' layers with no upper dir.
func (s *snapshotter) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent)
}

func (s *snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string) ([]mount.Mount, error) {
	// Two mkdirs: quick enough to run under the store lock, which saves a
	// write transaction.
	r, parents, err := s.St.CreateLocked(ctx, kind, key, parent, func(dir string, _ []uint64) error {
		if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
			return err
		}
		if kind == snapshot.KindActive {
			return os.Mkdir(filepath.Join(dir, "work"), 0o700)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.mounts(r, parents), nil
}

// Mounts returns the mounts of an active or view snapshot. An unknown key
// gives errdefs.ErrNotFound, a committed one errdefs.ErrFailedPrecondition.
func (s *snapshotter) Mounts(ctx context.Context, key string) ([]mount.Mount, error) {
	r, parents, err := s.Mountable(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.mounts(r, parents), nil
}

func (s *snapshotter) mounts(r storage.Record, parents []uint64) []mount.Mount {
	if r.Kind == snapshot.KindView {
		switch len(parents) {
		case 0:
			return []mount.Mount{{Type: "bind", Source: s.Layer(r.ID), Options: []string{"rbind", "ro"}}}
		case 1:
			return []mount.Mount{{Type: "bind", Source: s.Layer(parents[0]), Options: []string{"rbind", "ro"}}}
		}
		opts := append([]string{"ro"}, s.options...)
		opts = append(opts, "lowerdir="+s.lowerdirs(parents))
		return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	}
	if len(parents) == 0 {
		return []mount.Mount{{Type: "bind", Source: s.Layer(r.ID), Options: []string{"rbind", "rw"}}}
	}
	opts := append([]string(nil), s.options...)
	opts = append(opts,
		"lowerdir="+s.lowerdirs(parents),
		"upperdir="+s.Layer(r.ID),
		"workdir="+s.work(r.ID))
	return []mount.Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

func (s *snapshotter) lowerdirs(ids []uint64) string {
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.Layer(id)
	}
	return strings.Join(dirs, ":")
}

// Commit turns active snapshot key into committed name and drops its
// work dir. The caller must have unmounted it.
func (s *snapshotter) Commit(ctx context.Context, name, key string) error {
	r, err := s.St.Commit(ctx, name, key)
	if err != nil {
		return err
	}
	// Best effort: a leftover work dir is never mounted again.
	_ = os.RemoveAll(s.work(r.ID))
	return nil
}
