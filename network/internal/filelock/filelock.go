// Package filelock provides the flock-guarded files that berth's network
// state is kept in: an exclusive lock per file and atomic JSON replacement.
package filelock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Lock is a held flock on a lock file.
type Lock struct{ f *os.File }

// Acquire takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx is done (then the error wraps ctx.Err() and
// errdefs.ErrUnavailable). The lock is released by Unlock or when the
// process dies, which is what makes kill -9 safe.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	// Blocking flock on a helper goroutine: the kernel hands the lock to
	// a waiter the moment it is released, where polling left it idle for
	// up to the poll interval (which dominated with ~100 berth processes
	// contending). If ctx ends first, the goroutine releases the lock as
	// soon as it gets it.
	done := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = unix.Flock(int(f.Fd()), unix.LOCK_EX); err != unix.EINTR {
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
		go func() {
			<-done
			f.Close()
		}()
		return nil, fmt.Errorf("waiting for lock %s: %w: %w", path, ctx.Err(), errdefs.ErrUnavailable)
	}
}

// Unlock releases the lock. Calling it twice is harmless.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// ReadJSON decodes the JSON file at path into v. A missing file leaves v
// untouched and returns nil.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// WriteJSON atomically replaces path with v encoded as JSON: it writes a
// temporary file in the same directory, fsyncs it, renames it over path and
// fsyncs the directory, so a crash leaves either the old or the new content.
func WriteJSON(path string, v any) error {
	return writeJSON(path, v, true)
}

// WriteJSONOrdered is WriteJSON without the directory fsync: a kill -9
// still leaves the old or the new content and a power loss never a torn
// file (the content is synced before the rename), but after a power loss
// the old content may come back. It is for state that no container
// outlives a reboot with (addresses and endpoints of running containers),
// where the directory fsync cost each write ~0.5-3 ms.
func WriteJSONOrdered(path string, v any) error {
	return writeJSON(path, v, false)
}

func writeJSON(path string, v any, syncDir bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if !syncDir {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
