// Package engine is Berth's embeddable container engine: Open an Engine on a
// root directory and use it to pull images and run containers in-process,
// with no daemon. The berth CLI and the API service are thin layers over it.
//
// Every Engine method is safe to call from several goroutines and from
// several processes sharing one root at once: shared state lives on disk in
// package state (bbolt, file-locked), the content store and the snapshotter.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthproject/berth/engine/internal/containerfs"
	"github.com/berthproject/berth/engine/internal/imageops"
	"github.com/berthproject/berth/engine/internal/lifecycle"
	"github.com/berthproject/berth/engine/internal/netops"
	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/berthproject/berth/snapshot"
	"github.com/berthproject/berth/snapshot/overlay"
	"github.com/berthproject/berth/snapshot/vfs"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// Options configures an Engine. Zero values take Berth's defaults.
type Options struct {
	// Root holds persistent state: images, snapshots, container records.
	// Default /var/lib/berth (DESIGN.md, "Where state lives").
	Root string
	// RunRoot holds runtime state that does not survive a reboot: bundles,
	// the OCI runtime's state, mount points. Default /run/berth.
	RunRoot string
	// Runtime is the OCI runtime binary, a name in $PATH or a path.
	// Default: DefaultRuntime() (crun when installed, else runc).
	Runtime string
	// Snapshotter is "overlay" (default) or "vfs".
	Snapshotter string
	// Monitor is the container monitor binary, a name in $PATH or a path:
	// berth-monitor or conmon (monitor.New). Default: berth-monitor next to
	// the running executable or in $PATH, else conmon. Only detached and
	// terminal containers need it.
	Monitor string
	// CleanupBinary is a berth binary the monitor runs when a detached
	// container exits (`berth container-cleanup ID`), so that --rm and
	// restart policies apply at once. Default: this program, if it is
	// named berth; else none, and exits are recorded when next read.
	CleanupBinary string
	// Network configures the bridge networks (default bridge name and
	// subnet, firewall chain prefix); zero values take network's defaults.
	Network network.Options
	// InsecureRegistries lists registries ("host:port") reached over plain
	// HTTP or unverified TLS, like dockerd's insecure-registries.
	InsecureRegistries []string
}

// Default locations for a root engine.
const (
	DefaultRoot    = "/var/lib/berth"
	DefaultRunRoot = "/run/berth"
)

// Engine is an open engine. Close it when done.
type Engine struct {
	opts    Options
	db      *state.DB
	content *content.Store
	snaps   snapshot.Snapshotter
	runtime runtime.Runtime

	netOnce sync.Once
	net     *network.Manager
	netErr  error
	nets    *netops.Networking
	images  *imageops.Images
	fs      *containerfs.FS
	life    *lifecycle.Manager
}

// Open prepares the directories under opts.Root and opts.RunRoot and opens
// the stores. It fails with errdefs.ErrNotFound when the OCI runtime binary
// is missing and errdefs.ErrNotImplemented when the snapshotter cannot work
// on this kernel.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	defer trace("open")()
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.RunRoot == "" {
		opts.RunRoot = DefaultRunRoot
	}
	if opts.Runtime == "" {
		opts.Runtime = DefaultRuntime()
	}
	if opts.Snapshotter == "" {
		opts.Snapshotter = "overlay"
	}
	if opts.CleanupBinary == "" {
		if exe, err := os.Executable(); err == nil && filepath.Base(exe) == "berth" {
			opts.CleanupBinary = exe
		}
	}
	var err error
	for _, p := range []*string{&opts.Root, &opts.RunRoot} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(*p, 0o711); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	defaultNetworkFor(&opts)
	e := &Engine{opts: opts}
	if e.db, err = state.Open(filepath.Join(opts.Root, "berth.db")); err != nil {
		return nil, err
	}
	if e.content, err = content.New(filepath.Join(opts.Root, "content")); err != nil {
		return nil, err
	}
	snapRoot := filepath.Join(opts.Root, "snapshots", opts.Snapshotter)
	switch opts.Snapshotter {
	case "overlay":
		e.snaps, err = overlay.New(snapRoot)
	case "vfs":
		e.snaps, err = vfs.New(snapRoot)
	default:
		err = fmt.Errorf("unknown snapshotter %q (want overlay or vfs): %w", opts.Snapshotter, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	rt, err := ociruntime.Open(opts.Runtime, opts.RunRoot)
	if err != nil {
		e.snaps.Close()
		return nil, err
	}
	e.runtime = rt
	e.nets = e.networking()
	e.images = e.imageOps()
	e.fs = e.containerFS()
	e.life = e.lifecycleManager()
	e.life.RemoveVolumes = e.removeAnonymousVolumes
	return e, nil
}

// DefaultRuntime is the OCI runtime an engine uses when Options.Runtime is
// empty: "crun" when it is installed (a C runtime: it creates a container
// in about half the time runc, a Go program, takes, and with a tenth of
// its memory), else "runc", Docker's default.
func DefaultRuntime() string {
	if _, err := exec.LookPath("crun"); err == nil {
		return "crun"
	}
	return "runc"
}

// runtimePath is what a new container's record names as its OCI runtime:
// the runtime binary's absolute path, or the configured name for a
// runtime that is not an OCI runtime CLI.
func (e *Engine) runtimePath() string {
	if oci, ok := e.runtime.(*ociruntime.Runtime); ok {
		return oci.Binary
	}
	return e.opts.Runtime
}

// APIRuntimes are the OCI runtime names an API client may ask for
// (HostConfig.Runtime): names looked up in $PATH by the engine, never
// paths, since the engine runs them as root.
var APIRuntimes = []string{"runc", "crun"}

// runtimeFor resolves a create's runtime choice to what the record keeps
// (runtimePath): "" or the engine's own name gives the engine's; another
// name must be an OCI runtime binary found in $PATH (or a path), else
// errdefs.ErrInvalidArgument with Docker's words.
func (e *Engine) runtimeFor(name string) (string, error) {
	if name == "" {
		return e.runtimePath(), nil
	}
	rt, err := e.life.OpenRuntime(name)
	if err != nil {
		return "", fmt.Errorf("unknown or invalid runtime name: %s: %w", name, errdefs.ErrInvalidArgument)
	}
	if oci, ok := rt.(*ociruntime.Runtime); ok {
		return oci.Binary, nil
	}
	return name, nil
}

// InitBinary is the static init `run --init` mounts as
// /sbin/docker-init (Docker's `info` InitBinary): the path of Debian's
// tini-static, or of docker-init where Docker's packages installed one,
// found in $PATH; "" if neither is. It is the search container start
// does.
func InitBinary() string { return lifecycle.InitBinary() }

// runtimeName is the runtime as inspect shows it (Docker's
// HostConfig.Runtime): the binary's base name, "runc" for a record that
// names none.
func runtimeName(recorded string) string {
	if recorded == "" {
		return "runc"
	}
	return filepath.Base(recorded)
}

// Close releases the engine's resources; running containers are not
// affected. It is idempotent.
func (e *Engine) Close() error {
	if e.snaps != nil {
		return e.snaps.Close()
	}
	return nil
}

// Options returns the options the engine was opened with, defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// defaultNetworkFor gives an engine whose root is not the default one a
// default network of its own, so that --root alone separates engines
// sharing a machine: bridge "berth" + 6 hex digits of the root's hash,
// the same digits in its firewall chain prefix, and a free /24 picked from
// the address pool. The default root keeps berth0, 10.77.0.0/16, BERTH.
// Values set explicitly are kept.
func defaultNetworkFor(opts *Options) {
	if opts.Root == DefaultRoot {
		return
	}
	sum := sha256.Sum256([]byte(opts.Root))
	tag := hex.EncodeToString(sum[:3])
	if opts.Network.DefaultBridge == "" {
		opts.Network.DefaultBridge = "berth" + tag
	}
	if opts.Network.ChainPrefix == "" {
		opts.Network.ChainPrefix = "BERTH" + strings.ToUpper(tag)
	}
	if !opts.Network.DefaultSubnet.IsValid() {
		opts.Network.AutoDefaultSubnet = true
	}
}
