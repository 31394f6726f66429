package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// NewCpCmd is `berth cp`, Docker's copy between a container and the host
// (or a tar stream on stdin/stdout with "-"), running or stopped. Paths
// inside the container are resolved as it sees them, through its binds,
// volumes and /etc files (engine.StatContainerPath): symbolic links
// cannot lead out of its tree.
func NewCpCmd(g *cli.Globals) *cobra.Command {
	var opts engine.CopyOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			srcC, srcPath := splitCpArg(args[0])
			dstC, dstPath := splitCpArg(args[1])
			switch {
			case srcC != "" && dstC != "":
				return fmt.Errorf("copying between containers is not supported: %w", errdefs.ErrInvalidArgument)
			case srcC == "" && dstC == "":
				return fmt.Errorf("must specify at least one container source: %w", errdefs.ErrInvalidArgument)
			case srcPath == "" || dstPath == "":
				return fmt.Errorf("filepath can not be empty: %w", errdefs.ErrInvalidArgument)
			}
			var n int64
			var err error
			if srcC != "" {
				n, err = copyOut(ctx, e, srcC, srcPath, dstPath, opts)
			} else {
				n, err = copyIn(ctx, e, srcPath, dstC, dstPath, opts)
			}
			if !cmd.Flags().Changed("quiet") {
				// Docker prints the progress line only to a terminal.
				quiet = !cli.IsTerminal(os.Stdout)
			}
			if err == nil && !quiet && srcPath != "-" && dstPath != "-" {
				where := dstPath
				if dstC != "" {
					where = dstC + ":" + dstPath
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), where)
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.KeepOwner, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&opts.FollowLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy")
	return cmd
}

// splitCpArg splits "CONTAINER:PATH"; a local path (absolute, or starting
// with ".", or without ":") gives an empty container.
func splitCpArg(arg string) (container, path string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return c, p
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// copyOut copies CONTAINER:src to the host path dst ("-": a tar on
// stdout), with Docker's rules: into an existing directory; as the new
// name dst when it does not exist (its parent must); over an existing
// file only when src is not a directory.
func copyOut(ctx context.Context, e *engine.Engine, ref, src, dst string, opts engine.CopyOptions) (int64, error) {
	if dst == "-" {
		cw := &countingWriter{w: os.Stdout}
		err := e.CopyFromContainer(ctx, ref, src, opts, cw)
		return cw.n, err
	}
	st, err := e.StatContainerPath(ctx, ref, src, opts.FollowLink)
	if err != nil {
		return 0, err
	}
	srcIsDir := st.Mode.IsDir()
	contents := srcIsDir && (strings.HasSuffix(src, "/.") || src == ".")
	dir, o := dst, opts
	if fi, err := os.Stat(dst); err == nil {
		switch {
		case fi.IsDir() && contents:
			o.Rename = "."
		case fi.IsDir():
		case srcIsDir:
			return 0, fmt.Errorf("cannot copy a directory to a file: %s: %w", dst, errdefs.ErrInvalidArgument)
		default:
			dir, o.Rename = filepath.Dir(dst), filepath.Base(dst)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if strings.HasSuffix(dst, "/") && !srcIsDir {
			return 0, fmt.Errorf("destination directory %q does not exist: %w", dst, errdefs.ErrNotFound)
		}
		parent := filepath.Dir(filepath.Clean(dst))
		if pfi, err := os.Stat(parent); err != nil || !pfi.IsDir() {
			return 0, fmt.Errorf("destination directory %q does not exist: %w", parent, errdefs.ErrNotFound)
		}
		if contents {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return 0, err
			}
			o.Rename = "."
		} else {
			dir, o.Rename = parent, filepath.Base(filepath.Clean(dst))
		}
	} else {
		return 0, err
	}
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	go func() { pw.CloseWithError(e.CopyFromContainer(ctx, ref, src, o, cw)) }()
	err = engine.ExtractTar(ctx, dir, pr, opts.KeepOwner)
	pr.CloseWithError(err)
	return cw.n, err
}

// copyIn copies the host path src ("-": a tar on stdin) to
// CONTAINER:dst, with the same rules as copyOut.
func copyIn(ctx context.Context, e *engine.Engine, src, ref, dst string, opts engine.CopyOptions) (int64, error) {
	if src == "-" {
		st, err := e.StatContainerPath(ctx, ref, dst, true)
		if err != nil {
			return 0, err
		}
		if !st.Mode.IsDir() {
			return 0, fmt.Errorf("destination \"%s:%s\" must be a directory: %w", ref, dst, errdefs.ErrInvalidArgument)
		}
		return 0, e.CopyToContainer(ctx, ref, dst, os.Stdin, opts)
	}
	statFn := os.Lstat
	if opts.FollowLink {
		statFn = os.Stat
	}
	sfi, err := statFn(src)
	if err != nil {
		return 0, fmt.Errorf("could not find the file %s: %w", src, errdefs.ErrNotFound)
	}
	contents := sfi.IsDir() && (strings.HasSuffix(src, "/.") || src == ".")
	dir, o := dst, opts
	st, err := e.StatContainerPath(ctx, ref, dst, true)
	switch {
	case err == nil && st.Mode.IsDir():
		if contents {
			o.Rename = "."
		}
	case err == nil && sfi.IsDir():
		return 0, fmt.Errorf("cannot copy a directory to a file: %s:%s: %w", ref, dst, errdefs.ErrInvalidArgument)
	case err == nil:
		dir, o.Rename = parentPath(dst), baseName(dst)
	case errdefs.IsNotFound(err):
		if strings.HasSuffix(dst, "/") && !sfi.IsDir() {
			return 0, err
		}
		// A new name: the source (for "DIR/.", its contents) arrives as dst,
		// as Docker's copy to a path that does not exist.
		dir, o.Rename = parentPath(dst), baseName(dst)
	default:
		return 0, err
	}
	root, err := os.OpenRoot(filepath.Dir(filepath.Clean(src)))
	if err != nil {
		return 0, err
	}
	defer root.Close()
	rel := filepath.Base(filepath.Clean(src))
	if opts.FollowLink {
		// The link itself is resolved on the host, as the user named it.
		if target, err := filepath.EvalSymlinks(src); err == nil {
			root.Close()
			if root, err = os.OpenRoot(filepath.Dir(target)); err != nil {
				return 0, err
			}
			rel = filepath.Base(target)
		}
	}
	if o.Rename == "" {
		o.Rename = filepath.Base(filepath.Clean(src))
	}
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	go func() { pw.CloseWithError(engine.WriteTar(ctx, root, rel, o.Rename, o, cw)) }()
	err = e.CopyToContainer(ctx, ref, dir, pr, opts)
	pr.CloseWithError(err)
	return cw.n, err
}

func parentPath(p string) string {
	p = strings.TrimSuffix(p, "/")
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	} else if i == 0 {
		return "/"
	}
	return "."
}

func baseName(p string) string {
	p = strings.TrimSuffix(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}
