package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
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
	f, err := os.OpenFile(filepath.Join(dir, id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %.12s: %w", id, err)
	}
	containerLocks.Lock()
	containerLocks.held[id]++
	containerLocks.Unlock()
	return func() { m.releaseLock(id, f) }, nil
}

func (m *Manager) releaseLock(id string, f *os.File) {
	containerLocks.Lock()
	containerLocks.held[id]--
	if containerLocks.held[id] <= 0 {
		delete(containerLocks.held, id)
	}
	containerLocks.Unlock()
	if f != nil {
		f.Close() // drops the flock
	}
}

// removeLock deletes container id's lock file once the container is gone.
// A process still waiting on it then finds no record and gives up.
func (m *Manager) removeLock(id string) {
	os.Remove(filepath.Join(m.RunRoot, "locks", id))
}
