package containerfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/mount"
	"github.com/containerd/errdefs"
)

// Export writes the filesystem of container c to w as a tar, like
// `docker export`: paths relative to the root, owners and modes as on
// disk, hard links as links. The rootfs is
// mounted read-only in a private temporary directory (lower layers and the
// container's own changes, whiteouts resolved) and unmounted afterwards.
// A container that has no rootfs yet is exported from its image.
func (cf *FS) Export(ctx context.Context, c record.Container, w io.Writer) error {
	mounts, err := cf.Snaps.Mounts(ctx, c.ID)
	if errdefs.IsNotFound(err) {
		key := "export-" + scratchID() + "-" + c.ID
		if c.Snapshot == "" {
			mounts, err = nil, nil
		} else if mounts, err = cf.Snaps.View(ctx, key, c.Snapshot); err == nil {
			defer cf.Snaps.Remove(context.WithoutCancel(ctx), key)
		}
	} else if err == nil {
		mounts = readOnlyMounts(mounts)
	}
	if err != nil {
		return fmt.Errorf("exporting %s: %w", c.ShortID(), err)
	}
	dir, err := os.MkdirTemp(cf.Scratch, "export-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if len(mounts) > 0 {
		if err := mount.All(mounts, dir); err != nil {
			return fmt.Errorf("exporting %s: %w", c.ShortID(), err)
		}
		defer mount.Unmount(dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := WriteTar(ctx, root, ".", ".", CopyOptions{KeepOwner: true}, w); err != nil {
		return fmt.Errorf("writing tar: %w", err)
	}
	return nil
}

// readOnlyMounts turns an active snapshot's mounts into a read-only view
// of the same tree: an overlay's upper directory becomes its top lower
// directory (so no workdir is shared with the container's own mount), and
// bind mounts get "ro".
func readOnlyMounts(ms []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		var opts []string
		var upper, lower string
		for _, o := range m.Options {
			switch {
			case strings.HasPrefix(o, "upperdir="):
				upper = strings.TrimPrefix(o, "upperdir=")
			case strings.HasPrefix(o, "lowerdir="):
				lower = strings.TrimPrefix(o, "lowerdir=")
			case strings.HasPrefix(o, "workdir="), o == "rw", o == "ro":
			default:
				opts = append(opts, o)
			}
		}
		if m.Type == "overlay" && upper != "" {
			opts = append(opts, "lowerdir="+upper+":"+lower)
		} else if lower != "" {
			opts = append(opts, "lowerdir="+lower)
		}
		opts = append([]string{"ro"}, opts...)
		out = append(out, mount.Mount{Type: m.Type, Source: m.Source, Options: opts})
	}
	return out
}
