// Package vfs is the fallback Snapshotter that needs no kernel support:
// every active snapshot is a full copy of its parent and every mount is a
// bind mount. It costs disk space and time proportional to the image per
// snapshot, and works on any filesystem.
//
// Layout under the root (see package storage for the metadata, the
// multi-process locking and the crash-safety ordering):
//
//	snapshots/<id>/fs    the complete tree of the snapshot
//
// The copy for Prepare is made in a locked scratch directory without
// holding the metadata lock, so other processes keep working meanwhile. A
// View is a read-only bind of its committed parent's tree (committed trees
// never change, and a parent with views cannot be removed), so it copies
// nothing.
package vfs

import (
	"context"
	"os"
	"path/filepath"

	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/storage"
)

type snapshotter struct {
	storage.Common
}

var _ snapshot.Snapshotter = (*snapshotter)(nil)

// New opens (creating if needed) a vfs snapshotter rooted at root. Several
// processes may use one root at once.
func New(root string) (snapshot.Snapshotter, error) {
	st, err := storage.Open(root)
	if err != nil {
		return nil, err
	}
	return &snapshotter{Common: storage.Common{St: st}}, nil
}

// Prepare copies parent's tree (or makes an empty one) and returns a
// read-write bind mount of it. A parent that is not committed gives
// errdefs.ErrFailedPrecondition.
func (s *snapshotter) Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	r, parents, err := s.St.Create(ctx, snapshot.KindActive, key, parent, func(dir string, parents []uint64) error {
		if len(parents) == 0 {
			return os.Mkdir(filepath.Join(dir, "fs"), 0o755)
		}
		return copyTree(ctx, s.Layer(parents[0]), filepath.Join(dir, "fs"))
	})
	if err != nil {
		return nil, err
	}
	return s.mounts(r, parents), nil
}

// View returns a read-only bind mount of parent's tree (of an empty
// directory for parent "").
func (s *snapshotter) View(ctx context.Context, key, parent string) ([]mount.Mount, error) {
	r, parents, err := s.St.Create(ctx, snapshot.KindView, key, parent, func(dir string, _ []uint64) error {
		return os.Mkdir(filepath.Join(dir, "fs"), 0o755)
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
		src := s.Layer(r.ID)
		if len(parents) > 0 {
			src = s.Layer(parents[0])
		}
		return []mount.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "ro"}}}
	}
	return []mount.Mount{{Type: "bind", Source: s.Layer(r.ID), Options: []string{"rbind", "rw"}}}
}

// Commit turns active snapshot key into committed name; the tree stays
// where it is.
func (s *snapshotter) Commit(ctx context.Context, name, key string) error {
	_, err := s.St.Commit(ctx, name, key)
	return err
}
