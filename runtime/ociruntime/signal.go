package ociruntime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// settleTime is how long after the container's process appeared a signal
// may wait for that process to be able to receive it. A process that is
// receptive ends the wait at once; one that never catches the signal (a
// PID 1 without a handler, which the kernel then spares) only has it
// dropped later. Generous, because on a loaded machine an init can take
// hundreds of milliseconds to install its handlers.
const settleTime = 2 * time.Second

// awaitReceptive waits until pid can receive sig, for at most settleTime
// after the pid appeared: the runtime writes the pid file just before its
// init execs the container's program, and until that program has set up
// its signal handling (an init such as tini blocks signals first thing), a
// signal the process leaves at its default action is dropped, because the
// process is PID 1 of its namespace. A process that never catches, blocks
// or ignores sig gets it once the time is up (and drops it, as it would
// under Docker). Later signals are sent at once.
func (p *process) awaitReceptive(pid int, sig syscall.Signal) {
	for time.Now().Before(p.settleUntil) {
		if receptive(pid, sig, p.runtimeExe) {
			return
		}
		select {
		case <-p.done:
			return
		case <-time.After(time.Millisecond):
		}
	}
}

// receptive reports whether pid runs a program other than the runtime's
// init (it has exec'd) that blocks, catches or ignores sig, per
// /proc/PID/status; also true when pid is gone (nothing to wait for).
func receptive(pid int, sig syscall.Signal, runtimeExe string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(dir, "exe"))
	if err != nil {
		return os.IsNotExist(err)
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if strings.HasPrefix(exe, "/memfd:") || exe == runtimeExe {
		return false // the runtime's init, before its execve
	}
	data, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return true
	}
	bit := uint64(1) << (sig - 1)
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigBlk" && k != "SigIgn" && k != "SigCgt") {
			continue
		}
		if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&bit != 0 {
			return true
		}
	}
	return false
}
