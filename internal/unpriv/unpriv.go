// Package unpriv starts a child process with no privileges: another uid
// and gid, no supplementary groups, every capability set empty (the
// bounding and inheritable sets included) and no_new_privs. Berth's
// registry fetcher and the API service's HTTP server run this way.
package unpriv

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Start starts cmd as uid:gid with no privileges and returns a channel
// that receives cmd.Wait's result once the child exits. The child is sent
// SIGKILL if the thread that started it ends, so it cannot outlive the
// returned channel's goroutine.
//
// The bounding set and no_new_privs belong to a thread and are inherited
// from the thread that forks: the fork happens on a locked OS thread that
// dropped both, which is never unlocked, so the Go runtime discards it
// when the goroutine ends (after the child has exited).
func Start(cmd *exec.Cmd, uid, gid uint32) (<-chan error, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	started, exited := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := dropThreadPrivileges(); err != nil {
			started <- err
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// dropThreadPrivileges empties the calling thread's capability bounding
// and inheritable sets and sets no_new_privs on it.
func dropThreadPrivileges() error {
	for c := 0; ; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) && c > 0 {
				break // past the kernel's last capability
			}
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}
