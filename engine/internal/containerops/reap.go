package containerops

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A foreground exec makes this process a child subreaper (PR_SET_CHILD_
// SUBREAPER) so that it can wait for the process `runc exec --detach`
// leaves behind. Every other orphan among its descendants is then
// re-parented here too: each daemonized monitor of a detached
// container, for one. A long-running caller (the service's privileged
// helper) would collect them as zombies, so the first foreground exec
// also starts a reaper that collects the zombie children nobody waits
// for, without stealing one that somebody does:
//
//   - a child started through os.StartProcess (os/exec) is held by Go
//     through a pidfd from the moment it is cloned until its Wait has
//     reaped it; the reaper reads this process's pidfds
//     (/proc/self/fdinfo, "Pid:") and leaves their pids alone;
//   - an exec'd process is claimed (orphans.claim) from before the
//     runtime starts it (orphans.gate) until ExecProcess.Wait reaped it;
//   - any other zombie child is an orphan that was re-parented here: it
//     is reaped with wait4 on its own pid, never with a wildcard wait.
//
// If Go does not hold pidfds for its children (a kernel without pidfd
// support), the reaper does not start: stealing a child from os/exec
// would be worse than keeping zombies.

// orphanReaper is the state the reaper shares with Exec and Wait.
type orphanReaper struct {
	// gate is held for reading while a foreground exec is between
	// starting the runtime and claiming its process's pid; the reaper
	// skips a round while it is.
	gate    sync.RWMutex
	mu      sync.Mutex
	claimed map[int]int // pid → number of claims
	once    sync.Once
	err     error
}

var orphans orphanReaper

func (r *orphanReaper) claim(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed == nil {
		r.claimed = map[int]int{}
	}
	r.claimed[pid]++
}

func (r *orphanReaper) release(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.claimed[pid]--; r.claimed[pid] <= 0 {
		delete(r.claimed, pid)
	}
}

func (r *orphanReaper) isClaimed(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimed[pid] > 0
}

// becomeSubreaper makes this process a child subreaper and, the first
// time, starts the reaper when Go's children are held by pidfds.
func becomeSubreaper() error {
	orphans.once.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			orphans.err = fmt.Errorf("set child subreaper: %w", err)
			return
		}
		if goHoldsPidfds() {
			go orphans.run()
		}
	})
	return orphans.err
}

// goHoldsPidfds reports whether os/exec holds a pidfd for a child it
// started: it starts one (`true` from $PATH) and looks for it before
// waiting. Without `true` it reports false.
func goHoldsPidfds() bool {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		return false
	}
	held := pidfdPids()[cmd.Process.Pid]
	cmd.Wait()
	return held
}

// run reaps on every SIGCHLD and, in case one was missed, every 5 s.
func (r *orphanReaper) run() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	tick := time.NewTicker(5 * time.Second)
	for {
		select {
		case <-sig:
		case <-tick.C:
		}
		r.reapOnce()
	}
}

// reapOnce reaps every zombie child that neither os/exec nor an exec
// waits for, and returns their pids. It does nothing while a foreground
// exec is starting.
func (r *orphanReaper) reapOnce() []int {
	if !r.gate.TryLock() {
		return nil
	}
	defer r.gate.Unlock()
	zombies := zombieChildren()
	if len(zombies) == 0 {
		return nil
	}
	// Read after the zombies were listed: a child cloned before the
	// listing has its pidfd by now, and one cloned after is not listed.
	held := pidfdPids()
	var reaped []int
	for _, pid := range zombies {
		if held[pid] || r.isClaimed(pid) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
		}
	}
	return reaped
}

// zombieChildren lists this process's children (every thread's) that
// are zombies.
func zombieChildren() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var out []int
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(s)
			if err == nil && processState(pid) == 'Z' {
				out = append(out, pid)
			}
		}
	}
	return out
}

// processState is the state letter of /proc/PID/stat (0 if unreadable).
func processState(pid int) byte {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 || i+2 >= len(data) {
		return 0
	}
	return data[i+2]
}

// pidfdPids is the set of pids this process holds a pidfd for.
func pidfdPids() map[int]bool {
	out := map[int]bool{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return out
	}
	for _, ent := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + ent.Name()); err != nil || target != "anon_inode:[pidfd]" {
			continue
		}
		data, err := os.ReadFile("/proc/self/fdinfo/" + ent.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Pid:"); ok {
				if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && pid > 0 {
					out[pid] = true
				}
			}
		}
	}
	return out
}
