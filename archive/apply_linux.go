//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	dirFlags = unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

	// copyChunk is the unit in which file content is copied and holes are
	// detected.
	copyChunk = 128 << 10
)

// permBits converts a tar mode to the permission, setuid, setgid and sticky
// bits (tar and Linux use the same octal values for these).
func permBits(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode) & 0o7777
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

func entryTimes(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return [2]unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
}

// fileFd returns the descriptor of f; f must stay referenced while it is used.
func fileFd(f *os.File) int { return int(f.Fd()) }

// node creates or updates a non-hardlink entry named base in directory dir.
func (a *applier) node(tr *tar.Reader, hdr *tar.Header, dir, base string) error {
	d, real, err := a.parentDir(dir, true)
	if err != nil {
		return err
	}
	defer d.Close()
	dfd := fileFd(d)
	p := joinName(real, base)

	var st unix.Stat_t
	err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if hdr.Typeflag == tar.TypeDir && isDir {
			break // keep it, update its metadata below
		}
		if err := a.removeAt(dfd, p, base, isDir); err != nil {
			return err
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("archive: stat %s: %w", p, err)
	}
	a.touch(p)

	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("archive: mkdir %s: %w", p, err)
		}
		fd, err := unix.Openat(dfd, base, unix.O_RDONLY|dirFlags, 0)
		if err != nil {
			return fmt.Errorf("archive: open %s: %w", p, err)
		}
		f := os.NewFile(uintptr(fd), p)
		err = a.fdMetadata(fd, p, hdr)
		f.Close()
		if err != nil {
			return err
		}
		a.dirTimes = append(a.dirTimes, dirTime{path: p, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil

	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("archive: create %s: %w", p, err)
		}
		f := os.NewFile(uintptr(fd), p)
		n, err := a.copySparse(f, tr)
		a.written += n
		if err == nil {
			err = a.fdMetadata(fd, p, hdr)
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("archive: close %s: %w", p, cerr)
		}
		if err != nil {
			return fmt.Errorf("archive: write %s: %w", p, err)
		}

	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dfd, base); err != nil {
			return fmt.Errorf("archive: symlink %s: %w", p, err)
		}
		if err := a.atMetadata(dfd, base, p, hdr, false); err != nil {
			return err
		}

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		if hdr.Devmajor < 0 || hdr.Devmajor > 1<<32-1 || hdr.Devminor < 0 || hdr.Devminor > 1<<32-1 {
			return invalid(hdr.Name, "device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(dfd, base, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("archive: mknod %s: %w", p, err)
		}
		if err := a.atMetadata(dfd, base, p, hdr, true); err != nil {
			return err
		}
	}
	ts := entryTimes(hdr)
	if err := unix.UtimesNanoAt(dfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("archive: set times of %s: %w", p, err)
	}
	return nil
}

// removeAt removes the existing entry base (real path p) from directory dfd.
func (a *applier) removeAt(dfd int, p, base string, isDir bool) error {
	var err error
	if isDir {
		err = a.root.RemoveAll(p)
	} else {
		err = unix.Unlinkat(dfd, base, 0)
	}
	if err != nil {
		return fmt.Errorf("archive: replace %s: %w", p, err)
	}
	return nil
}

// fdMetadata sets owner, mode and xattrs through an open descriptor of a
// regular file or directory. Owner comes first, because chown clears setuid,
// setgid and security.capability.
func (a *applier) fdMetadata(fd int, p string, hdr *tar.Header) error {
	if !a.opts.noChown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("archive: chown %s: %w", p, err)
		}
	}
	if err := unix.Fchmod(fd, permBits(hdr)); err != nil {
		return fmt.Errorf("archive: chmod %s: %w", p, err)
	}
	return a.setXattrs(p, hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

// atMetadata sets owner, mode (when chmod) and xattrs of base in directory dfd
// without following base if it is a symlink.
func (a *applier) atMetadata(dfd int, base, p string, hdr *tar.Header, chmod bool) error {
	if !a.opts.noChown {
		if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("archive: chown %s: %w", p, err)
		}
	}
	if chmod {
		if err := unix.Fchmodat(dfd, base, permBits(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("archive: chmod %s: %w", p, err)
		}
	}
	// The directory descriptor's /proc link is followed to the confined
	// directory; lsetxattr does not follow base itself.
	procPath := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + base
	return a.setXattrs(p, hdr, func(name string, value []byte) error {
		return unix.Lsetxattr(procPath, name, value, 0)
	})
}

// setXattrs applies the SCHILY.xattr.* PAX records of hdr in name order.
func (a *applier) setXattrs(p string, hdr *tar.Header, set func(string, []byte) error) error {
	const prefix = "SCHILY.xattr."
	var names []string
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, prefix); ok && keepXattr(name) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		err := set(name, []byte(hdr.PAXRecords[prefix+name]))
		if err == nil || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			continue
		}
		return fmt.Errorf("archive: set xattr %s on %s: %w", name, p, err)
	}
	return nil
}

// keepXattr reports whether a layer may set the xattr name: trusted.* is host
// state (overlayfs whiteouts and redirects among it) and user.overlay.* is
// overlayfs state in user namespaces.
func keepXattr(name string) bool {
	return !strings.HasPrefix(name, "trusted.") && !strings.HasPrefix(name, "user.overlay.")
}

// hardlink links base in directory dir to the entry's Linkname.
func (a *applier) hardlink(hdr *tar.Header, dir, base string) error {
	target := cleanName(hdr.Linkname)
	tdir, tbase := splitName(target)
	if target == "" {
		return invalid(hdr.Name, "hardlink to the root directory")
	}
	td, treal, err := a.parentDir(tdir, false)
	if err != nil {
		return err
	}
	if td == nil {
		return invalid(hdr.Name, "hardlink target %q does not exist", hdr.Linkname)
	}
	defer td.Close()
	tp := joinName(treal, tbase)
	var tst unix.Stat_t
	if err := unix.Fstatat(fileFd(td), tbase, &tst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return invalid(hdr.Name, "hardlink target %q does not exist", hdr.Linkname)
		}
		return fmt.Errorf("archive: stat %s: %w", tp, err)
	}
	if tst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return invalid(hdr.Name, "hardlink target %q is a directory", hdr.Linkname)
	}

	d, real, err := a.parentDir(dir, true)
	if err != nil {
		return err
	}
	defer d.Close()
	dfd := fileFd(d)
	p := joinName(real, base)
	var st unix.Stat_t
	err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		if st.Dev == tst.Dev && st.Ino == tst.Ino {
			a.touch(p)
			return nil // already that file (or the link names its own target)
		}
		if err := a.removeAt(dfd, p, base, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("archive: stat %s: %w", p, err)
	}
	// Flags 0: a symlink target is linked itself, never followed.
	if err := unix.Linkat(fileFd(td), tbase, dfd, base, 0); err != nil {
		return fmt.Errorf("archive: link %s to %s: %w", p, tp, err)
	}
	a.touch(p)
	return nil
}

// rootDir applies a directory entry that names root itself.
func (a *applier) rootDir(hdr *tar.Header) error {
	d, err := a.openDir("")
	if err != nil {
		return err
	}
	defer d.Close()
	if err := a.fdMetadata(fileFd(d), ".", hdr); err != nil {
		return err
	}
	a.dirTimes = append(a.dirTimes, dirTime{path: "", atime: hdr.AccessTime, mtime: hdr.ModTime})
	return nil
}

// setOverlayOpaque marks directory d opaque for overlayfs.
func (a *applier) setOverlayOpaque(d *os.File, name string) error {
	if err := unix.Fsetxattr(fileFd(d), overlayOpaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("archive: %s: set %s: %w", name, overlayOpaqueXattr, err)
	}
	return nil
}

// overlayWhiteout replaces base (real path p) in directory d with an overlayfs
// whiteout: a character device 0:0.
func (a *applier) overlayWhiteout(d *os.File, p, base string, hdr *tar.Header) error {
	dfd := fileFd(d)
	var st unix.Stat_t
	err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		if err := a.removeAt(dfd, p, base, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("archive: stat %s: %w", p, err)
	}
	if err := unix.Mknodat(dfd, base, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("archive: whiteout %s: %w", p, err)
	}
	if !a.opts.noChown {
		if err := unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("archive: chown %s: %w", p, err)
		}
	}
	return nil
}

// setDirTimes sets the times of a directory recorded earlier, if it is still
// a directory.
func (a *applier) setDirTimes(dt dirTime) error {
	ts := entryTimes(&tar.Header{AccessTime: dt.atime, ModTime: dt.mtime})
	dir, base := splitName(dt.path)
	if dt.path == "" {
		dir, base = "", "."
	}
	d, err := a.root.OpenFile(rootName(dir), os.O_RDONLY|dirFlags, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil // removed later in the layer
		}
		return fmt.Errorf("archive: open %s: %w", rootName(dir), err)
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(fileFd(d), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	if err := unix.UtimesNanoAt(fileFd(d), base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("archive: set times of %s: %w", rootName(dt.path), err)
	}
	return nil
}

// copySparse copies r to the new, empty file f, seeking over zero chunks
// instead of writing them, so that the holes of sparse entries (which
// archive/tar reads back as zeros) stay holes. It stops when ctx is done:
// archive/tar produces a sparse entry's holes without reading input, so a
// small layer can describe a huge file. Returns the bytes copied, holes
// included.
func (a *applier) copySparse(f *os.File, r io.Reader) (int64, error) {
	if a.buf == nil {
		a.buf = make([]byte, copyChunk)
		a.zeros = make([]byte, copyChunk)
	}
	var n int64
	hole := false
	for {
		if err := a.ctx.Err(); err != nil {
			return n, err
		}
		m, err := r.Read(a.buf)
		if m > 0 {
			chunk := a.buf[:m]
			if bytes.Equal(chunk, a.zeros[:m]) {
				if _, err := f.Seek(int64(m), io.SeekCurrent); err != nil {
					return n, err
				}
				hole = true
			} else {
				if _, err := f.Write(chunk); err != nil {
					return n, err
				}
				hole = false
			}
			n += int64(m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if hole {
		if err := f.Truncate(n); err != nil {
			return n, err
		}
	}
	return n, nil
}
