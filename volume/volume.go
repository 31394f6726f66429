// Package volume is Berth's named-volume store, Docker's "local" driver:
// each volume is a directory ROOT/volumes/NAME/_data that containers bind
// mount, and the volumes' metadata (labels, options, creation time) is one
// JSON file, ROOT/volumes/metadata.json, read and written under an flock of
// ROOT/volumes/.lock so that any number of berth processes share it.
//
// Crash ordering: Create makes the directory before recording the volume
// (a crash leaves an unrecorded directory that a later Create of the same
// name adopts); Remove forgets the volume before deleting its directory
// (a crash leaves an orphan directory that nothing lists).
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Volume is one named volume.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"` // always "local"
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	// Mountpoint is the host directory containers see (…/NAME/_data);
	// filled in on read, not stored.
	Mountpoint string `json:"-"`
}

// Store is the volume store under one root.
type Store struct {
	dir string
}

// validName is Docker's volume name rule.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Open returns the store at root/volumes, creating the directory.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "volumes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("volume store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// IsVolumeName reports whether s can name a volume (as opposed to a host
// path in `-v SRC:DST`).
func IsVolumeName(s string) bool { return validName.MatchString(s) }

// DataDir is the directory the volume name's data lives in.
func (s *Store) DataDir(name string) string { return filepath.Join(s.dir, name, "_data") }

// AnonymousLabel marks a volume the engine created without a name (a
// `-v /path` or an image's VOLUME), as Docker ≥ 23 does: such volumes go
// with their container on `rm -v` and `run --rm`, and `volume prune`
// without --all removes only them.
const AnonymousLabel = "com.docker.volume.anonymous"

// NameOf returns the volume whose data directory is source (a bind
// mount's source), and false when source is not a volume of this store.
func (s *Store) NameOf(source string) (string, bool) {
	name, ok := strings.CutPrefix(filepath.Clean(source), s.dir+string(filepath.Separator))
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, string(filepath.Separator)+"_data")
	return name, ok && validName.MatchString(name)
}

// IsAnonymousName reports whether name has the shape of a generated
// name (64 hex digits), as Create gives a volume created without one.
func IsAnonymousName(name string) bool { return anonName.MatchString(name) }

var anonName = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Anonymous reports whether v was created without a name (AnonymousLabel).
func (v Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// locked runs fn with the metadata under the store's flock; fn's changes
// are written back when it returns true.
func (s *Store) locked(fn func(meta map[string]Volume) (bool, error)) error {
	lf, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	path := filepath.Join(s.dir, "metadata.json")
	meta := map[string]Volume{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &meta); err != nil {
			return fmt.Errorf("volume metadata %s: %v: %w", path, err, errdefs.ErrDataLoss)
		}
	}
	changed, err := fn(meta)
	if err != nil || !changed {
		return err
	}
	if data, err = json.Marshal(meta); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *Store) fill(v Volume) Volume {
	v.Mountpoint = s.DataDir(v.Name)
	return v
}

// Create makes the volume name ("" for a random 64-hex-digit name) with
// driver "local" (or "") and returns it. Creating a volume that exists
// returns it unchanged, as Docker does. A bad name or another driver gives
// errdefs.ErrInvalidArgument.
func (s *Store) Create(name, driver string, labels, options map[string]string) (Volume, error) {
	if driver != "" && driver != "local" {
		return Volume{}, fmt.Errorf("volume driver %q is not supported (only local): %w", driver, errdefs.ErrInvalidArgument)
	}
	if name == "" {
		b := make([]byte, 32)
		rand.Read(b)
		name = hex.EncodeToString(b)
	}
	if !validName.MatchString(name) {
		return Volume{}, fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed: %w", name, errdefs.ErrInvalidArgument)
	}
	var out Volume
	err := s.locked(func(meta map[string]Volume) (bool, error) {
		if v, ok := meta[name]; ok {
			out = v
			return false, nil
		}
		if err := os.MkdirAll(s.DataDir(name), 0o755); err != nil {
			return false, err
		}
		out = Volume{Name: name, Driver: "local", Labels: labels, Options: options, CreatedAt: time.Now().UTC().Truncate(time.Second)}
		meta[name] = out
		return true, nil
	})
	return s.fill(out), err
}

// Get returns the volume name; errdefs.ErrNotFound if there is none.
func (s *Store) Get(name string) (Volume, error) {
	var out Volume
	err := s.locked(func(meta map[string]Volume) (bool, error) {
		v, ok := meta[name]
		if !ok {
			return false, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
		}
		out = v
		return false, nil
	})
	return s.fill(out), err
}

// List returns every volume, sorted by name.
func (s *Store) List() ([]Volume, error) {
	var out []Volume
	err := s.locked(func(meta map[string]Volume) (bool, error) {
		for _, v := range meta {
			out = append(out, s.fill(v))
		}
		return false, nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Remove deletes the volume and its data. inUse reports whether a
// container uses it: then errdefs.ErrConflict. An unknown name gives
// errdefs.ErrNotFound.
func (s *Store) Remove(name string, inUse bool) error {
	err := s.locked(func(meta map[string]Volume) (bool, error) {
		if _, ok := meta[name]; !ok {
			return false, fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
		}
		if inUse {
			return false, fmt.Errorf("remove %s: volume is in use: %w", name, errdefs.ErrConflict)
		}
		delete(meta, name)
		return true, nil
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(s.dir, name))
}

// Size is the bytes the volume's files take (apparent sizes).
func (s *Store) Size(name string) int64 {
	var n int64
	filepath.WalkDir(s.DataDir(name), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Prune removes every volume for which keep returns false and returns the
// names removed and the bytes reclaimed.
func (s *Store) Prune(keep func(Volume) bool) ([]string, uint64, error) {
	vols, err := s.List()
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var space uint64
	for _, v := range vols {
		if keep(v) {
			continue
		}
		size := s.Size(v.Name)
		if err := s.Remove(v.Name, false); err != nil && !errdefs.IsNotFound(err) {
			return names, space, err
		}
		names = append(names, v.Name)
		space += uint64(size)
	}
	return names, space, nil
}
