package lifecycle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/berthproject/berth/internal/flock"
)

// containerLocks are the per-container locks this process holds, so that
// taking one again (a failed start removing an AutoRemove container) does
// not wait for itself.
var containerLocks struct {
	sync.Mutex
	held map[string]int
}

// lockContainer takes container id's lock, an flock on RUNROOT/locks/ID
// that start and remove hold while they make or unmake the container's
// files, so that an rm -f racing a start never leaves a half-made bundle,
// mount or snapshot behind. Reentrant within one process. The returned
// func releases it.
func (m *Manager) lockContainer(id string) (func(), error) {
	containerLocks.Lock()
	if containerLocks.held == nil {
		containerLocks.held = map[string]int{}
	}
	if containerLocks.held[id] > 0 {
		containerLocks.held[id]++
		containerLocks.Unlock()
		return func() { m.releaseLock(id, nil) }, nil
	}
	containerLocks.Unlock()
	dir := filepath.Join(m.RunRoot, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := flock.Acquire(context.Background(), filepath.Join(dir, id), true)
	if err != nil {
		return nil, fmt.Errorf("lock container %.12s: %w", id, err)
	}
	containerLocks.Lock()
	containerLocks.held[id]++
	containerLocks.Unlock()
	return func() { m.releaseLock(id, l) }, nil
}

func (m *Manager) releaseLock(id string, l *flock.Lock) {
	containerLocks.Lock()
	containerLocks.held[id]--
	if containerLocks.held[id] <= 0 {
		delete(containerLocks.held, id)
	}
	containerLocks.Unlock()
	l.Unlock() // nil for a reentrant hold
}

// removeLock deletes container id's lock file once the container is gone.
// A process still waiting on it then finds no record and gives up.
func (m *Manager) removeLock(id string) {
	os.Remove(filepath.Join(m.RunRoot, "locks", id))
}
