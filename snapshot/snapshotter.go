// Package snapshot defines the Snapshotter contract: copy-on-write
// filesystem trees that image layers are unpacked into and containers run on.
//
// Vocabulary (the same as containerd's):
//   - A key names an active or view snapshot while it is being used.
//   - A name names a committed snapshot; the engine uses the layer's chain ID.
//   - A parent is the committed snapshot a new one starts from ("" for none).
//
// Unpacking an image with layers L1..Ln:
//
//	for each layer i: mounts := Prepare(ctx, "extract-"+chainID(i), chainID(i-1))
//	                  mount them, apply the layer tar, unmount
//	                  Commit(ctx, chainID(i), "extract-"+chainID(i))
//
// Running a container: Prepare(ctx, containerID, chainID(n)) gives the
// mounts of a writable rootfs; Remove(ctx, containerID) drops it.
//
// A Snapshotter describes mounts, it does not perform them (package mount
// does). Implementations must be safe for use by several processes sharing
// one root at once.
package snapshot

import (
	"context"
	"time"

	"github.com/berthproject/berth/mount"
)

// Kind is the state of a snapshot.
type Kind int

const (
	// KindActive is writable; it can be committed.
	KindActive Kind = iota + 1
	// KindView is a read-only view of a committed snapshot.
	KindView
	// KindCommitted is immutable and can be a parent.
	KindCommitted
)

func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindView:
		return "view"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Name    string // the key (active, view) or name (committed)
	Parent  string // the committed parent's name, "" for none
	Kind    Kind
	Created time.Time // UTC
}

// Usage is the disk space a snapshot's own layer takes (not its parents').
type Usage struct {
	Size   int64 // bytes
	Inodes int64
}

// Snapshotter manages snapshots. Every method returns an error matching
// errdefs.IsNotFound when a named snapshot or parent does not exist, and
// errdefs.IsAlreadyExists when creating a key or name that exists.
type Snapshotter interface {
	// Stat returns the snapshot's Info.
	Stat(ctx context.Context, key string) (Info, error)
	// Prepare creates an active snapshot key on top of parent ("" for an
	// empty one) and returns the mounts that present it as one writable tree.
	Prepare(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// View creates a read-only snapshot key of parent and returns its mounts.
	View(ctx context.Context, key, parent string) ([]mount.Mount, error)
	// Mounts returns the mounts of an existing active or view snapshot.
	Mounts(ctx context.Context, key string) ([]mount.Mount, error)
	// Commit turns the active snapshot key into the committed snapshot name.
	// The key is gone afterwards.
	Commit(ctx context.Context, name, key string) error
	// Remove deletes a snapshot and its data. A committed snapshot that is
	// the parent of another gives an error matching errdefs.IsFailedPrecondition.
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every snapshot, in no particular order.
	Walk(ctx context.Context, fn func(Info) error) error
	// Usage computes the disk usage of a snapshot's own layer; it costs time
	// proportional to the data.
	Usage(ctx context.Context, key string) (Usage, error)
	// Close releases resources; it is idempotent.
	Close() error
}
