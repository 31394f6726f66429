//go:build !linux

package runtime

import (
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deviceAt is Linux-only: elsewhere every path gives
// errdefs.ErrNotImplemented.
func deviceAt(p string) (specs.LinuxDevice, error) {
	return specs.LinuxDevice{}, fmt.Errorf("device %s: host devices are only supported on Linux: %w", p, errdefs.ErrNotImplemented)
}
