// Package containerfs works on containers' root filesystems: `docker cp`
// (stat, copy out, copy in, confined to the container's root), `docker
// diff` and the layer of `docker commit` (from the overlay upper
// directory, or by comparing trees with vfs), and `docker export`. It
// does not import package engine: the engine hands it an FS and the
// container's record.
package containerfs

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/snapshot"
)

// FS is what the filesystem operations need of the engine. Every field
// but EtcMounts must be set.
type FS struct {
	// Snaps holds the containers' snapshots (key: container ID) and the
	// images' committed layers (key: chain ID).
	Snaps snapshot.Snapshotter
	// Scratch is a directory for private, temporary mount points (the
	// engine's run root).
	Scratch string
	// Bundle returns the bundle directory of container id; a running
	// container's rootfs is mounted at its "rootfs".
	Bundle func(id string) string
	// EtcMounts returns the files the engine binds into container c at
	// start besides its Run.Mounts (/etc/hostname, /etc/hosts,
	// /etc/resolv.conf), those that exist, in mount order; cp reads and
	// writes them rather than the rootfs underneath. Nil: none.
	EtcMounts func(c record.Container) []MountPoint
}

// scratchID is 12 random hex digits for temporary snapshot keys.
func scratchID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
