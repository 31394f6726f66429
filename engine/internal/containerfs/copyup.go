package containerfs

import (
	"context"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/berthproject/berth/engine/internal/record"
)

// CopyUp fills the empty host directory dst with what container c's
// image has at path target (Docker's copy of image content into a new
// volume): the directory's children with owners, modes, links and times,
// and the directory's own owner and mode. A target the image lacks, or
// that is not a directory, copies nothing; a dst that is not empty is
// left alone, as Docker does. The rootfs is mounted read-only for the
// copy (WithRootfs).
func (cf *FS) CopyUp(ctx context.Context, c record.Container, target, dst string) error {
	if ents, err := os.ReadDir(dst); err != nil || len(ents) > 0 {
		return err
	}
	return cf.WithRootfs(ctx, c, false, func(rootfs string) error {
		root, err := os.OpenRoot(rootfs)
		if err != nil {
			return err
		}
		defer root.Close()
		rel, fi, err := lookup(root, target, true)
		if err != nil || fi == nil || !fi.IsDir() {
			return err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(WriteTar(ctx, root, rel, ".", CopyOptions{KeepOwner: true}, pw)) }()
		if err := ExtractTar(ctx, dst, pr, true); err != nil {
			pr.CloseWithError(err)
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		return os.Chmod(dst, fi.Mode().Perm()|fi.Mode()&(fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid))
	})
}
