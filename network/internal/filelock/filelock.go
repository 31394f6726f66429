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

	"github.com/berthproject/berth/internal/flock"
)

// Lock is a held flock on a lock file (internal/flock).
type Lock = flock.Lock

// Acquire takes an exclusive flock on path (created if missing), waiting
// until it is free or ctx is done (then the error wraps ctx.Err() and
// errdefs.ErrUnavailable). The lock is released by Unlock or when the
// process dies, which is what makes kill -9 safe.
func Acquire(ctx context.Context, path string) (*Lock, error) {
	return flock.Acquire(ctx, path, true)
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

// WriteJSONUnsynced atomically replaces path with v encoded as JSON
// without any fsync: other processes, and a process started after a
// kill -9, see the old or the new content, never a torn one (rename is
// atomic); after a power loss or kernel crash the file may hold the old
// content, the new one, or be empty or torn, so it is only for state
// that is meaningless after a reboot and whose reader treats an
// unreadable file as empty (see package ipam). It saves the ~0.5-3 ms
// an fsync costs.
func WriteJSONUnsynced(path string, v any) error {
	return write(path, v, false, false)
}

func writeJSON(path string, v any, syncDir bool) error {
	return write(path, v, true, syncDir)
}

func write(path string, v any, syncFile, syncDir bool) error {
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
	if syncFile {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
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
