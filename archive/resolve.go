package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
)

// maxSymlinks bounds symlink expansions while resolving one name, like the
// kernel's MAXSYMLINKS.
const maxSymlinks = 40

// Tree is what [ResolveInRoot] reads of a root: Lstat and Readlink of
// slash-separated names relative to it, which never start with "/" nor
// contain "." or "..". *os.Root is one; a caller can supply a view that
// spans several roots (a container's rootfs and its mounts).
type Tree interface {
	Lstat(name string) (fs.FileInfo, error)
	Readlink(name string) (string, error)
}

// Resolved is where a name lies inside a root, as [ResolveInRoot] found it.
type Resolved struct {
	// Path is the real path relative to the root, slash-separated, ""
	// for the root itself. Every component but the last was a real
	// directory (no symbolic link) at the time of the check. When the
	// name does not exist, Path is what creating it would make: the
	// existing directories, then the first missing component and the
	// remaining ones.
	Path string
	// Exists reports whether every component of the name exists.
	Exists bool
	// Info is the last component's Lstat result (a symbolic link left
	// unfollowed is described as the link); nil when the name does not
	// exist or resolves to the root.
	Info fs.FileInfo
}

// ResolveInRoot resolves name inside root with root playing the part of
// "/": the name is first cleaned lexically as if rooted at "/" (Docker's
// rule for tar entry and `docker cp` names), then walked one component at
// a time. Symbolic links are followed with absolute targets restarting at
// root and ".." in targets never climbing above it; a link in the last
// component is followed only when followLast. Nothing is created.
//
// Errors: more than 40 links (the kernel's MAXSYMLINKS) gives
// errdefs.ErrInvalidArgument; so do a component that is not a directory
// but is followed by more (also matching syscall.ENOTDIR) and a ".."
// after a missing component (also matching fs.ErrNotExist, as the
// kernel's lookup would fail). Other Lstat and Readlink failures are
// returned wrapped, uncategorised.
//
// Cost: one Lstat per component walked, plus a Readlink per link. The
// result describes the tree at the time of the check only; callers that
// act on it must go through root (an os.Root) so that a later change
// cannot lead outside it.
func ResolveInRoot(root Tree, name string, followLast bool) (Resolved, error) {
	var resolved []string
	var infos []fs.FileInfo // Lstat of each resolved component
	pending := strings.Split(strings.TrimPrefix(path.Clean("/"+name), "/"), "/")
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) > 0 {
				resolved, infos = resolved[:len(resolved)-1], infos[:len(infos)-1]
			}
			continue
		}
		next := strings.Join(append(resolved[:len(resolved):len(resolved)], c), "/")
		fi, err := root.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			rest := []string{next}
			for _, p := range pending {
				switch p {
				case "", ".":
				case "..":
					return Resolved{}, fmt.Errorf("%s: %q: %w before \"..\": %w", name, next, syscall.ENOENT, errdefs.ErrInvalidArgument)
				default:
					rest = append(rest, p)
				}
			}
			return Resolved{Path: strings.Join(rest, "/")}, nil
		}
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve %s: %w", name, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0 && (followLast || len(pending) > 0):
			if hops++; hops > maxSymlinks {
				return Resolved{}, fmt.Errorf("%s: too many levels of symbolic links: %w", name, errdefs.ErrInvalidArgument)
			}
			target, err := root.Readlink(next)
			if err != nil {
				return Resolved{}, fmt.Errorf("resolve %s: %w", name, err)
			}
			if strings.HasPrefix(target, "/") {
				resolved, infos = resolved[:0], infos[:0]
			}
			pending = append(strings.Split(target, "/"), pending...)
		case fi.IsDir() || len(pending) == 0:
			resolved, infos = append(resolved, c), append(infos, fi)
		default:
			return Resolved{}, fmt.Errorf("%s: %q: %w: %w", name, next, syscall.ENOTDIR, errdefs.ErrInvalidArgument)
		}
	}
	r := Resolved{Path: strings.Join(resolved, "/"), Exists: true}
	if len(infos) > 0 {
		r.Info = infos[len(infos)-1]
	}
	return r, nil
}
