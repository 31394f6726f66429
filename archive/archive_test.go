//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, security and trusted xattrs)")
	}
}

// capV2 is a VFS_CAP_REVISION_2 security.capability value granting
// CAP_NET_RAW (bit 13) permitted and effective.
var capV2 = string([]byte{
	0x01, 0x00, 0x00, 0x02, // magic_etc: revision 2 | effective
	0x00, 0x20, 0x00, 0x00, // permitted[0]
	0x00, 0x00, 0x00, 0x00, // inheritable[0]
	0x00, 0x00, 0x00, 0x00, // permitted[1]
	0x00, 0x00, 0x00, 0x00, // inheritable[1]
})

type applyCase struct {
	name  string
	lower [][]byte // applied first, in order, in the default mode
	layer []byte
	opts  []ApplyOption
	// wantN is the expected byte count, checked when >= 0.
	wantN int64
	check func(t *testing.T, root string)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func wantMode(t *testing.T, p string, typ, perm uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Mode&unix.S_IFMT != typ || st.Mode&0o7777 != perm {
		t.Errorf("%s: mode %o, want type %o perm %o", p, st.Mode, typ, perm)
	}
}

func wantOwner(t *testing.T, p string, uid, gid uint32) {
	t.Helper()
	st := lstat(t, p)
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, uid, gid)
	}
}

func wantMtime(t *testing.T, p string, mt time.Time) {
	t.Helper()
	st := lstat(t, p)
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
		t.Errorf("%s: mtime %v, want %v", p, got, mt)
	}
}

func wantAbsent(t *testing.T, p string) {
	t.Helper()
	if exists(p) {
		t.Errorf("%s exists, want it absent", p)
	}
}

func wantXattr(t *testing.T, p, name, value string) {
	t.Helper()
	got, err := getxattr(p, name)
	if err != nil || got != value {
		t.Errorf("%s: xattr %s = %q, %v; want %q", p, name, got, err, value)
	}
}

func sameInode(t *testing.T, a, b string, nlink uint64) {
	t.Helper()
	sa, sb := lstat(t, a), lstat(t, b)
	if sa.Ino != sb.Ino || sa.Dev != sb.Dev {
		t.Errorf("%s and %s are different inodes", a, b)
	}
	if uint64(sa.Nlink) != nlink {
		t.Errorf("%s: nlink %d, want %d", a, sa.Nlink, nlink)
	}
}

func applyCases(t testing.TB) []applyCase {
	later := testTime.Add(time.Hour)
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("f", 150)
	return []applyCase{
		{
			name:  "regular file content mode owner mtime",
			layer: mkTar(t, ent{name: "etc/hosts", body: "127.0.0.1 localhost\n", mode: 0o640, uid: 12, gid: 34, mtime: later}),
			wantN: 20,
			check: func(t *testing.T, r string) {
				p := filepath.Join(r, "etc/hosts")
				if got := readFile(t, p); got != "127.0.0.1 localhost\n" {
					t.Errorf("content %q", got)
				}
				wantMode(t, p, unix.S_IFREG, 0o640)
				wantOwner(t, p, 12, 34)
				wantMtime(t, p, later)
				wantMode(t, filepath.Join(r, "etc"), unix.S_IFDIR, 0o755) // implicit parent
			},
		},
		{
			name: "directories with special bits and mtimes set at the end",
			layer: mkTar(t,
				ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777, mtime: later},
				ent{name: "srv/", typ: tar.TypeDir, mode: 0o2750, uid: 7, gid: 8, mtime: later},
				file("tmp/a", "a"),
				ent{name: "srv/sub/", typ: tar.TypeDir, mode: 0o700},
				file("srv/sub/b", "bb"),
			),
			wantN: 3,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "tmp"), unix.S_IFDIR, 0o1777)
				wantMode(t, filepath.Join(r, "srv"), unix.S_IFDIR, 0o2750)
				wantMode(t, filepath.Join(r, "srv/sub"), unix.S_IFDIR, 0o700)
				wantOwner(t, filepath.Join(r, "srv"), 7, 8)
				wantMtime(t, filepath.Join(r, "tmp"), later)
				wantMtime(t, filepath.Join(r, "srv"), later)
				wantMtime(t, filepath.Join(r, "srv/sub"), testTime)
			},
		},
		{
			name: "setuid and setgid survive chown",
			layer: mkTar(t,
				ent{name: "bin/su", body: "x", mode: 0o4755, uid: 0, gid: 0},
				ent{name: "bin/sg", body: "y", mode: 0o2711, uid: 1000, gid: 1000},
			),
			wantN: 2,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "bin/su"), unix.S_IFREG, 0o4755)
				wantMode(t, filepath.Join(r, "bin/sg"), unix.S_IFREG, 0o2711)
				wantOwner(t, filepath.Join(r, "bin/sg"), 1000, 1000)
			},
		},
		{
			name: "symlinks keep their target verbatim and their own owner",
			layer: mkTar(t,
				ent{name: "rel", typ: tar.TypeSymlink, link: "../../x/y", uid: 5, gid: 6, mtime: later},
				symlink("abs", "/etc/passwd"),
				symlink("dangling", "nowhere"),
			),
			wantN: 0,
			check: func(t *testing.T, r string) {
				for n, want := range map[string]string{"rel": "../../x/y", "abs": "/etc/passwd", "dangling": "nowhere"} {
					got, err := os.Readlink(filepath.Join(r, n))
					if err != nil || got != want {
						t.Errorf("readlink %s = %q, %v; want %q", n, got, err, want)
					}
				}
				wantOwner(t, filepath.Join(r, "rel"), 5, 6)
				wantMtime(t, filepath.Join(r, "rel"), later)
			},
		},
		{
			name: "hardlinks within the layer",
			layer: mkTar(t,
				ent{name: "a", body: "data", mode: 0o600, uid: 3},
				hardlink("b", "a"),
				hardlink("d/c", "/a"),
				hardlink("e", "./d/../a"),
			),
			wantN: 4,
			check: func(t *testing.T, r string) {
				sameInode(t, filepath.Join(r, "a"), filepath.Join(r, "b"), 4)
				sameInode(t, filepath.Join(r, "a"), filepath.Join(r, "d/c"), 4)
				sameInode(t, filepath.Join(r, "a"), filepath.Join(r, "e"), 4)
				wantOwner(t, filepath.Join(r, "e"), 3, 0)
			},
		},
		{
			name:  "hardlink to a file from a lower layer and to a symlink",
			lower: [][]byte{mkTar(t, file("usr/bin/perl", "#!perl"), symlink("s", "usr/bin/perl"))},
			layer: mkTar(t, hardlink("usr/bin/perl5.36", "usr/bin/perl"), hardlink("s2", "s")),
			wantN: 0,
			check: func(t *testing.T, r string) {
				sameInode(t, filepath.Join(r, "usr/bin/perl"), filepath.Join(r, "usr/bin/perl5.36"), 2)
				sameInode(t, filepath.Join(r, "s"), filepath.Join(r, "s2"), 2)
				wantMode(t, filepath.Join(r, "s2"), unix.S_IFLNK, 0o777)
			},
		},
		{
			name:  "hardlink replaces an existing file and is idempotent",
			lower: [][]byte{mkTar(t, file("a", "new"), file("b", "old"))},
			layer: mkTar(t, hardlink("b", "a"), hardlink("b", "a"), hardlink("a", "a")),
			wantN: 0,
			check: func(t *testing.T, r string) {
				sameInode(t, filepath.Join(r, "a"), filepath.Join(r, "b"), 2)
			},
		},
		{
			name: "devices and fifos",
			layer: mkTar(t,
				ent{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
				ent{name: "dev/loop0", typ: tar.TypeBlock, major: 7, minor: 0, mode: 0o660, gid: 6},
				ent{name: "run/fifo", typ: tar.TypeFifo, mode: 0o620, uid: 9},
				ent{name: "dev/big", typ: tar.TypeChar, major: 4095, minor: 1 << 19, mode: 0o600},
			),
			wantN: 0,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "dev/null"), unix.S_IFCHR, 0o666)
				if st := lstat(t, filepath.Join(r, "dev/null")); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					t.Errorf("dev/null rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				wantMode(t, filepath.Join(r, "dev/loop0"), unix.S_IFBLK, 0o660)
				wantOwner(t, filepath.Join(r, "dev/loop0"), 0, 6)
				if st := lstat(t, filepath.Join(r, "dev/loop0")); unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 0 {
					t.Errorf("dev/loop0 rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				if st := lstat(t, filepath.Join(r, "dev/big")); unix.Major(st.Rdev) != 4095 || unix.Minor(st.Rdev) != 1<<19 {
					t.Errorf("dev/big rdev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				wantMode(t, filepath.Join(r, "run/fifo"), unix.S_IFIFO, 0o620)
				wantOwner(t, filepath.Join(r, "run/fifo"), 9, 0)
			},
		},
		{
			name: "xattrs from PAX records",
			layer: mkTar(t,
				ent{name: "bin/ping", body: "elf", mode: 0o755, uid: 0, xattrs: map[string]string{
					"security.capability":    capV2,
					"user.mime":              "application/x-elf",
					"trusted.secret":         "dropped",
					"trusted.overlay.opaque": "y",
				}},
				ent{name: "data/", typ: tar.TypeDir, xattrs: map[string]string{"user.dir": "d", "user.overlay.opaque": "y"}},
				ent{name: "lnk", typ: tar.TypeSymlink, link: "bin/ping", xattrs: map[string]string{"user.ignored": "symlinks refuse user xattrs"}},
				ent{name: "fifo", typ: tar.TypeFifo, xattrs: map[string]string{"trusted.x": "dropped"}},
			),
			wantN: 3,
			check: func(t *testing.T, r string) {
				p := filepath.Join(r, "bin/ping")
				wantXattr(t, p, "security.capability", capV2)
				wantXattr(t, p, "user.mime", "application/x-elf")
				if _, err := getxattr(p, "trusted.secret"); err == nil {
					t.Error("trusted.secret was copied")
				}
				if _, err := getxattr(p, "trusted.overlay.opaque"); err == nil {
					t.Error("trusted.overlay.opaque was copied")
				}
				wantXattr(t, filepath.Join(r, "data"), "user.dir", "d")
				if _, err := getxattr(filepath.Join(r, "data"), "user.overlay.opaque"); err == nil {
					t.Error("user.overlay.opaque was copied")
				}
			},
		},
		{
			name: "long names in PAX and GNU formats",
			layer: mkTar(t,
				ent{name: long + "-gnu", body: "gnu", format: tar.FormatGNU},
				ent{name: "l/" + strings.Repeat("h", 110), typ: tar.TypeLink, link: long + "-gnu", format: tar.FormatGNU},
				ent{name: "l/" + strings.Repeat("s", 130), typ: tar.TypeSymlink, link: strings.Repeat("t", 200), format: tar.FormatPAX},
			),
			wantN: 3,
			check: func(t *testing.T, r string) {
				if got := readFile(t, filepath.Join(r, long+"-gnu")); got != "gnu" {
					t.Errorf("content %q", got)
				}
				sameInode(t, filepath.Join(r, long+"-gnu"), filepath.Join(r, "l", strings.Repeat("h", 110)), 2)
				if got, _ := os.Readlink(filepath.Join(r, "l", strings.Repeat("s", 130))); got != strings.Repeat("t", 200) {
					t.Errorf("long symlink target %q", got)
				}
			},
		},
		{
			name:  "long name in PAX format",
			layer: mkTar(t, ent{name: long, body: "pax", format: tar.FormatPAX}),
			wantN: 3,
			check: func(t *testing.T, r string) {
				if got := readFile(t, filepath.Join(r, long)); got != "pax" {
					t.Errorf("content %q", got)
				}
			},
		},
		{
			name:  "GNU sparse file keeps its holes",
			layer: gnuSparseTar("sparse", 64<<20, map[int64]string{0: "head", 32 << 20: "middle", 64<<20 - 4: "tail"}),
			wantN: 64 << 20,
			check: func(t *testing.T, r string) {
				p := filepath.Join(r, "sparse")
				st := lstat(t, p)
				if st.Size != 64<<20 {
					t.Fatalf("size %d", st.Size)
				}
				if st.Blocks*512 > 1<<20 {
					t.Errorf("sparse file uses %d bytes on disk, holes were written", st.Blocks*512)
				}
				b, _ := os.ReadFile(p)
				want := make([]byte, 64<<20)
				copy(want, "head")
				copy(want[32<<20:], "middle")
				copy(want[64<<20-4:], "tail")
				if !bytes.Equal(b, want) {
					t.Error("sparse content differs")
				}
			},
		},
		{
			name:  "file replaced by a directory",
			lower: [][]byte{mkTar(t, file("a", "file"), file("b", "file"))},
			layer: mkTar(t, dir("a"), file("a/child", "c"), ent{name: "b", typ: tar.TypeDir, mode: 0o711}),
			wantN: 1,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "a"), unix.S_IFDIR, 0o755)
				wantMode(t, filepath.Join(r, "b"), unix.S_IFDIR, 0o711)
				if got := readFile(t, filepath.Join(r, "a/child")); got != "c" {
					t.Errorf("content %q", got)
				}
			},
		},
		{
			name:  "directory replaced by a file, symlink and device",
			lower: [][]byte{mkTar(t, dir("a"), file("a/x", "x"), dir("a/sub"), dir("b"), file("b/y", "y"), dir("c"))},
			layer: mkTar(t, file("a", "now a file"), symlink("b", "a"), ent{name: "c", typ: tar.TypeFifo}),
			wantN: 10,
			check: func(t *testing.T, r string) {
				if got := readFile(t, filepath.Join(r, "a")); got != "now a file" {
					t.Errorf("content %q", got)
				}
				wantMode(t, filepath.Join(r, "b"), unix.S_IFLNK, 0o777)
				wantMode(t, filepath.Join(r, "c"), unix.S_IFIFO, 0o644)
			},
		},
		{
			name:  "existing directory kept and its metadata updated",
			lower: [][]byte{mkTar(t, ent{name: "d", typ: tar.TypeDir, mode: 0o755}, file("d/keep", "k"))},
			layer: mkTar(t, ent{name: "d", typ: tar.TypeDir, mode: 0o1770, uid: 4, gid: 5, mtime: later}, file("d/new", "n")),
			wantN: 1,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "d"), unix.S_IFDIR, 0o1770)
				wantOwner(t, filepath.Join(r, "d"), 4, 5)
				wantMtime(t, filepath.Join(r, "d"), later)
				if !exists(filepath.Join(r, "d/keep")) || !exists(filepath.Join(r, "d/new")) {
					t.Error("directory content lost")
				}
			},
		},
		{
			name:  "existing file replaced and not written through a hardlink",
			lower: [][]byte{mkTar(t, file("a", "lower"), hardlink("b", "a"))},
			layer: mkTar(t, file("b", "upper")),
			wantN: 5,
			check: func(t *testing.T, r string) {
				if got := readFile(t, filepath.Join(r, "a")); got != "lower" {
					t.Errorf("a = %q, the hardlinked inode was written", got)
				}
				if got := readFile(t, filepath.Join(r, "b")); got != "upper" {
					t.Errorf("b = %q", got)
				}
			},
		},
		{
			name:  "whiteouts remove files and whole directories",
			lower: [][]byte{mkTar(t, file("etc/motd", "hi"), dir("var/cache/apt"), file("var/cache/apt/pkg", "p"), file("keep", "k"))},
			layer: mkTar(t, file("etc/.wh.motd", ""), file("var/cache/.wh.apt", ""), file("missing/.wh.x", ""), file(".wh.absent", "")),
			wantN: 0,
			check: func(t *testing.T, r string) {
				wantAbsent(t, filepath.Join(r, "etc/motd"))
				wantAbsent(t, filepath.Join(r, "var/cache/apt"))
				wantAbsent(t, filepath.Join(r, "etc/.wh.motd"))
				wantAbsent(t, filepath.Join(r, "missing"))
				if !exists(filepath.Join(r, "keep")) || !exists(filepath.Join(r, "var/cache")) {
					t.Error("whiteout removed too much")
				}
			},
		},
		{
			name:  "whiteout of a symlink removes the link, not its target",
			lower: [][]byte{mkTar(t, dir("target"), file("target/f", "f"), symlink("link", "target"))},
			layer: mkTar(t, file(".wh.link", "")),
			wantN: 0,
			check: func(t *testing.T, r string) {
				wantAbsent(t, filepath.Join(r, "link"))
				if !exists(filepath.Join(r, "target/f")) {
					t.Error("symlink target removed")
				}
			},
		},
		{
			name: "opaque directory: marker after the layer's own entries",
			lower: [][]byte{mkTar(t, dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o"),
				file("d/sub/replaced", "o"), file("other", "x"))},
			layer: mkTar(t, dir("d"), file("d/new", "n"), dir("d/sub"), file("d/sub/replaced", "n"),
				file("d/.wh..wh..opq", ""), file("d/later", "l")),
			wantN: 3,
			check: func(t *testing.T, r string) {
				wantAbsent(t, filepath.Join(r, "d/old"))
				wantAbsent(t, filepath.Join(r, "d/sub/old"))
				wantAbsent(t, filepath.Join(r, "d/.wh..wh..opq"))
				for _, p := range []string{"d/new", "d/sub/replaced", "d/later", "other"} {
					if !exists(filepath.Join(r, p)) {
						t.Errorf("%s missing", p)
					}
				}
				if got := readFile(t, filepath.Join(r, "d/sub/replaced")); got != "n" {
					t.Errorf("d/sub/replaced = %q", got)
				}
			},
		},
		{
			name:  "opaque directory: marker first",
			lower: [][]byte{mkTar(t, dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o"))},
			layer: mkTar(t, file("d/.wh..wh..opq", ""), dir("d"), dir("d/sub"), file("d/sub/new", "n")),
			wantN: 1,
			check: func(t *testing.T, r string) {
				wantAbsent(t, filepath.Join(r, "d/old"))
				wantAbsent(t, filepath.Join(r, "d/sub/old"))
				if !exists(filepath.Join(r, "d/sub/new")) {
					t.Error("d/sub/new missing")
				}
			},
		},
		{
			name:  "overlay whiteouts",
			lower: nil,
			layer: mkTar(t, dir("etc"), ent{name: "etc/.wh.motd", uid: 3, gid: 4}, dir("d"), file("d/.wh..wh..opq", ""), file("d/new", "n"), file("e/.wh..wh..opq", "")),
			opts:  []ApplyOption{WithOverlayWhiteouts()},
			wantN: 1,
			check: func(t *testing.T, r string) {
				p := filepath.Join(r, "etc/motd")
				st := lstat(t, p)
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
					t.Errorf("etc/motd: mode %o rdev %d, want a 0:0 char device", st.Mode, st.Rdev)
				}
				wantOwner(t, p, 3, 4)
				wantAbsent(t, filepath.Join(r, "etc/.wh.motd"))
				wantXattr(t, filepath.Join(r, "d"), "trusted.overlay.opaque", "y")
				wantXattr(t, filepath.Join(r, "e"), "trusted.overlay.opaque", "y")
				wantAbsent(t, filepath.Join(r, "d/.wh..wh..opq"))
				if !exists(filepath.Join(r, "d/new")) {
					t.Error("d/new missing")
				}
			},
		},
		{
			name:  "overlay whiteout replaces an existing entry and keeps opaque children",
			lower: [][]byte{mkTar(t, dir("x"), file("x/f", "f"), dir("d"), file("d/old", "o"))},
			layer: mkTar(t, file(".wh.x", ""), file("d/.wh..wh..opq", "")),
			opts:  []ApplyOption{WithOverlayWhiteouts()},
			wantN: 0,
			check: func(t *testing.T, r string) {
				wantMode(t, filepath.Join(r, "x"), unix.S_IFCHR, 0)
				if !exists(filepath.Join(r, "d/old")) {
					t.Error("overlay mode removed an opaque directory's child")
				}
			},
		},
		{
			name:  "root entry updates root's metadata",
			layer: mkTar(t, ent{name: "./", typ: tar.TypeDir, mode: 0o750, uid: 1, gid: 2, mtime: later}, file("./f", "f")),
			wantN: 1,
			check: func(t *testing.T, r string) {
				wantMode(t, r, unix.S_IFDIR, 0o750)
				wantOwner(t, r, 1, 2)
				wantMtime(t, r, later)
			},
		},
		{
			name:  "entries through symlinks from lower layers resolve inside root",
			lower: [][]byte{mkTar(t, dir("usr/lib"), symlink("lib", "usr/lib"), dir("run"), dir("var"), symlink("var/run", "/run"))},
			layer: mkTar(t, file("lib/libc.so", "libc"), file("var/run/pid", "1"), hardlink("var/run/pid2", "var/run/pid")),
			wantN: 5,
			check: func(t *testing.T, r string) {
				if got := readFile(t, filepath.Join(r, "usr/lib/libc.so")); got != "libc" {
					t.Errorf("usr/lib/libc.so = %q", got)
				}
				sameInode(t, filepath.Join(r, "run/pid"), filepath.Join(r, "run/pid2"), 2)
			},
		},
		{
			name:  "AUFS metadata is skipped",
			layer: mkTar(t, dir(".wh..wh.plnk"), file(".wh..wh.plnk/123.456", "x"), file(".wh..wh.aufs", ""), file("d/.wh..wh.orph", ""), file("f", "f")),
			wantN: 1,
			check: func(t *testing.T, r string) {
				entries, _ := os.ReadDir(r)
				if len(entries) != 1 || entries[0].Name() != "f" {
					t.Errorf("root holds %v, want only f", entries)
				}
			},
		},
		{
			name:  "without chown",
			layer: mkTar(t, ent{name: "f", body: "f", uid: 77, gid: 88}),
			opts:  []ApplyOption{WithoutChown()},
			wantN: 1,
			check: func(t *testing.T, r string) {
				wantOwner(t, filepath.Join(r, "f"), uint32(os.Geteuid()), uint32(os.Getegid()))
			},
		},
	}
}

func TestApply(t *testing.T) {
	requireRoot(t)
	for _, tc := range applyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, l := range tc.lower {
				mustApply(t, root, l)
			}
			n := mustApply(t, root, tc.layer, tc.opts...)
			if tc.wantN >= 0 && n != tc.wantN {
				t.Errorf("Apply wrote %d bytes, want %d", n, tc.wantN)
			}
			tc.check(t, root)
		})
	}
}

func TestApplyErrors(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		layer []byte
		is    func(error) bool
	}{
		{"truncated tar", mkTar(t, file("f", "content"))[:515], errdefs.IsInvalidArgument},
		{"garbage", bytes.Repeat([]byte{0xff}, 1024), errdefs.IsInvalidArgument},
		{"hardlink to missing file", mkTar(t, hardlink("a", "nope")), errdefs.IsInvalidArgument},
		{"hardlink to a directory", mkTar(t, dir("d"), hardlink("a", "d")), errdefs.IsInvalidArgument},
		{"file under a file", mkTar(t, file("f", ""), file("f/g", "")), errdefs.IsInvalidArgument},
		{"symlink loop", mkTar(t, symlink("a", "b"), symlink("b", "a"), file("a/x", "")), errdefs.IsInvalidArgument},
		{"whiteout of dot-dot", mkTar(t, file("d/.wh...", "")), errdefs.IsInvalidArgument},
		{"file replacing root", mkTar(t, file(".", "x")), errdefs.IsInvalidArgument},
		{"unsupported type", mkTar(t, ent{name: "v", typ: 'V'}), errdefs.IsInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(ctx, t.TempDir(), bytes.NewReader(tc.layer))
			if err == nil || !tc.is(err) {
				t.Fatalf("Apply error = %v, wrong category", err)
			}
		})
	}

	t.Run("missing root", func(t *testing.T) {
		_, err := Apply(ctx, filepath.Join(t.TempDir(), "nope"), bytes.NewReader(mkTar(t, file("f", ""))))
		if !errdefs.IsNotFound(err) {
			t.Fatalf("Apply error = %v, want NotFound", err)
		}
	})
	t.Run("reader error passes through", func(t *testing.T) {
		boom := errors.New("boom")
		r := ioMultiErr(mkTar(t, file("f", strings.Repeat("x", 4096)))[:1024], boom)
		_, err := Apply(ctx, t.TempDir(), r)
		if !errors.Is(err, boom) || errdefs.IsInvalidArgument(err) {
			t.Fatalf("Apply error = %v, want boom uncategorised", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Apply(cctx, t.TempDir(), bytes.NewReader(mkTar(t, file("f", ""))))
		if !errors.Is(err, context.Canceled) || !errdefs.IsCanceled(err) {
			t.Fatalf("Apply error = %v, want Canceled", err)
		}
	})
}

type errAfter struct {
	r   *bytes.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.r.Len() == 0 {
		return 0, e.err
	}
	return e.r.Read(p)
}

func ioMultiErr(b []byte, err error) *errAfter { return &errAfter{bytes.NewReader(b), err} }

// TestOverlayWhiteoutsMatchDefault mounts overlayfs with a lower layer applied
// normally and an upper layer applied with WithOverlayWhiteouts, and checks
// that the merged view equals both layers applied in the default mode.
func TestOverlayWhiteoutsMatchDefault(t *testing.T) {
	requireRoot(t)
	lower := mkTar(t, dir("d"), file("d/old", "o"), dir("d/sub"), file("d/sub/old", "o"), file("f", "f"),
		dir("x"), file("x/y", "y"), file("keep", "k"))
	upper := mkTar(t, dir("d"), file("d/.wh..wh..opq", ""), file("d/new", "n"), dir("d/sub"), file("d/sub/new", "n"),
		file(".wh.f", ""), file("x/.wh.y", ""), file("x/z", "z"), file("added", "a"))

	tmp := t.TempDir()
	dirs := map[string]string{}
	for _, n := range []string{"flat", "lower", "upper", "work", "merged"} {
		dirs[n] = filepath.Join(tmp, n)
		if err := os.Mkdir(dirs[n], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, dirs["flat"], lower)
	mustApply(t, dirs["flat"], upper)
	mustApply(t, dirs["lower"], lower)
	mustApply(t, dirs["upper"], upper, WithOverlayWhiteouts())
	opts := "lowerdir=" + dirs["lower"] + ",upperdir=" + dirs["upper"] + ",workdir=" + dirs["work"]
	if err := unix.Mount("overlay", dirs["merged"], "overlay", 0, opts); err != nil {
		t.Skipf("cannot mount overlayfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dirs["merged"], unix.MNT_DETACH) })

	listing := func(root string) map[string]string {
		out := map[string]string{}
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			v := d.Type().String()
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				v += ":" + string(b)
			}
			out[rel] = v
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	flat, merged := listing(dirs["flat"]), listing(dirs["merged"])
	if len(flat) != len(merged) {
		t.Errorf("flat has %d entries, merged %d:\nflat   %v\nmerged %v", len(flat), len(merged), flat, merged)
	}
	for k, v := range flat {
		if merged[k] != v {
			t.Errorf("%s: merged %q, flat %q", k, merged[k], v)
		}
	}
}
