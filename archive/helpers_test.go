//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testTime is the default mtime of test entries.
var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// ent describes one tar entry for tests.
type ent struct {
	name         string
	typ          byte // default tar.TypeReg
	body         string
	link         string
	mode         int64 // default 0644 files, 0755 dirs, 0777 symlinks
	uid, gid     int
	xattrs       map[string]string
	major, minor int64
	mtime        time.Time
	format       tar.Format
}

func file(name, body string) ent { return ent{name: name, body: body} }
func dir(name string) ent        { return ent{name: name, typ: tar.TypeDir} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target}
}
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

// mkTar builds an uncompressed tar from ents with archive/tar.
func mkTar(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  e.mtime,
			Devmajor: e.major,
			Devminor: e.minor,
			Format:   e.format,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.ModTime.IsZero() {
			hdr.ModTime = testTime
		}
		if hdr.Mode == 0 {
			switch hdr.Typeflag {
			case tar.TypeDir:
				hdr.Mode = 0o755
			case tar.TypeSymlink:
				hdr.Mode = 0o777
			default:
				hdr.Mode = 0o644
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatalf("tar header %s: %v", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// gnuSparseTar builds a one-entry tar in the old GNU sparse format (type 'S'),
// which archive/tar reads but does not write. Each fragment is data at an
// offset; the rest of the size bytes are holes. At most 4 fragments.
func gnuSparseTar(name string, size int64, frags map[int64]string) []byte {
	blk := make([]byte, 512)
	octal := func(b []byte, v int64) {
		s := fmt.Sprintf("%0*o", len(b)-1, v)
		copy(b, s)
		b[len(b)-1] = 0
	}
	copy(blk[0:100], name)
	octal(blk[100:108], 0o644)
	octal(blk[108:116], 0)
	octal(blk[116:124], 0)
	octal(blk[136:148], testTime.Unix())
	blk[156] = tar.TypeGNUSparse
	copy(blk[257:265], "ustar  \x00")
	offs := make([]int64, 0, len(frags))
	for off := range frags {
		offs = append(offs, off)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var data []byte
	for i, off := range offs {
		d := frags[off]
		octal(blk[386+i*24:386+i*24+12], off)
		octal(blk[386+i*24+12:386+i*24+24], int64(len(d)))
		data = append(data, d...)
	}
	octal(blk[124:136], int64(len(data)))
	octal(blk[483:495], size)
	copy(blk[148:156], "        ")
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append([]byte{}, blk...)
	out = append(out, data...)
	if pad := len(data) % 512; pad != 0 {
		out = append(out, make([]byte, 512-pad)...)
	}
	return append(out, make([]byte, 1024)...)
}

func applyBytes(t testing.TB, root string, data []byte, opts ...ApplyOption) (int64, error) {
	t.Helper()
	return Apply(context.Background(), root, bytes.NewReader(data), opts...)
}

func mustApply(t testing.TB, root string, data []byte, opts ...ApplyOption) int64 {
	t.Helper()
	n, err := applyBytes(t, root, data, opts...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return n
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// nodeState is what snapshotTree records of one file; any change to content,
// metadata, links or xattrs changes it (ctime catches chmod, chown, link and
// xattr changes even when they are undone).
type nodeState struct {
	Mode, UID, GID  uint32
	Nlink, Rdev     uint64
	Size            int64
	Mtime, Ctime    unix.Timespec
	Content, Target string
	Xattrs          string
}

// snapshotTree records every file under dir (not following symlinks),
// skipping the subtree skip (an absolute path) but recording dir itself.
func snapshotTree(tb testing.TB, dir, skip string) map[string]nodeState {
	tb.Helper()
	out := map[string]nodeState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return fs.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		ns := nodeState{
			Mode: st.Mode, UID: st.Uid, GID: st.Gid, Nlink: uint64(st.Nlink), Rdev: st.Rdev,
			Size: st.Size, Mtime: st.Mtim, Ctime: st.Ctim,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			ns.Content = hex.EncodeToString(h[:])
		case unix.S_IFLNK:
			ns.Target, err = os.Readlink(p)
			if err != nil {
				return err
			}
		}
		buf := make([]byte, 64<<10)
		if n, err := unix.Llistxattr(p, buf); err == nil {
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				v, _ := getxattr(p, name)
				ns.Xattrs += name + "=" + v + ";"
			}
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = ns
		return nil
	})
	if err != nil {
		tb.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func diffSnapshots(before, after map[string]nodeState) []string {
	var diffs []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok:
			diffs = append(diffs, "removed "+k)
		case v != w:
			diffs = append(diffs, fmt.Sprintf("changed %s: %+v -> %+v", k, v, w))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diffs = append(diffs, "added "+k)
		}
	}
	sort.Strings(diffs)
	return diffs
}

// escapeEnv is a temp dir holding root (the apply target) and a sentinel
// directory next to it. root starts with a "lower layer" of symlinks that
// point at the sentinel, relatively and absolutely.
type escapeEnv struct {
	tmp, root, sentinel string
}

func newEscapeEnv(tb testing.TB) *escapeEnv {
	tb.Helper()
	tmp := tb.TempDir()
	e := &escapeEnv{tmp: tmp, root: filepath.Join(tmp, "root"), sentinel: filepath.Join(tmp, "sentinel")}
	for _, d := range []string{e.root, e.sentinel, filepath.Join(e.sentinel, "etc"), filepath.Join(e.sentinel, "dir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	files := map[string]string{"passwd": "root:x:0:0\n", "shadow": "root:secret\n", "etc/passwd": "nested\n", "dir/f": "f\n"}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(e.sentinel, n), []byte(c), 0o640); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.Symlink("passwd", filepath.Join(e.sentinel, "link")); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(e.sentinel, "passwd"), "user.sentinel", []byte("1"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		tb.Fatal(err)
	}
	mustApply(tb, e.root, mkTar(tb,
		dir("lower"),
		file("lower/file", "lower\n"),
		symlink("up", "../sentinel"),
		symlink("upup", "../../.."),
		symlink("abs", e.sentinel),
		symlink("absfile", filepath.Join(e.sentinel, "passwd")),
		symlink("loop1", "loop2"),
		symlink("loop2", "loop1"),
	))
	return e
}

func (e *escapeEnv) snapshot(tb testing.TB) map[string]nodeState {
	return snapshotTree(tb, e.tmp, e.root)
}

func (e *escapeEnv) check(tb testing.TB, before map[string]nodeState) {
	tb.Helper()
	if diffs := diffSnapshots(before, e.snapshot(tb)); len(diffs) > 0 {
		tb.Fatalf("apply changed files outside root:\n%s", strings.Join(diffs, "\n"))
	}
}
