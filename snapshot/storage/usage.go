package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/berthproject/berth/snapshot"
)

// DiskUsage walks dir without following symlinks and returns the disk
// space its tree takes: Size is allocated bytes (st_blocks × 512, as du(1)
// counts them) and Inodes the number of distinct inodes, dir included. An
// inode with several hard links inside the tree is counted once. A missing
// dir gives errdefs.ErrNotFound. Cost is proportional to the tree's entries.
func DiskUsage(dir string) (snapshot.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	var u snapshot.Usage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat data", p)
		}
		k := inode{uint64(st.Dev), st.Ino}
		if _, dup := seen[k]; dup {
			return nil
		}
		seen[k] = struct{}{}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return snapshot.Usage{}, fmt.Errorf("usage of %s: %w", dir, errdefs.ErrNotFound)
		}
		return snapshot.Usage{}, fmt.Errorf("usage of %s: %w", dir, err)
	}
	return u, nil
}
