package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthproject/berth/engine/internal/containerops"
	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// runningContainer returns ref if it is running, else errdefs.ErrConflict
// "container ID is not running".
func (m *Manager) runningContainer(ctx context.Context, ref string) (record.Container, error) {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return c, err
	}
	if c.State.Status != record.StatusRunning {
		return c, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c, nil
}

// Pause freezes every process of the running container ref (the OCI
// runtime's pause: the cgroup freezer), as `docker pause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not running or
// already paused.
func (m *Manager) Pause(ctx context.Context, ref string) error {
	c, err := m.runningContainer(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Paused {
		return fmt.Errorf("container %s is already paused: %w", c.ID, errdefs.ErrConflict)
	}
	if _, err := containerops.RuntimeCmd(ctx, m.RuntimeOf(c), "pause", c.ID); err != nil {
		return err
	}
	if err := m.setPaused(ctx, c.ID, true); err != nil {
		return err
	}
	m.emit(c, "pause", nil)
	return nil
}

// Unpause thaws a paused container, as `docker unpause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not paused.
func (m *Manager) Unpause(ctx context.Context, ref string) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.DisplayStatus() != record.StatusPaused {
		return fmt.Errorf("container %s is not paused: %w", c.ID, errdefs.ErrConflict)
	}
	if _, err := containerops.RuntimeCmd(ctx, m.RuntimeOf(c), "resume", c.ID); err != nil {
		return err
	}
	if err := m.setPaused(ctx, c.ID, false); err != nil {
		return err
	}
	m.emit(c, "unpause", nil)
	return nil
}

func (m *Manager) setPaused(ctx context.Context, id string, paused bool) error {
	return record.Update(ctx, m.DB, id, func(cur *record.Container) error {
		cur.State.Paused = paused
		return nil
	})
}

// Rename gives container ref the name newName (with or without Docker's
// leading "/"), as `docker rename`; the old name is free at once.
// Errors: errdefs.ErrNotFound; errdefs.ErrInvalidArgument for a malformed
// name or the container's own name; errdefs.ErrConflict when another
// container has it.
func (m *Manager) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if newName == "" {
		return fmt.Errorf("Neither old nor new names may be empty: %w", errdefs.ErrInvalidArgument)
	}
	var c record.Container
	var oldName string
	err := m.DB.Update(ctx, func(tx *state.Tx) error {
		var err error
		c, err = record.Lookup(tx, ref)
		if err != nil {
			return err
		}
		oldName = c.Name
		if !record.ValidName.MatchString(newName) {
			return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", newName, errdefs.ErrInvalidArgument)
		}
		if c.Name == newName {
			return fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
		}
		var owner string
		if tx.Get(record.NamesBucket, newName, &owner) == nil {
			return fmt.Errorf("Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.: %w", newName, owner, errdefs.ErrConflict)
		}
		if err := tx.Delete(record.NamesBucket, c.Name); err != nil {
			return err
		}
		c.Name = newName
		if err := tx.Put(record.NamesBucket, newName, c.ID); err != nil {
			return err
		}
		return tx.Put(record.Bucket, c.ID, c)
	})
	if err != nil {
		return err
	}
	m.emit(c, "rename", map[string]string{"oldName": "/" + oldName})
	return m.Nets.Renamed(ctx, c.ID, newName)
}

// ContainerPruneReport is what PruneContainers removed: full IDs and the bytes
// their writable layers held.
type ContainerPruneReport struct {
	Deleted        []string
	SpaceReclaimed int64
}

// PruneContainers removes every container that is not running (created
// or exited) for which keep (nil: none) returns false, as `docker
// container prune`. Containers that fail to go are skipped; the first
// such error is returned with the report of the others.
func (m *Manager) PruneContainers(ctx context.Context, keep func(record.Container) bool) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	cs, err := m.Containers(ctx, true)
	if err != nil {
		return rep, err
	}
	var firstErr error
	for _, c := range cs {
		if c.State.Status == record.StatusRunning || (keep != nil && keep(c)) {
			continue
		}
		u, _ := m.Snaps.Usage(ctx, c.ID)
		if err := m.Remove(ctx, c.ID, false); err != nil {
			if firstErr == nil && !errdefs.IsNotFound(err) {
				firstErr = err
			}
			continue
		}
		rep.Deleted = append(rep.Deleted, c.ID)
		rep.SpaceReclaimed += u.Size
	}
	return rep, firstErr
}

// RemoveWithVolumes is Remove followed by the removal of the container's
// anonymous volumes that no other container uses, as `docker rm -v`.
// Named volumes stay. Errors as Remove; a volume that cannot be removed
// is left, as Docker leaves it (with a warning in its log).
func (m *Manager) RemoveWithVolumes(ctx context.Context, ref string, force bool) error {
	c, err := m.Container(ctx, ref)
	if err != nil {
		return err
	}
	if err := m.Remove(ctx, c.ID, force); err != nil {
		return err
	}
	if !c.AutoRemove { // else Remove did it
		m.removeVolumes(ctx, c)
	}
	return nil
}

// removeVolumes runs the RemoveVolumes hook for the removed container c.
func (m *Manager) removeVolumes(ctx context.Context, c record.Container) {
	if m.RemoveVolumes != nil {
		m.RemoveVolumes(context.WithoutCancel(ctx), c)
	}
}
