//go:build !linux

package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
)

// Apply reads an uncompressed layer tar stream from r and applies it to the
// directory root. Only Linux is supported; elsewhere it returns
// errdefs.ErrNotImplemented.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOption) (int64, error) {
	return 0, fmt.Errorf("archive: applying layers: %w", errdefs.ErrNotImplemented)
}
