package containerfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Change kinds, as `docker diff` prints them.
const (
	ChangeModify = "C"
	ChangeAdd    = "A"
	ChangeDelete = "D"
)

// Change is one line of `docker diff`: Kind is "A", "C" or "D"; Path is
// absolute inside the container.
type Change struct {
	Kind, Path string
	opaque     bool // an overlay opaque directory (its lower content is hidden)
}

// initPaths are the files the engine itself puts in a container's
// rootfs (mount points of its generated /etc files); Docker keeps them in
// an init layer, so diff and commit leave them out.
var initPaths = map[string]bool{"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true}

// mountRoots are where the OCI runtime mounts /proc, /sys and /dev (and
// their children, such as /dev/pts, /dev/shm, /dev/console): what lands
// in the rootfs there is only the runtime's mount points, which Docker's
// diff hides too.
var mountRoots = []string{"/dev", "/proc", "/sys"}

func underMount(p string) bool {
	for _, r := range mountRoots {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

// changeSet is a container's changes and the directory holding the
// changed files (the overlay upper dir, or the vfs tree).
type changeSet struct {
	changes []Change
	src     string
}

// Diff lists the changes in container c's filesystem relative to its
// image, sorted by path, as `docker diff`. With the overlay snapshotter
// they come from the upper directory (a 0:0 character device is a
// deletion, an opaque directory a change); with vfs from comparing the
// container's tree with the image's.
func (cf *FS) Diff(ctx context.Context, c record.Container) ([]Change, error) {
	var out []Change
	err := cf.changes(ctx, c, func(cs changeSet) error { out = cs.changes; return nil })
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// changes computes c's change set and hands it to fn while the source
// directory is valid.
func (cf *FS) changes(ctx context.Context, c record.Container, fn func(changeSet) error) error {
	mounts, err := cf.Snaps.Mounts(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("container %s has no root filesystem: %w", c.ShortID(), err)
	}
	var upper string
	var lowers []string
	for _, m := range mounts {
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			}
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = strings.Split(v, ":")
			}
		}
	}
	if upper != "" {
		cs, err := overlayChanges(upper, lowers)
		if err != nil {
			return err
		}
		return fn(changeSet{changes: cs, src: upper})
	}
	if len(mounts) != 1 || mounts[0].Type != "bind" {
		return fmt.Errorf("diff of this snapshot's mounts: %w", errdefs.ErrNotImplemented)
	}
	tree := mounts[0].Source
	base := ""
	if c.Snapshot != "" {
		key := "diff-" + scratchID() + "-" + c.ID
		vm, err := cf.Snaps.View(ctx, key, c.Snapshot)
		if err != nil {
			return err
		}
		defer cf.Snaps.Remove(context.WithoutCancel(ctx), key)
		if len(vm) != 1 || vm[0].Type != "bind" {
			return fmt.Errorf("diff of this snapshot's view: %w", errdefs.ErrNotImplemented)
		}
		base = vm[0].Source
	}
	cs, err := treeChanges(tree, base)
	if err != nil {
		return err
	}
	return fn(changeSet{changes: cs, src: tree})
}

// overlayChanges reads an overlay upper directory: a whiteout (character
// device 0:0) is a deletion; anything else is a change when a lower
// layer has the path, else an addition. Children of an added or opaque
// directory are additions.
func overlayChanges(upper string, lowers []string) ([]Change, error) {
	var out []Change
	inLower := func(p string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, p)); err == nil {
				return true
			}
		}
		return false
	}
	hidden := map[string]bool{} // dirs whose lower content is gone or absent
	err := walkTree(upper, func(p, rel, abs string, d fs.DirEntry, fi fs.FileInfo) error {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0 {
			out = append(out, Change{Kind: ChangeDelete, Path: abs})
			return nil
		}
		parentHidden := hidden[path.Dir(abs)]
		kind := ChangeAdd
		if !parentHidden && inLower(rel) {
			kind = ChangeModify
		}
		ch := Change{Kind: kind, Path: abs}
		if d.IsDir() {
			if isOpaque(p) {
				ch.opaque = true
				hidden[abs] = true
			} else if kind == ChangeAdd {
				hidden[abs] = true
			}
		}
		out = append(out, ch)
		return nil
	})
	return filterInit(out), err
}

func isOpaque(dir string) bool {
	buf := make([]byte, 2)
	n, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// walkTree calls fn for every path under root but root itself, with its
// path relative to root (rel) and as an absolute path inside the
// container (abs), and its Lstat information.
func walkTree(root string, fn func(p, rel, abs string, d fs.DirEntry, fi fs.FileInfo) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(p, rel, "/"+filepath.ToSlash(rel), d, fi)
	})
}

// treeChanges compares tree with base (both whole root filesystems).
func treeChanges(tree, base string) ([]Change, error) {
	var out []Change
	err := walkTree(tree, func(p, rel, abs string, d fs.DirEntry, fi fs.FileInfo) error {
		if base == "" {
			out = append(out, Change{Kind: ChangeAdd, Path: abs})
			return nil
		}
		bfi, err := os.Lstat(filepath.Join(base, rel))
		if err != nil {
			out = append(out, Change{Kind: ChangeAdd, Path: abs})
			return nil
		}
		if !sameFile(p, fi, filepath.Join(base, rel), bfi) {
			out = append(out, Change{Kind: ChangeModify, Path: abs})
		}
		return nil
	})
	if err != nil || base == "" {
		return filterInit(out), err
	}
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "." {
			return nil
		}
		if _, err := os.Lstat(filepath.Join(tree, rel)); err != nil {
			out = append(out, Change{Kind: ChangeDelete, Path: "/" + filepath.ToSlash(rel)})
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return filterInit(out), err
}

// sameFile compares type, mode, owner, size, mtime (not for directories,
// whose mtime changes with their children) and link target.
func sameFile(p string, a fs.FileInfo, q string, b fs.FileInfo) bool {
	if a.Mode() != b.Mode() || (!a.IsDir() && (a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime()))) {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if ok1 && ok2 && (sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Rdev != sb.Rdev) {
		return false
	}
	if a.Mode()&fs.ModeSymlink != 0 {
		la, _ := os.Readlink(p)
		lb, _ := os.Readlink(q)
		return la == lb
	}
	return true
}

// filterInit drops the engine's own mount points, and a directory change
// that only they caused.
func filterInit(cs []Change) []Change {
	keep := cs[:0]
	for _, c := range cs {
		if !initPaths[c.Path] && !underMount(c.Path) {
			keep = append(keep, c)
		}
	}
	out := keep[:0]
	for i, c := range keep {
		if c.Kind == ChangeModify && c.Path == "/etc" {
			child := false
			for _, o := range keep[i+1:] {
				if strings.HasPrefix(o.Path, "/etc/") {
					child = true
				}
			}
			if !child && etcOnlyCopiedUp(keep) {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// etcOnlyCopiedUp reports that /etc appears in the changes only as the
// parent of the engine's mount points (no other change under it).
func etcOnlyCopiedUp(cs []Change) bool {
	for _, c := range cs {
		if strings.HasPrefix(c.Path, "/etc/") {
			return false
		}
	}
	return true
}

// WriteChanges writes container c's changes to w as an uncompressed OCI
// layer tar: deletions as ".wh." whiteouts, opaque directories as
// ".wh..wh..opq". Errors as Diff.
func (cf *FS) WriteChanges(ctx context.Context, c record.Container, w io.Writer) error {
	return cf.changes(ctx, c, func(cs changeSet) error { return changesTar(cs, w) })
}

// changesTar writes the change set as an OCI layer tar.
func changesTar(cs changeSet, w io.Writer) error {
	root, err := os.OpenRoot(cs.src)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(w)
	tt := treeTar{ctx: context.Background(), tw: tw, keepOwner: true, links: map[[2]uint64]string{}}
	for _, ch := range cs.changes {
		rel := strings.TrimPrefix(ch.Path, "/")
		if ch.Kind == ChangeDelete {
			dir, base := path.Split(rel)
			if err := tw.WriteHeader(&tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		fi, err := root.Lstat(rel)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			// Only the directory itself: its changed children are
			// changes of their own.
			if err := tt.one(root, rel); err != nil {
				return err
			}
			if ch.opaque {
				if err := tw.WriteHeader(&tar.Header{Name: rel + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
					return err
				}
			}
			continue
		}
		if err := tt.add(root, rel, rel, ""); err != nil {
			return err
		}
	}
	return tw.Close()
}

// one writes the header of directory rel of root alone.
func (t *treeTar) one(root *os.Root, rel string) error {
	fi, err := root.Lstat(rel)
	if err != nil {
		return err
	}
	hdr, err := t.header(fi, "", rel)
	if err != nil {
		return err
	}
	return t.tw.WriteHeader(hdr)
}
