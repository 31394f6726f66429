//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

const (
	// whiteoutPrefix marks a whiteout entry: ".wh.NAME" deletes NAME.
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix marks AUFS metadata entries, which are skipped.
	whiteoutMetaPrefix = whiteoutPrefix + whiteoutPrefix
	// whiteoutOpaque marks its directory as opaque.
	whiteoutOpaque = whiteoutMetaPrefix + ".opq"

	// overlayOpaqueXattr is the xattr overlayfs reads to treat an upper
	// directory as opaque.
	overlayOpaqueXattr = "trusted.overlay.opaque"
)

// Apply reads an uncompressed layer tar stream from r and applies it to the
// directory root. Returns the number of bytes of file content written: the sum
// of the logical sizes of the regular files created (holes of sparse files
// included, hardlinks not counted).
//
// Behaviour follows the OCI image spec's layer changeset rules and Docker:
//   - Regular files, directories, symlinks, hardlinks, character and block
//     devices and FIFOs are created with the entry's mode (including setuid,
//     setgid and sticky bits), uid/gid (unless [WithoutChown]), xattrs from
//     SCHILY.xattr.* PAX records, and times. Directory times are set after the
//     whole layer is applied.
//   - An entry whose path exists is replaced, unless both are directories: then
//     the existing directory is kept and its metadata updated. Existing files are
//     never written in place, so an existing hardlink is never written through.
//   - Missing parent directories are created with mode 0755.
//   - Hardlink targets name a file earlier in the layer or already in root;
//     they are resolved inside root like any other name.
//   - ".wh.NAME" removes NAME and everything under it; ".wh..wh..opq" removes
//     every existing child of its directory that this layer did not create or
//     update, wherever in the layer the marker appears. Other ".wh..wh." (AUFS
//     metadata) entries are skipped. See [WithOverlayWhiteouts] for the
//     alternative.
//   - xattrs in the trusted.* namespace and overlay xattrs (user.overlay.*) are
//     dropped: they are host or overlayfs state, and copying them would let a
//     layer forge whiteouts. Setting any other xattr is skipped, as Docker does,
//     when the file system does not support it (ENOTSUP) or refuses it (EPERM).
//
// Errors: a malformed tar, an unsupported entry type, an invalid whiteout, a
// hardlink whose target does not exist or is a directory, a parent that is not
// a directory, or too many symlinks give errdefs.ErrInvalidArgument; a missing
// root gives errdefs.ErrNotFound; cancellation returns ctx.Err(). Errors from r
// itself are returned wrapped but uncategorised. On error the root holds a
// partly applied layer; callers apply into a fresh snapshot and discard it.
//
// Cost: linear in the size of the stream, plus a walk of the existing subtree
// for each opaque directory in the default whiteout mode.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOption) (int64, error) {
	var o applyOptions
	for _, opt := range opts {
		opt(&o)
	}
	rt, err := os.OpenRoot(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("archive: open root %q: %w: %w", root, errdefs.ErrNotFound, err)
		}
		return 0, fmt.Errorf("archive: open root %q: %w", root, err)
	}
	defer rt.Close()

	a := &applier{
		ctx:     ctx,
		root:    rt,
		opts:    o,
		touched: make(map[string]struct{}),
	}
	cr := &ctxReader{ctx: ctx, r: r}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return a.written, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return a.written, a.readErr(ctx, cr, err)
		}
		if err := a.entry(tr, hdr); err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return a.written, cerr
			}
			if cr.err != nil && errors.Is(err, cr.err) {
				return a.written, fmt.Errorf("archive: %s: %w", hdr.Name, err)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) {
				return a.written, fmt.Errorf("archive: %s: %w: %w", hdr.Name, errdefs.ErrInvalidArgument, err)
			}
			return a.written, err
		}
	}
	if err := a.finish(); err != nil {
		return a.written, err
	}
	return a.written, nil
}

// readErr classifies an error from tar.Reader.Next.
func (a *applier) readErr(ctx context.Context, cr *ctxReader, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if cr.err != nil && errors.Is(err, cr.err) {
		return fmt.Errorf("archive: read layer: %w", err)
	}
	return fmt.Errorf("archive: malformed layer tar: %w: %w", errdefs.ErrInvalidArgument, err)
}

// ctxReader stops reading once ctx is done and remembers the error of the
// underlying reader, so that it can be told apart from tar format errors.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

type dirTime struct {
	path         string // real path relative to root, "" for root itself
	atime, mtime time.Time
}

type applier struct {
	ctx     context.Context
	root    *os.Root
	opts    applyOptions
	written int64
	// touched holds the real paths (relative to root) this layer created or
	// updated, and all their ancestors; opaque directories keep these.
	touched  map[string]struct{}
	dirTimes []dirTime
	// buf and zeros are copy buffers, allocated on first use.
	buf, zeros []byte
}

// cleanName turns a tar name into a path relative to root: cleaned as if
// rooted at "/", without the leading slash; "" names root itself.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// splitName splits a cleaned name into its directory and last component.
func splitName(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

func joinName(dir, base string) string {
	if dir == "" {
		return base
	}
	return dir + "/" + base
}

// rootName maps "" to "." for os.Root methods.
func rootName(p string) string {
	if p == "" {
		return "."
	}
	return p
}

func invalid(name, format string, args ...any) error {
	return fmt.Errorf("archive: %s: %s: %w", name, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// touch records real path p and its ancestors as part of this layer.
func (a *applier) touch(p string) {
	for p != "" {
		if _, ok := a.touched[p]; ok {
			return
		}
		a.touched[p] = struct{}{}
		p, _ = splitName(p)
	}
}

// isAUFSMeta reports whether a cleaned name lies in AUFS metadata.
func isAUFSMeta(name string) bool {
	first, _, _ := strings.Cut(name, "/")
	return strings.HasPrefix(first, whiteoutMetaPrefix)
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if strings.IndexByte(hdr.Name, 0) >= 0 || strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return invalid(hdr.Name, "NUL byte in name")
	}
	name := cleanName(hdr.Name)
	dir, base := splitName(name)
	switch {
	case base == whiteoutOpaque:
		return a.opaque(hdr, dir)
	case isAUFSMeta(name), strings.HasPrefix(base, whiteoutMetaPrefix):
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		return a.whiteout(hdr, dir, strings.TrimPrefix(base, whiteoutPrefix))
	}
	if err := checkIDs(hdr); err != nil {
		return err
	}
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return invalid(hdr.Name, "entry of type %q would replace the root directory", hdr.Typeflag)
		}
		return a.rootDir(hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeLink:
		return a.hardlink(hdr, dir, base)
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont, tar.TypeDir, tar.TypeSymlink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.node(tr, hdr, dir, base)
	default:
		return invalid(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
}

func checkIDs(hdr *tar.Header) error {
	const maxID = 1<<32 - 2 // (uid_t)-1 means "unchanged" to chown
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return invalid(hdr.Name, "uid/gid %d/%d out of range", hdr.Uid, hdr.Gid)
	}
	return nil
}

// resolveDir resolves the directory name dir (cleaned, relative to root)
// with ResolveInRoot, following every symbolic link. It returns the real
// path of the directory, made only of real directories at the time of the
// check. If a component is missing, exists is false and real is the path
// that would be created. A component that is not a directory gives
// errdefs.ErrInvalidArgument.
func (a *applier) resolveDir(dir string) (real string, exists bool, err error) {
	r, err := ResolveInRoot(a.root, dir, true)
	if err != nil {
		return "", false, fmt.Errorf("archive: %w", err)
	}
	if r.Info != nil && !r.Info.IsDir() {
		return "", false, invalid(dir, "%q is not a directory", r.Path)
	}
	return r.Path, r.Exists, nil
}

// parentDir resolves dir and opens it. With create, missing directories are
// created (mode 0755) and recorded as part of the layer; without, a missing
// directory gives a nil file and no error.
func (a *applier) parentDir(dir string, create bool) (*os.File, string, error) {
	real, exists, err := a.resolveDir(dir)
	if err != nil {
		return nil, "", err
	}
	if !exists {
		if !create {
			return nil, real, nil
		}
		if err := a.root.MkdirAll(real, 0o755); err != nil {
			return nil, "", fmt.Errorf("archive: create parent %s: %w", dir, err)
		}
		a.touch(real)
	}
	f, err := a.openDir(real)
	if err != nil {
		return nil, "", err
	}
	return f, real, nil
}

// openDir opens the directory at real path p inside root.
func (a *applier) openDir(p string) (*os.File, error) {
	f, err := a.root.OpenFile(rootName(p), os.O_RDONLY|dirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("archive: open directory %s: %w", rootName(p), err)
	}
	return f, nil
}

// opaque handles a ".wh..wh..opq" marker in directory dir.
func (a *applier) opaque(hdr *tar.Header, dir string) error {
	d, real, err := a.parentDir(dir, true)
	if err != nil {
		return err
	}
	defer d.Close()
	a.touch(real)
	if a.opts.overlayWhiteouts {
		return a.setOverlayOpaque(d, hdr.Name)
	}
	return a.removeUntouched(d, real)
}

// removeUntouched removes everything below directory d (real path p) that
// this layer has not touched.
func (a *applier) removeUntouched(d *os.File, p string) error {
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("archive: read directory %s: %w", rootName(p), err)
	}
	for _, n := range names {
		child := joinName(p, n)
		if _, ok := a.touched[child]; !ok {
			if err := a.root.RemoveAll(child); err != nil {
				return fmt.Errorf("archive: opaque %s: %w", rootName(p), err)
			}
			continue
		}
		fi, err := a.root.Lstat(child)
		if err != nil {
			return fmt.Errorf("archive: opaque %s: %w", rootName(p), err)
		}
		if !fi.IsDir() {
			continue
		}
		cd, err := a.openDir(child)
		if err != nil {
			return err
		}
		err = a.removeUntouched(cd, child)
		cd.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// whiteout handles a ".wh.NAME" entry in directory dir.
func (a *applier) whiteout(hdr *tar.Header, dir, target string) error {
	if target == "" || target == "." || target == ".." {
		return invalid(hdr.Name, "invalid whiteout")
	}
	if a.opts.overlayWhiteouts {
		if err := checkIDs(hdr); err != nil {
			return err
		}
		d, real, err := a.parentDir(dir, true)
		if err != nil {
			return err
		}
		defer d.Close()
		p := joinName(real, target)
		a.touch(p)
		return a.overlayWhiteout(d, p, target, hdr)
	}
	d, real, err := a.parentDir(dir, false)
	if err != nil || d == nil {
		return err
	}
	d.Close()
	if err := a.root.RemoveAll(joinName(real, target)); err != nil {
		return fmt.Errorf("archive: whiteout %s: %w", hdr.Name, err)
	}
	return nil
}

// finish sets directory times, last entry for a directory winning.
func (a *applier) finish() error {
	for _, dt := range a.dirTimes {
		if err := a.setDirTimes(dt); err != nil {
			return err
		}
	}
	return nil
}
