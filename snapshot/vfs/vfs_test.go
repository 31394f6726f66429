package vfs_test

import (
	"testing"

	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/testsuite"
	"github.com/berthproject/berth/snapshot/vfs"
)

func TestVFS(t *testing.T) {
	testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := vfs.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	})
}
