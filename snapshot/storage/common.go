package storage

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/berthproject/berth/snapshot"
	"github.com/containerd/errdefs"
)

// Common is the part of a snapshot.Snapshotter that is the same for every
// implementation on a Store whose snapshots keep their own layer in
// Dir(id)/fs: Stat, Remove, Walk, Usage, Check and Close. An
// implementation embeds it and adds Prepare, View, Mounts and Commit.
type Common struct {
	St *Store
}

// Layer is the directory holding snapshot id's own layer (its tree for
// vfs, its upper directory for overlay).
func (c Common) Layer(id uint64) string { return filepath.Join(c.St.Dir(id), "fs") }

// Stat returns key's Info; an unknown key gives errdefs.ErrNotFound.
func (c Common) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	r, _, err := c.St.Get(ctx, key)
	if err != nil {
		return snapshot.Info{}, err
	}
	return r.Info(), nil
}

// Remove deletes key and its layer; see snapshot.Snapshotter.
func (c Common) Remove(ctx context.Context, key string) error {
	return c.St.Remove(ctx, key)
}

// Walk calls fn for every snapshot; fn may call the snapshotter.
func (c Common) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	return c.St.Walk(ctx, func(r Record) error { return fn(r.Info()) })
}

// Usage walks the snapshot's own layer (Layer; a view's is empty): for
// vfs a full copy of the tree, for overlay only the changes. It costs
// time proportional to the layer's size.
func (c Common) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	r, _, err := c.St.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	u, err := DiskUsage(c.Layer(r.ID))
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("snapshot %q: %w", key, err)
	}
	return u, nil
}

// Check reports disagreements between metadata and directories; see
// Store.Check. The conformance suite uses it after crashes.
func (c Common) Check(ctx context.Context) error { return c.St.Check(ctx) }

// Close is idempotent; later calls fail with errdefs.ErrFailedPrecondition.
func (c Common) Close() error { return c.St.Close() }

// Mountable returns the record and parent IDs (nearest first) of an
// active or view snapshot, for an implementation's Mounts. An unknown key
// gives errdefs.ErrNotFound, a committed one errdefs.ErrFailedPrecondition.
func (c Common) Mountable(ctx context.Context, key string) (Record, []uint64, error) {
	r, parents, err := c.St.Get(ctx, key)
	if err != nil {
		return Record{}, nil, err
	}
	if r.Kind == snapshot.KindCommitted {
		return Record{}, nil, fmt.Errorf("snapshot %q is committed and has no mounts; make a view: %w", key, errdefs.ErrFailedPrecondition)
	}
	return r, parents, nil
}
