package helper

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// confOf is the confinement of engine e's roots.
func confOf(e *engine.Engine) Confinement {
	o := e.Options()
	return Confinement{Root: o.Root, RunRoot: o.RunRoot}
}

// checkBindSources checks the source of every bind mount in mounts
// (type "bind", or no type with an absolute source) with checkHostPath.
func checkBindSources(mounts []specs.Mount, c Confinement) error {
	for _, m := range mounts {
		if m.Type == "bind" || m.Type == "" && m.Source != "" && filepath.IsAbs(m.Source) {
			if err := checkHostPath(m.Source, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHostPath accepts a bind-mount source that is absolute, clean,
// without NUL and at most 4 KiB, and that, both as written and with its
// symbolic links resolved (the part that exists; a missing rest is
// appended), neither contains berth's root or runroot (themselves
// resolved too) nor lies inside one, unless it is a volume's data
// directory (ROOT/volumes/NAME/_data) or below one. A symbolic link that
// dangles is refused: the engine would create the directory it names.
// Refusals are errdefs.ErrInvalidArgument, in Docker's words for an
// invalid mount ("invalid mount config for type \"bind\": …").
func checkHostPath(p string, c Confinement) error {
	if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) || len(p) > 4096 {
		return badBind("bind source path must be absolute and clean: %.120q", p)
	}
	if err := confined(p, p, c); err != nil {
		return err
	}
	real, err := resolveHost(p)
	if err != nil {
		return badBind("bind source path %s cannot be resolved: %v", p, err)
	}
	return confined(p, real, c)
}

func badBind(format string, args ...any) error {
	return bad(`invalid mount config for type "bind": `+format, args...)
}

// confined checks path p (given as shown, for the message) against both
// roots, as written and resolved.
func confined(shown, p string, c Confinement) error {
	for _, root := range []string{c.Root, c.RunRoot} {
		if root == "" {
			continue
		}
		roots := []string{filepath.Clean(root)}
		if r, err := resolveHost(roots[0]); err == nil && r != roots[0] {
			roots = append(roots, r)
		}
		for _, r := range roots {
			if within(p, r) {
				if root == c.Root && volumeData(p, r) {
					continue
				}
				return badBind("bind source path %s is inside berth's state: only volume data directories may be mounted from there", shown)
			}
			if within(r, p) {
				return badBind("bind source path %s contains berth's state directory %s: only volume data directories may be mounted from there", shown, r)
			}
		}
	}
	return nil
}

// volumeData reports whether p is ROOT/volumes/NAME/_data or below it.
func volumeData(p, root string) bool {
	rel, ok := strings.CutPrefix(p, filepath.Join(root, "volumes")+"/")
	if !ok {
		return false
	}
	parts := strings.SplitN(rel, "/", 3)
	return len(parts) >= 2 && volumeName.MatchString(parts[0]) && parts[1] == "_data"
}

// resolveHost is p (absolute, clean) with every symbolic link resolved:
// filepath.EvalSymlinks of its longest existing prefix, the missing rest
// appended. A dangling symbolic link is an error.
func resolveHost(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if _, lerr := os.Lstat(p); lerr == nil {
		return "", errors.New("a symbolic link in it points to nothing")
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p, nil
	}
	rp, err := resolveHost(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(rp, filepath.Base(p)), nil
}
