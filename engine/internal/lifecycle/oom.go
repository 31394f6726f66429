package lifecycle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/runtime"
	"golang.org/x/sys/unix"
)

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupPath is the cgroup prepareBundle asks the runtime to put the
// container in (the spec's Linux.CgroupsPath).
func cgroupPath(id string) string { return "/berth/" + id }

// memoryCgroupDir is the directory of the memory cgroup at path (a
// cgroup path such as "/berth/ID"): under the v1 memory hierarchy where
// one is mounted (cgroup v1 or hybrid), else under the unified one.
func memoryCgroupDir(path string) string {
	if fi, err := os.Stat(filepath.Join(cgroupRoot, "memory")); err == nil && fi.IsDir() {
		return filepath.Join(cgroupRoot, "memory", path)
	}
	return filepath.Join(cgroupRoot, path)
}

// oomKills reads how many processes the OOM killer killed in the memory
// cgroup directory dir: the oom_kill line of memory.oom_control (cgroup
// v1, kernel 4.13 and later) or of memory.events (cgroup v2). An error
// (errors.Is os.ErrNotExist when the cgroup is gone) when neither reads.
func oomKills(dir string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if errors.Is(err, os.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(dir, "memory.events"))
	}
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == "oom_kill" {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no oom_kill count", dir)
}

// oomKilled reports whether the OOM killer killed a process of container
// id during its run; it must be called before the runtime deletes the
// container's cgroup (a cgroup already gone reads as false).
func oomKilled(id string) bool {
	n, err := oomKills(memoryCgroupDir(cgroupPath(id)))
	return err == nil && n > 0
}

// watchOOM records State.OOMKilled for container id if the OOM killer
// kills one of its processes while rp runs. It is for `RUNTIME run` in
// the foreground, which deletes the container's cgroup itself when the
// container exits, before the exit can be recorded. It returns once the
// cgroup is gone or rp's runtime has exited (a watch that cannot be set
// up returns at once). Cgroup v1 has the kernel signal an eventfd on an
// OOM (and on the cgroup's removal, when the cgroup can no longer be
// read); cgroup v2 has inotify report changes of memory.events.
func (m *Manager) watchOOM(ctx context.Context, id string, rp runtime.Process) {
	<-rp.Started()
	if rp.Pid() == 0 {
		return
	}
	dir := memoryCgroupDir(cgroupPath(id))
	fd, v1, err := oomNotifier(dir)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	mark := func() {
		record.Update(context.WithoutCancel(ctx), m.DB, id, func(cur *record.Container) error {
			cur.State.OOMKilled = true
			return nil
		})
	}
	// The pipe's read end wakes the poll when the runtime exits.
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	defer r.Close()
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		select {
		case <-rp.Done():
		case <-quit:
		}
		w.Close()
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(r.Fd()), Events: unix.POLLIN}}
	buf := make([]byte, 4096)
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if fds[1].Revents != 0 {
			// The runtime has exited: a count still readable is final.
			if n, err := oomKills(dir); err == nil && n > 0 {
				mark()
			}
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		unix.Read(fd, buf)
		kills, err := oomKills(dir)
		if err != nil {
			return // the cgroup is gone: the container is over
		}
		// v1 signals before the OOM killer picks its victim: the
		// signal itself, with the cgroup still there, is the OOM.
		if v1 || kills > 0 {
			mark()
			return
		}
	}
}

// oomNotifier returns a descriptor that becomes readable on an OOM in
// the memory cgroup dir: an eventfd registered through
// cgroup.event_control (v1, true), or an inotify watch of memory.events
// (v2, false).
func oomNotifier(dir string) (int, bool, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
		if err != nil {
			return -1, false, err
		}
		if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, "memory.events"), unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
			unix.Close(fd)
			return -1, false, err
		}
		return fd, false, nil
	}
	defer ctl.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, true, err
	}
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		unix.Close(efd)
		return -1, true, err
	}
	return efd, true, nil
}
