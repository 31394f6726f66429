package overlay_test

import (
	"testing"

	"github.com/containerd/errdefs"

	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/overlay"
	"github.com/berthproject/berth/snapshot/testsuite"
)

func TestOverlay(t *testing.T) {
	testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := overlay.New(root)
		if errdefs.IsNotImplemented(err) {
			t.Skipf("no overlayfs: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		return sn
	})
}
