//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// escapeCase is a crafted layer that tries to reach outside root. The
// environment (newEscapeEnv) provides root with symlinks up -> ../sentinel,
// upup -> ../../.., abs -> <sentinel>, absfile -> <sentinel>/passwd and a
// loop1/loop2 pair. A case must fail or stay inside root; confined, when set,
// checks where the entries landed.
type escapeCase struct {
	name     string
	layer    func(tb testing.TB, sentinel string) []byte
	opts     []ApplyOption
	confined func(t *testing.T, root, sentinel string)
}

// landed asserts that root/rel holds content.
func landed(rel, content string) func(t *testing.T, root, sentinel string) {
	return func(t *testing.T, root, sentinel string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(rel, "$S", sentinel)))
		if err != nil || string(b) != content {
			t.Errorf("root/%s = %q, %v; want %q", rel, b, err, content)
		}
	}
}

func escapeCases() []escapeCase {
	const pwn = "pwned\n"
	return []escapeCase{
		{name: "dot-dot name", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("../sentinel/passwd", pwn), file("../../x", pwn))
		}, confined: landed("sentinel/passwd", pwn)},
		{name: "absolute name", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file(filepath.Join(s, "passwd"), pwn))
		}, confined: landed("$S/passwd", pwn)},
		{name: "dot-dot inside name", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("lower/../../sentinel/shadow", pwn))
		}, confined: landed("sentinel/shadow", pwn)},
		{name: "symlink to absolute dir then file", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, symlink("a", s), file("a/passwd", pwn))
		}, confined: landed("$S/passwd", pwn)},
		{name: "symlink to /etc then file", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, symlink("a", "/etc"), file("a/berth-archive-escape-test", pwn))
		}, confined: func(t *testing.T, root, s string) {
			if exists("/etc/berth-archive-escape-test") {
				os.Remove("/etc/berth-archive-escape-test")
				t.Fatal("wrote /etc/berth-archive-escape-test on the host")
			}
			landed("etc/berth-archive-escape-test", pwn)(t, root, s)
		}},
		{name: "relative symlink climbing out then file", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, symlink("a", "../../.."), file("a/sentinel/passwd", pwn))
		}, confined: landed("sentinel/passwd", pwn)},
		{name: "lower symlinks used as parents", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("up/passwd", pwn), file("abs/shadow", pwn), file("upup/sentinel/dir/f", pwn),
				dir("up/etc"), ent{name: "abs/dir", typ: tar.TypeDir, mode: 0o777})
		}},
		{name: "symlink chain", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, symlink("b", "../.."), symlink("a", "b/c/../../sentinel"), dir("c"), file("a/passwd", pwn))
		}},
		{name: "dir entry over a lower symlink is not chmodded through it", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, ent{name: "up", typ: tar.TypeDir, mode: 0o777, uid: 1234},
				ent{name: "abs/", typ: tar.TypeDir, mode: 0o700, uid: 99})
		}},
		{name: "file entry over a symlink to an outside file", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("absfile", pwn), ent{name: "absfile", typ: tar.TypeFifo})
		}},
		{name: "symlink then file of the same name", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, symlink("x", filepath.Join(s, "shadow")), file("x", pwn),
				symlink("y", "../sentinel/shadow"), ent{name: "y", body: pwn, mode: 0o4777})
		}},
		{name: "hardlink to outside file by dot-dot", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, hardlink("h", "../sentinel/passwd"), file("h", pwn))
		}},
		{name: "hardlink to outside file by absolute path", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, hardlink("h", filepath.Join(s, "passwd")))
		}},
		{name: "hardlink to /etc/shadow", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, hardlink("h", "../../etc/shadow"))
		}},
		{name: "hardlink through lower symlinks", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, hardlink("h1", "up/passwd"), hardlink("h2", "abs/passwd"), hardlink("h3", "upup/sentinel/passwd"))
		}},
		{name: "hardlink to a symlink pointing out, then written", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, hardlink("h", "absfile"), file("h", pwn), hardlink("h2", "absfile"),
				ent{name: "h2", typ: tar.TypeDir, mode: 0o777})
		}},
		{name: "hardlink created through a symlink parent", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("f", pwn), hardlink("up/passwd", "f"), hardlink("abs/link", "f"))
		}},
		{name: "whiteout through a symlink", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("up/.wh.passwd", ""), file("abs/.wh.shadow", ""), file("upup/sentinel/.wh.etc", ""))
		}},
		{name: "whiteout of symlinks to outside", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file(".wh.up", ""), file(".wh.abs", ""), file(".wh.absfile", ""))
		}},
		{name: "whiteout of the parent", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("../.wh.sentinel", ""), file("lower/../../.wh.sentinel", ""))
		}},
		{name: "opaque through a symlink", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("up/.wh..wh..opq", ""), file("abs/.wh..wh..opq", ""), file("upup/.wh..wh..opq", ""))
		}},
		{name: "overlay whiteouts through symlinks", opts: []ApplyOption{WithOverlayWhiteouts()}, layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("up/.wh.passwd", ""), file("abs/.wh..wh..opq", ""), file("../.wh.sentinel", ""))
		}},
		{name: "device and fifo through symlinks", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, ent{name: "up/null", typ: tar.TypeChar, major: 1, minor: 3},
				ent{name: "abs/fifo", typ: tar.TypeFifo}, ent{name: "abs/passwd", typ: tar.TypeBlock, major: 7})
		}},
		{name: "xattrs through symlinks", layer: func(tb testing.TB, s string) []byte {
			x := map[string]string{"user.pwn": "1", "security.capability": capV2}
			return mkTar(tb, ent{name: "up/passwd", body: pwn, xattrs: x},
				ent{name: "abs", typ: tar.TypeSymlink, link: s, xattrs: x},
				ent{name: "absfile", typ: tar.TypeSymlink, link: filepath.Join(s, "passwd"), xattrs: x})
		}},
		{name: "root entry named dot-dot", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, ent{name: "../", typ: tar.TypeDir, mode: 0o777, uid: 4321})
		}},
		{name: "symlink loop", layer: func(tb testing.TB, s string) []byte {
			return mkTar(tb, file("loop1/x", pwn))
		}},
		{name: "mtimes through symlinks", layer: func(tb testing.TB, s string) []byte {
			old := time.Unix(12345, 0)
			return mkTar(tb, ent{name: "up/etc/", typ: tar.TypeDir, mtime: old}, ent{name: "abs/x", body: "x", mtime: old},
				ent{name: "upup/", typ: tar.TypeDir, mtime: old})
		}},
	}
}

func TestApplyEscapes(t *testing.T) {
	requireRoot(t)
	for _, tc := range escapeCases() {
		for _, overlay := range []bool{false, true} {
			name := tc.name
			opts := tc.opts
			if overlay {
				name += "/overlay"
				opts = append(opts[:len(opts):len(opts)], WithOverlayWhiteouts())
			}
			t.Run(name, func(t *testing.T) {
				e := newEscapeEnv(t)
				before := e.snapshot(t)
				_, err := applyBytes(t, e.root, tc.layer(t, e.sentinel), opts...)
				e.check(t, before)
				if err != nil {
					t.Logf("refused: %v", err)
				} else if tc.confined != nil && !overlay {
					tc.confined(t, e.root, e.sentinel)
				}
			})
		}
	}
}

// FuzzApply applies arbitrary bytes as a layer into a root whose lower layer
// holds symlinks pointing out of it, and checks that nothing outside root
// changed. Errors are fine; escapes are not.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root")
	}
	for _, tc := range applyCases(f) {
		f.Add(tc.layer, false)
	}
	for _, tc := range escapeCases() {
		f.Add(tc.layer(f, "/tmp/sentinel"), false)
		f.Add(tc.layer(f, "/tmp/sentinel"), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, overlay bool) {
		e := newEscapeEnv(t)
		before := e.snapshot(t)
		var opts []ApplyOption
		if overlay {
			opts = append(opts, WithOverlayWhiteouts())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = Apply(ctx, e.root, bytes.NewReader(data), opts...)
		e.check(t, before)
	})
}

func BenchmarkApply(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	var ents []ent
	body := strings.Repeat("x", 1024)
	for d := 0; d < 10; d++ {
		dn := filepath.Join("usr/share", string(rune('a'+d)))
		ents = append(ents, dir(dn))
		for i := 0; i < 100; i++ {
			ents = append(ents, ent{name: filepath.Join(dn, "file"+strings.Repeat("0", 3)+string(rune('a'+i%26))+string(rune('a'+i/26))), body: body, mode: 0o644, uid: 1, gid: 1})
		}
	}
	layer := mkTar(b, ents...)
	base := b.TempDir()
	b.SetBytes(int64(len(layer)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		root, err := os.MkdirTemp(base, "root")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer)); err != nil {
			b.Fatal(err)
		}
	}
}
