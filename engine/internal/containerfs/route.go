package containerfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/containerd/errdefs"
)

// extract applies the tar stream r in directory d, the container path
// dcpath. When mounts lie below dcpath, every entry goes where the
// container would see it: entries inside a mount are applied inside that
// mount (each mount's extraction confined to it, as package archive
// confines the rest to d), and a bind-mounted file is rewritten in place,
// so that the mount keeps showing it. Entries that would replace a mount
// point, and hard links between two trees, give
// errdefs.ErrInvalidArgument; entries in a read-only mount
// errdefs.ErrPermissionDenied; in the tmpfs of a stopped container
// errdefs.ErrFailedPrecondition.
func (v *view) extract(ctx context.Context, dcpath string, d *os.File, r io.Reader) error {
	dname := strings.TrimPrefix(dcpath, "/")
	var nested []*mounted
	for _, m := range append(append([]*mounted(nil), v.mounts...), v.offline...) {
		if dname == "" || strings.HasPrefix(m.rel, dname+"/") {
			nested = append(nested, m)
		}
	}
	if len(nested) == 0 {
		return ExtractTar(ctx, fdPath(d), r, true)
	}
	rt := &router{ctx: ctx, v: v, dir: d, sinks: map[*mounted]*sink{}}
	err := rt.route(dname, nested, tar.NewReader(r))
	if ferr := rt.finish(err); err == nil {
		err = ferr
	}
	return err
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// router splits one tar stream into one extraction per tree.
type router struct {
	ctx   context.Context
	v     *view
	dir   *os.File // the extraction directory outside any nested mount
	sinks map[*mounted]*sink
}

// sink is one running extraction, fed through a pipe.
type sink struct {
	pw   *io.PipeWriter
	tw   *tar.Writer
	dir  *os.File
	own  bool // dir is closed by finish
	done chan error
}

func (rt *router) route(dname string, nested []*mounted, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the tar: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		full := path.Join(dname, strings.TrimPrefix(path.Clean("/"+hdr.Name), "/"))
		m := covering(nested, full)
		var lm *mounted
		linkRest := ""
		if hdr.Typeflag == tar.TypeLink {
			lfull := path.Join(dname, strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/"))
			lm = covering(nested, lfull)
			if lm != nil {
				linkRest = strings.TrimPrefix(strings.TrimPrefix(lfull, lm.rel), "/")
			}
			if lm != m {
				return fmt.Errorf("hard link %s to %s crosses a mount point: %w", hdr.Name, hdr.Linkname, errdefs.ErrInvalidArgument)
			}
		}
		if m == nil {
			if err := rt.write(nil, hdr, tr); err != nil {
				return err
			}
			continue
		}
		if m.Tmpfs && rt.v.c.State.Status != record.StatusRunning {
			_, _, _, err := rt.v.locate(m.rel)
			return err
		}
		if err := rt.v.writable(m); err != nil {
			return err
		}
		if err := rt.v.open(m); err != nil {
			return err
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(full, m.rel), "/")
		switch {
		case m.base != ".":
			if rest != "" || (hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA) {
				return fmt.Errorf("cannot replace %s, a bind-mounted file, with %s: %w", m.Destination, hdr.Name, errdefs.ErrInvalidArgument)
			}
			if err := rewrite(m, hdr, tr); err != nil {
				return err
			}
			continue
		case rest == "" && hdr.Typeflag == tar.TypeDir:
			continue // the mount's own directory stays as it is
		case rest == "":
			return fmt.Errorf("cannot replace mount point %s with %s: %w", m.Destination, hdr.Name, errdefs.ErrInvalidArgument)
		}
		hdr.Name = rest
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = linkRest
		}
		if err := rt.write(m, hdr, tr); err != nil {
			return err
		}
	}
}

// write passes one entry to m's extraction (nil: the directory's own),
// starting it on first use.
func (rt *router) write(m *mounted, hdr *tar.Header, body io.Reader) error {
	s := rt.sinks[m]
	if s == nil {
		s = &sink{dir: rt.dir, done: make(chan error, 1)}
		if m != nil {
			f, err := m.root.Open(".")
			if err != nil {
				return err
			}
			s.dir, s.own = f, true
		}
		var pr *io.PipeReader
		pr, s.pw = io.Pipe()
		s.tw = tar.NewWriter(s.pw)
		go func() {
			err := ExtractTar(rt.ctx, fdPath(s.dir), pr, true)
			if err != nil {
				pr.CloseWithError(err)
			} else {
				io.Copy(io.Discard, pr)
			}
			s.done <- err
		}()
		rt.sinks[m] = s
	}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(s.tw, body)
	return err
}

// finish ends every extraction (aborting them when err is set) and
// returns the first failure.
func (rt *router) finish(err error) error {
	var first error
	for _, s := range rt.sinks {
		if err != nil {
			s.pw.CloseWithError(err)
		} else if cerr := s.tw.Close(); cerr != nil {
			s.pw.CloseWithError(cerr)
		} else {
			s.pw.Close()
		}
		if derr := <-s.done; derr != nil && first == nil {
			first = derr
		}
		if s.own {
			s.dir.Close()
		}
	}
	return first
}

// rewrite replaces the contents of m's bind-mounted file with the
// regular-file entry hdr in place (same inode, so that the mount shows
// it), then sets its mode, owner and mtime from hdr.
func rewrite(m *mounted, hdr *tar.Header, body io.Reader) error {
	f, err := m.root.OpenFile(m.base, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("bind-mounted file %s: %w", m.Destination, err)
	}
	defer f.Close()
	if _, err := io.Copy(f, body); err != nil {
		return fmt.Errorf("bind-mounted file %s: %w", m.Destination, err)
	}
	if err := f.Chown(hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := f.Chmod(os.FileMode(hdr.Mode).Perm()); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return m.root.Chtimes(m.base, time.Time{}, hdr.ModTime)
}
