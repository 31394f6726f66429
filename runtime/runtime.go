// Package runtime turns an image config and a user's run options into an
// OCI runtime-spec config (spec.go), and defines the Runtime contract the
// engine uses to run such a bundle. The default Runtime is any OCI runtime
// CLI (runc, crun …), in package runtime/ociruntime.
package runtime

import (
	"context"
	"os"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Stdio holds the files a container's process gets as fds 0, 1 and 2. Nil
// means /dev/null.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// Runtime runs OCI bundles. IDs are the engine's container IDs.
type Runtime interface {
	// Run creates and starts container id from the bundle directory
	// (config.json plus the rootfs it names) and supervises it from the
	// caller: it returns at once, and the Process tells when the container
	// runs and how it ended. The runtime's state is gone once it ended.
	Run(ctx context.Context, id, bundle string, stdio Stdio) (Process, error)
	// Start starts a container that was created (by a monitor) and waits
	// in the "created" state. errdefs.ErrNotFound for an unknown id.
	Start(ctx context.Context, id string) error
	// Kill sends sig to the container's process (all of its processes when
	// all is true). An unknown or stopped container gives errdefs.ErrNotFound.
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// Delete removes the runtime's state of a stopped container (force: of a
	// running one, killing it). Deleting an unknown id is not an error.
	Delete(ctx context.Context, id string, force bool) error
	// State reports the runtime's view of the container; unknown ids give
	// errdefs.ErrNotFound.
	State(ctx context.Context, id string) (State, error)
}

// SpecAdjuster is implemented by a Runtime that changes a container's
// config.json before it is written (ociruntime: crun's compiled seccomp
// filter). AdjustSpec must not change what the container may do.
type SpecAdjuster interface {
	AdjustSpec(id string, s *specs.Spec)
}

// Process is a container run by Runtime.Run.
type Process interface {
	// Started is closed once the container's process runs, or once the
	// runtime has failed before that.
	Started() <-chan struct{}
	// Pid is the container process's pid in the caller's pid namespace;
	// 0 until Started is closed, and if the start failed.
	Pid() int
	// Done is closed once the runtime has exited: the container is over
	// (Wait then returns at once).
	Done() <-chan struct{}
	// Signal sends sig to the container's process.
	Signal(sig syscall.Signal) error
	// Wait waits for the end and returns the exit status (128+N for a
	// death by signal N). A failed start gives ErrCommandNotFound,
	// ErrCommandNotExecutable or the runtime's own message.
	Wait() (int, error)
}

// State is the OCI runtime state of a container (runtime-spec "state").
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"` // creating, created, running, paused, stopped
	Pid    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// ErrCommandNotFound means the container's executable does not exist in its
// rootfs or $PATH; Docker exits 127 for it.
var ErrCommandNotFound error = &categoryError{errdefs.ErrNotFound}

// ErrCommandNotExecutable means the executable exists but cannot be run
// (permission denied, a directory …); Docker exits 126 for it.
var ErrCommandNotExecutable error = &categoryError{errdefs.ErrPermissionDenied}

// categoryError is a distinct sentinel whose text and category are those
// of an errdefs error, so that messages do not repeat themselves.
type categoryError struct{ category error }

func (e *categoryError) Error() string { return e.category.Error() }
func (e *categoryError) Unwrap() error { return e.category }

// Unavailable is the Runtime of a container whose OCI runtime cannot be
// used (its binary is gone): every call fails with Err, which wraps
// errdefs.ErrFailedPrecondition. Callers must not take its failures for
// a stopped or unknown container (see IsUnavailable).
type Unavailable struct{ Err error }

func (u Unavailable) Run(context.Context, string, string, Stdio) (Process, error) {
	return nil, u.Err
}
func (u Unavailable) Start(context.Context, string) error                      { return u.Err }
func (u Unavailable) Kill(context.Context, string, syscall.Signal, bool) error { return u.Err }
func (u Unavailable) Delete(context.Context, string, bool) error               { return u.Err }
func (u Unavailable) State(context.Context, string) (State, error)             { return State{}, u.Err }

// IsUnavailable reports whether rt is an Unavailable runtime.
func IsUnavailable(rt Runtime) bool {
	_, ok := rt.(Unavailable)
	return ok
}
