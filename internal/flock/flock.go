// Package flock holds flock(2) locks on lock files, the one mechanism by
// which berth processes (there is no daemon) serialise access to shared
// state: the metadata databases, the network state, each container.
//
// A waiter blocks in the kernel (on a helper goroutine, so that the wait
// stays bounded by a context) rather than polling: the kernel hands the
// lock to the next waiter the moment it is released, where polling left
// it idle for up to the poll interval under contention. A lock dies with
// its process, which is what makes kill -9 safe.
package flock

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Lock is a held flock on a lock file.
type Lock struct{ f *os.File }

// Acquire takes a flock on path (created with mode 0600 if missing),
// exclusive or shared, waiting until it is free or ctx is done.
//
// Errors: the *fs.PathError of opening path when the file cannot be
// opened or created (callers on a read-only root may choose to go on
// without it); errdefs.ErrUnavailable wrapping ctx.Err() when ctx ends
// first; the flock error otherwise.
func Acquire(ctx context.Context, path string, exclusive bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if unix.Flock(int(f.Fd()), how|unix.LOCK_NB) == nil {
		return &Lock{f: f}, nil
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = unix.Flock(int(f.Fd()), how); err != unix.EINTR {
				break
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		return &Lock{f: f}, nil
	case <-ctx.Done():
		// The goroutine still gets the lock eventually: drop it then.
		go func() {
			<-done
			f.Close()
		}()
		return nil, fmt.Errorf("waiting for lock %s: %w: %w", path, ctx.Err(), errdefs.ErrUnavailable)
	}
}

// Unlock releases the lock; calling it again, or on nil, does nothing.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}
