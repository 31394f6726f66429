package engine

import (
	"context"
	"strconv"

	"github.com/berthproject/berth/engine/internal/volumes"
	"github.com/berthproject/berth/volume"
	volumetypes "github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Named volumes (Docker's local driver): the store is package volume's,
// under ROOT/volumes; the work is package volumes's.

// Volume is one volume of the store (name, labels, options, creation
// time, Mountpoint: its data directory on the host).
type Volume = volume.Volume

// VolumeMount is the entry of CreateOptions.Run.Mounts that mounts the
// volume name at target ("" name: a new anonymous volume, removed with
// its container by `rm -v` and `run --rm`). A missing volume is created
// by Create (driver local); unless noCopy (Docker's volume-nocopy), an
// empty volume is first filled with the image's content at target.
func VolumeMount(name, target string, readOnly, noCopy bool) specs.Mount {
	return volumes.Mount(name, target, readOnly, noCopy)
}

// VolumeView is v in the shape of Docker's volume object (`docker volume
// inspect`, GET /volumes/{name}).
func VolumeView(v Volume) volumetypes.Volume { return volumes.View(v) }

// volumes is what package volumes needs of the engine.
func (e *Engine) volumes() (*volumes.Manager, error) { return volumes.Open(e.opts.Root, e.db) }

// VolumeStore is the engine's volume store (ROOT/volumes).
func (e *Engine) VolumeStore() (*volume.Store, error) {
	m, err := e.volumes()
	if err != nil {
		return nil, err
	}
	return m.Store, nil
}

// CreateVolume makes the volume name ("" for a random 64-hex-digit name)
// with driver "local" (or ""), as `docker volume create`; an existing
// volume is returned unchanged. A bad name or another driver gives
// errdefs.ErrInvalidArgument.
func (e *Engine) CreateVolume(ctx context.Context, name, driver string, labels, options map[string]string) (Volume, error) {
	m, err := e.volumes()
	if err != nil {
		return Volume{}, err
	}
	v, err := m.Store.Create(name, driver, labels, options)
	if err == nil {
		e.emit("volume", "create", v.Name, map[string]string{"driver": "local"})
	}
	return v, err
}

// InspectVolume returns the volume name; errdefs.ErrNotFound ("get NAME:
// no such volume") if there is none.
func (e *Engine) InspectVolume(ctx context.Context, name string) (Volume, error) {
	m, err := e.volumes()
	if err != nil {
		return Volume{}, err
	}
	return m.Store.Get(name)
}

// ListVolumes returns every volume, sorted by name, and the IDs of the
// containers (any state) that mount each volume in use.
func (e *Engine) ListVolumes(ctx context.Context) ([]Volume, map[string][]string, error) {
	m, err := e.volumes()
	if err != nil {
		return nil, nil, err
	}
	return m.List(ctx)
}

// RemoveVolume deletes the volume name and its data, as `docker volume
// rm`. A volume a container (any state) mounts gives errdefs.ErrConflict
// "remove NAME: volume is in use - [ID]"; an unknown name
// errdefs.ErrNotFound, or nothing with force.
func (e *Engine) RemoveVolume(ctx context.Context, name string, force bool) error {
	m, err := e.volumes()
	if err != nil {
		return err
	}
	if _, err := m.Store.Get(name); err != nil && force {
		return m.Remove(ctx, name, force) // nothing there: no event
	}
	if err := m.Remove(ctx, name, force); err != nil {
		return err
	}
	e.emit("volume", "destroy", name, map[string]string{"driver": "local"})
	return nil
}

// PruneVolumes removes the volumes no container uses, as `docker volume
// prune`: only anonymous ones unless all (-a), and not those for which
// keep (nil: none; e.g. a label filter) returns true. It returns the names
// removed and the bytes they held.
func (e *Engine) PruneVolumes(ctx context.Context, all bool, keep func(Volume) bool) ([]string, uint64, error) {
	m, err := e.volumes()
	if err != nil {
		return nil, 0, err
	}
	names, space, err := m.Prune(ctx, all, keep)
	for _, n := range names {
		e.emit("volume", "destroy", n, map[string]string{"driver": "local"})
	}
	if err == nil {
		e.emit("volume", "prune", "", map[string]string{"reclaimed": strconv.FormatUint(space, 10)})
	}
	return names, space, err
}

// RemoveWithVolumes is Remove followed by the removal of the container's
// anonymous volumes that no other container uses, as `docker rm -v`.
// Named volumes stay. Errors as Remove.
func (e *Engine) RemoveWithVolumes(ctx context.Context, ref string, force bool) error {
	return e.life.RemoveWithVolumes(ctx, ref, force)
}

// removeAnonymousVolumes is the lifecycle's hook for a removed container.
func (e *Engine) removeAnonymousVolumes(ctx context.Context, c Container) {
	if m, err := e.volumes(); err == nil {
		names, _ := m.RemoveAnonymous(ctx, c)
		for _, n := range names {
			e.emit("volume", "destroy", n, map[string]string{"driver": "local"})
		}
	}
}

// resolveVolumes turns opts' volume mounts and the image's VOLUME paths
// into bind mounts of volumes, creating the missing ones.
func (e *Engine) resolveVolumes(opts *CreateOptions, imageVolumes map[string]struct{}) (*volumes.Manager, volumes.Resolved, error) {
	m, err := e.volumes()
	if err != nil {
		return nil, volumes.Resolved{}, err
	}
	r, err := m.Resolve(opts.Run.Mounts, imageVolumes)
	return m, r, err
}

// volumeNameOf names the volume whose data directory source is.
func (e *Engine) volumeNameOf(source string) (string, bool) {
	m, err := e.volumes()
	if err != nil {
		return "", false
	}
	return m.Store.NameOf(source)
}
