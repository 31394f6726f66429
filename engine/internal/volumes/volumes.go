// Package volumes is the engine's side of named volumes: it turns the
// volume mounts of a create request (and the image's VOLUME entries) into
// bind mounts of volumes in package volume's store, creating missing ones,
// finds which containers use a volume, removes a container's anonymous
// volumes (`rm -v`, `run --rm`) and prunes. It does not import package
// engine: the engine opens a Manager (Open) on its root and database.
package volumes

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/state"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	volumetypes "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MountType is the specs.Mount type that asks for a volume in a create
// request's mounts: Source is the volume's name ("" for a new anonymous
// volume), Destination the path in the container, Options may hold "ro"
// and "nocopy" (Docker's volume-nocopy). Create replaces such mounts by
// bind mounts of the volumes' data directories before recording them.
const MountType = "volume"

// Option words of a volume mount.
const (
	OptReadOnly = "ro"
	OptNoCopy   = "nocopy"
)

// Mount is the volume mount of name at target (see MountType).
func Mount(name, target string, readOnly, noCopy bool) specs.Mount {
	m := specs.Mount{Type: MountType, Source: name, Destination: target}
	if readOnly {
		m.Options = append(m.Options, OptReadOnly)
	}
	if noCopy {
		m.Options = append(m.Options, OptNoCopy)
	}
	return m
}

// Manager is what the volume operations need of the engine. Every field
// must be set.
type Manager struct {
	Store *volume.Store
	// Containers lists every container record.
	Containers func(ctx context.Context) ([]record.Container, error)
}

// Open returns the Manager of the volume store under root (package
// volume's ROOT/volumes) whose containers are the records in db.
func Open(root string, db *state.DB) (*Manager, error) {
	st, err := volume.Open(root)
	if err != nil {
		return nil, err
	}
	return &Manager{Store: st, Containers: func(ctx context.Context) ([]record.Container, error) {
		var cs []record.Container
		err := db.View(ctx, func(tx *state.Tx) error {
			var err error
			cs, err = record.List(tx)
			return err
		})
		return cs, err
	}}, nil
}

// List returns every volume, sorted by name, and the IDs of the
// containers (any state) that mount each volume in use.
func (m *Manager) List(ctx context.Context) ([]volume.Volume, map[string][]string, error) {
	vs, err := m.Store.List()
	if err != nil {
		return nil, nil, err
	}
	use, err := m.Usage(ctx)
	return vs, use, err
}

// CopyUp is a volume to fill from the image's content at Target (its
// data directory is Dir) once the container's rootfs exists.
type CopyUp struct {
	Target, Dir string
}

// Resolved is the outcome of Resolve: the mounts to record, the volumes
// it created (for Undo) and the copies to make.
type Resolved struct {
	Mounts  []specs.Mount
	Created []string
	Copies  []CopyUp
}

// Resolve replaces the volume mounts in mounts by bind mounts of their
// volumes, creating the missing ones (driver local; anonymous ones get a
// random name and AnonymousLabel), and adds an anonymous volume for each
// of the image's VOLUME paths that no mount covers, as Docker does. Every
// name and destination is checked before anything is created: a bad name
// or a relative destination gives errdefs.ErrInvalidArgument, two mounts
// on one destination "Duplicate mount point" (ErrInvalidArgument).
func (m *Manager) Resolve(mounts []specs.Mount, imageVolumes map[string]struct{}) (Resolved, error) {
	var r Resolved
	dests := map[string]bool{}
	for _, mt := range mounts {
		dst := path.Clean(mt.Destination)
		if mt.Type == MountType {
			if !path.IsAbs(mt.Destination) {
				return r, fmt.Errorf("invalid mount config for type \"volume\": invalid mount path: '%s' mount path must be absolute: %w", mt.Destination, errdefs.ErrInvalidArgument)
			}
			if mt.Source != "" && !volume.IsVolumeName(mt.Source) {
				return r, fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path: %w", mt.Source, mt.Source, errdefs.ErrInvalidArgument)
			}
		}
		if dests[dst] {
			return r, fmt.Errorf("Duplicate mount point: %s: %w", dst, errdefs.ErrInvalidArgument)
		}
		dests[dst] = true
	}
	var extra []specs.Mount
	for _, p := range slices.Sorted(mapKeys(imageVolumes)) {
		if path.IsAbs(p) && !dests[path.Clean(p)] {
			extra = append(extra, Mount("", path.Clean(p), false, false))
		}
	}
	for _, mt := range append(slices.Clone(mounts), extra...) {
		if mt.Type != MountType {
			r.Mounts = append(r.Mounts, mt)
			continue
		}
		var labels map[string]string
		if mt.Source == "" {
			labels = map[string]string{volume.AnonymousLabel: ""}
		}
		existed := false
		if mt.Source != "" {
			_, err := m.Store.Get(mt.Source)
			existed = err == nil
		}
		v, err := m.Store.Create(mt.Source, "local", labels, nil)
		if err != nil {
			m.Undo(r)
			return Resolved{}, err
		}
		if !existed {
			r.Created = append(r.Created, v.Name)
		}
		ro := slices.Contains(mt.Options, OptReadOnly)
		if !slices.Contains(mt.Options, OptNoCopy) {
			r.Copies = append(r.Copies, CopyUp{Target: path.Clean(mt.Destination), Dir: v.Mountpoint})
		}
		r.Mounts = append(r.Mounts, bind(v.Mountpoint, path.Clean(mt.Destination), ro))
	}
	return r, nil
}

func mapKeys(m map[string]struct{}) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// bind is the bind mount of a volume's data directory.
func bind(src, dst string, ro bool) specs.Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", mode, "rprivate"}}
}

// Undo removes the volumes Resolve created (a create that failed later).
func (m *Manager) Undo(r Resolved) {
	for _, n := range r.Created {
		m.Store.Remove(n, false)
	}
}

// Mounted lists the volumes container c mounts, by name, in mount order.
func (m *Manager) Mounted(c record.Container) []string {
	var out []string
	for _, mt := range c.Run.Mounts {
		if n, ok := m.Store.NameOf(mt.Source); ok && mt.Type == "bind" {
			out = append(out, n)
		}
	}
	return out
}

// Usage maps each volume in use to the IDs of the containers that mount
// it (any state), oldest container first.
func (m *Manager) Usage(ctx context.Context) (map[string][]string, error) {
	cs, err := m.Containers(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(cs, func(a, b record.Container) int { return a.Created.Compare(b.Created) })
	out := map[string][]string{}
	for _, c := range cs {
		for _, n := range m.Mounted(c) {
			if !slices.Contains(out[n], c.ID) {
				out[n] = append(out[n], c.ID)
			}
		}
	}
	return out, nil
}

// Remove deletes the volume name unless a container uses it:
// errdefs.ErrConflict "remove NAME: volume is in use - [ID, ...]", as
// Docker. An unknown name gives errdefs.ErrNotFound (nil with force, as
// `docker volume rm -f`).
func (m *Manager) Remove(ctx context.Context, name string, force bool) error {
	use, err := m.Usage(ctx)
	if err != nil {
		return err
	}
	if users := use[name]; len(users) > 0 {
		if _, gerr := m.Store.Get(name); gerr == nil {
			return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(users, ", "), errdefs.ErrConflict)
		}
	}
	err = m.Store.Remove(name, false)
	if force && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// RemoveAnonymous removes the anonymous volumes of the removed container
// c that no other container uses (Docker's `rm -v` and `run --rm`); named
// volumes stay. It returns the names removed.
func (m *Manager) RemoveAnonymous(ctx context.Context, c record.Container) ([]string, error) {
	names := m.Mounted(c)
	if len(names) == 0 {
		return nil, nil
	}
	use, err := m.Usage(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	for _, n := range names {
		v, err := m.Store.Get(n)
		if err != nil || !v.Anonymous() || slices.ContainsFunc(use[n], func(id string) bool { return id != c.ID }) {
			continue
		}
		if err := m.Store.Remove(n, false); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		out = append(out, n)
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// Prune removes the volumes no container uses for which keep (nil: none)
// returns false: only anonymous ones unless all, as Docker ≥ 23's
// `volume prune` (-a). It returns the names removed and the bytes their
// files held.
func (m *Manager) Prune(ctx context.Context, all bool, keep func(volume.Volume) bool) ([]string, uint64, error) {
	use, err := m.Usage(ctx)
	if err != nil {
		return nil, 0, err
	}
	return m.Store.Prune(func(v volume.Volume) bool {
		return len(use[v.Name]) > 0 || !all && !v.Anonymous() || keep != nil && keep(v)
	})
}

// View is v in the shape of Docker's volume object (GET
// /volumes/{name}, `docker volume inspect`): Labels and Options {} when
// empty (what a volume made by `docker volume create` shows), CreatedAt
// in RFC 3339, Scope "local".
func View(v volume.Volume) volumetypes.Volume {
	out := volumetypes.Volume{
		Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Scope: "local",
		Labels: v.Labels, Options: v.Options,
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if !v.CreatedAt.IsZero() {
		out.CreatedAt = v.CreatedAt.Local().Format(time.RFC3339)
	}
	return out
}
