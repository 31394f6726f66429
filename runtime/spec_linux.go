package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// staticHost holds the host facts that cannot change while we run.
var staticHost = sync.OnceValue(func() hostInfo {
	return hostInfo{
		caps:         hostCapabilities(),
		cgroup2:      isCgroup2Unified(),
		inUserNS:     runningInUserNS(),
		extraMasked:  thermalThrottlePaths(),
		sysctlExists: sysctlExists,
		devices:      hostDevices,
		seccomp:      seccomp.GetDefaultProfile,
	}
})

func currentHost() *hostInfo {
	h := staticHost()
	h.caps = append([]string(nil), h.caps...)
	h.extraMasked = append([]string(nil), h.extraMasked...)
	return &h
}

// hostCapabilities returns the capabilities in this process's effective
// set (what Docker calls "all capabilities available in the current
// environment"). If /proc is unreadable it falls back to every
// capability up to the kernel's last one.
func hostCapabilities() []string {
	if mask, err := capEff(); err == nil {
		var out []string
		for i, c := range knownCapabilities {
			if mask&(1<<uint(i)) != 0 {
				out = append(out, c)
			}
		}
		return out
	}
	last := len(knownCapabilities) - 1
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n < last {
			last = n
		}
	}
	return append([]string(nil), knownCapabilities[:last+1]...)
}

func capEff() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

func isCgroup2Unified() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// runningInUserNS reports whether this process's uid map is not the
// full identity map of the initial user namespace.
func runningInUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

func sysctlExists(name string) bool {
	_, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	return err == nil
}

// thermalThrottlePaths returns /sys/devices/system/cpu/cpuN/thermal_throttle
// for each possible CPU where it exists; Docker masks them
// (GHSA-6fw5-f8r9-fgfm).
func thermalThrottlePaths() []string {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for cpu := first; cpu <= last && cpu-first < 1<<16; cpu++ {
			p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// hostDevices lists the character and block devices under /dev, as a
// privileged Docker container gets them, skipping the directories the
// container mounts itself (pts, shm, mqueue, fd) and /dev/console.
func hostDevices() ([]specs.LinuxDevice, error) {
	return devicesUnder("/dev")
}

func devicesUnder(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := devicesUnder(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
					continue
				}
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if p == "/dev/console" {
			continue
		}
		d, err := deviceAt(p)
		if err != nil {
			continue // not a device, or raced with removal
		}
		out = append(out, d)
	}
	return out, nil
}
