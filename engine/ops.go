package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
)

// DisplayStatus is Docker's State.Status word for c: "paused" for a
// running container that is paused, else the record's status.
func (c Container) DisplayStatus() string {
	if c.State.Status == StatusRunning && c.State.Paused {
		return StatusPaused
	}
	return c.State.Status
}

// ociRuntime returns the OCI runtime CLI for verbs the Runtime contract
// does not cover (exec, pause, resume, ps).
func (e *Engine) ociRuntime() (*ociruntime.Runtime, error) {
	rt, ok := e.runtime.(*ociruntime.Runtime)
	if !ok {
		return nil, fmt.Errorf("this operation needs an OCI runtime binary: %w", errdefs.ErrNotImplemented)
	}
	return rt, nil
}

// runtimeCmd runs `RUNTIME --root ROOT args...` and returns its stdout.
func (e *Engine) runtimeCmd(ctx context.Context, args ...string) ([]byte, error) {
	rt, err := e.ociRuntime()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, rt.Binary, append([]string{"--root", rt.Root}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("runtime %s: %s", args[0], msg)
	}
	return out, nil
}

// runningContainer returns ref if it is running, else errdefs.ErrConflict
// "container ID is not running".
func (e *Engine) runningContainer(ctx context.Context, ref string) (Container, error) {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return c, err
	}
	if c.State.Status != StatusRunning {
		return c, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c, nil
}

// Pause freezes every process of the running container ref (the OCI
// runtime's pause: the cgroup freezer), as `docker pause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not running or
// already paused.
func (e *Engine) Pause(ctx context.Context, ref string) error {
	c, err := e.runningContainer(ctx, ref)
	if err != nil {
		return err
	}
	if c.State.Paused {
		return fmt.Errorf("container %s is already paused: %w", c.ID, errdefs.ErrConflict)
	}
	if _, err := e.runtimeCmd(ctx, "pause", c.ID); err != nil {
		return err
	}
	return e.setPaused(ctx, c.ID, true)
}

// Unpause thaws a paused container, as `docker unpause`. Errors:
// errdefs.ErrNotFound, errdefs.ErrConflict when it is not paused.
func (e *Engine) Unpause(ctx context.Context, ref string) error {
	c, err := e.Container(ctx, ref)
	if err != nil {
		return err
	}
	if c.DisplayStatus() != StatusPaused {
		return fmt.Errorf("container %s is not paused: %w", c.ID, errdefs.ErrConflict)
	}
	if _, err := e.runtimeCmd(ctx, "resume", c.ID); err != nil {
		return err
	}
	return e.setPaused(ctx, c.ID, false)
}

func (e *Engine) setPaused(ctx context.Context, id string, paused bool) error {
	return e.db.Update(ctx, func(tx *state.Tx) error {
		var cur Container
		if err := tx.Get(containersBucket, id, &cur); err != nil {
			return err
		}
		cur.State.Paused = paused
		return tx.Put(containersBucket, id, cur)
	})
}

// Rename gives container ref the name newName (with or without Docker's
// leading "/"), as `docker rename`; the old name is free at once.
// Errors: errdefs.ErrNotFound; errdefs.ErrInvalidArgument for a malformed
// name or the container's own name; errdefs.ErrConflict when another
// container has it.
func (e *Engine) Rename(ctx context.Context, ref, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if newName == "" {
		return fmt.Errorf("Neither old nor new names may be empty: %w", errdefs.ErrInvalidArgument)
	}
	return e.db.Update(ctx, func(tx *state.Tx) error {
		c, err := lookupContainer(tx, ref)
		if err != nil {
			return err
		}
		if !validName.MatchString(newName) {
			return fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", newName, errdefs.ErrInvalidArgument)
		}
		if c.Name == newName {
			return fmt.Errorf("Renaming a container with the same name as its current name: %w", errdefs.ErrInvalidArgument)
		}
		var owner string
		if tx.Get(namesBucket, newName, &owner) == nil {
			return fmt.Errorf("Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", newName, owner, errdefs.ErrConflict)
		}
		if err := tx.Delete(namesBucket, c.Name); err != nil {
			return err
		}
		c.Name = newName
		if err := tx.Put(namesBucket, newName, c.ID); err != nil {
			return err
		}
		return tx.Put(containersBucket, c.ID, c)
	})
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
func (e *Engine) PruneContainers(ctx context.Context, keep func(Container) bool) (ContainerPruneReport, error) {
	var rep ContainerPruneReport
	cs, err := e.Containers(ctx, true)
	if err != nil {
		return rep, err
	}
	var firstErr error
	for _, c := range cs {
		if c.State.Status == StatusRunning || (keep != nil && keep(c)) {
			continue
		}
		u, _ := e.snaps.Usage(ctx, c.ID)
		if err := e.Remove(ctx, c.ID, false); err != nil {
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

// containerPids lists the host pids of every process in the container
// (the OCI runtime's `ps`).
func (e *Engine) containerPids(ctx context.Context, id string) ([]int, error) {
	out, err := e.runtimeCmd(ctx, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("runtime ps: %w", err)
	}
	return pids, nil
}

// TopResult is `docker top` output: ps's column titles and one row per
// container process.
type TopResult struct {
	Titles    []string
	Processes [][]string
}

// Top runs ps on the host with psArgs (default "-ef") and keeps the rows
// of the running container's processes, as `docker top`. Errors:
// errdefs.ErrNotFound; errdefs.ErrConflict when not running;
// errdefs.ErrInvalidArgument when ps fails on psArgs or prints no PID
// column.
func (e *Engine) Top(ctx context.Context, ref string, psArgs []string) (TopResult, error) {
	var res TopResult
	c, err := e.runningContainer(ctx, ref)
	if err != nil {
		return res, err
	}
	pids, err := e.containerPids(ctx, c.ID)
	if err != nil {
		return res, err
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.CommandContext(ctx, "ps", psArgs...).CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("Error running ps: %s: %w", strings.TrimSpace(string(out)), errdefs.ErrInvalidArgument)
	}
	return parsePs(out, pids)
}

// parsePs keeps the rows of ps output whose PID column is in pids; the
// last column (the command) keeps its spaces.
func parsePs(out []byte, pids []int) (TopResult, error) {
	var res TopResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		return res, fmt.Errorf("ps printed nothing: %w", errdefs.ErrInvalidArgument)
	}
	res.Titles = strings.Fields(sc.Text())
	pidCol := slices.Index(res.Titles, "PID")
	if pidCol < 0 {
		return res, fmt.Errorf("Couldn't find PID field in ps output: %w", errdefs.ErrInvalidArgument)
	}
	res.Processes = [][]string{}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		n := len(res.Titles)
		if len(f) > n {
			f = append(f[:n-1], strings.Join(f[n-1:], " "))
		}
		res.Processes = append(res.Processes, f)
	}
	return res, sc.Err()
}

// readProcFile is os.ReadFile for small kernel files, trimmed.
func readProcFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
