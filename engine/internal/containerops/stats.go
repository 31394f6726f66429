package containerops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
)

// Stats is one reading of a container's resource use, the numbers of
// `docker stats`. Byte counts are in bytes; CPUPercent and MemPercent are
// percentages (CPUPercent of one CPU, so up to 100×CPUs).
type Stats struct {
	ID, Name              string
	CPUPercent            float64
	MemUsage, MemLimit    uint64
	MemPercent            float64
	NetRx, NetTx          uint64
	BlockRead, BlockWrite uint64
	Pids                  uint64
}

// cgroupV1Root is where the cgroup v1 hierarchies are mounted.
var cgroupV1Root = "/sys/fs/cgroup"

// sample is the raw counters of one container at one time.
type sample struct {
	cpuNs, systemNs uint64 // container CPU time; host CPU time (ns)
	stats           Stats
}

// ReadStats reads the resource use of the containers cs (running ones give
// numbers, others zeros), sampling CPU time twice, interval apart, to
// compute CPU %, as `docker stats --no-stream`. Counters come from the
// cgroup v1 memory, cpuacct, pids and blkio hierarchies under
// /sys/fs/cgroup/CONTROLLER/berth/ID and the network from
// /proc/PID/net/dev (every interface but lo). Memory use excludes the
// inactive file cache, as Docker's.
func ReadStats(ctx context.Context, cs []record.Container, interval time.Duration) ([]Stats, error) {
	first := make([]sample, len(cs))
	for i, c := range cs {
		first[i] = readSample(c)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(interval):
	}
	out := make([]Stats, len(cs))
	for i, c := range cs {
		s := readSample(c)
		st := s.stats
		if dSys := s.systemNs - first[i].systemNs; dSys > 0 && s.cpuNs >= first[i].cpuNs && c.State.Status == record.StatusRunning {
			st.CPUPercent = float64(s.cpuNs-first[i].cpuNs) / float64(dSys) * float64(goruntime.NumCPU()) * 100
		}
		out[i] = st
	}
	return out, nil
}

func readSample(c record.Container) sample {
	s := sample{stats: Stats{ID: c.ID, Name: c.Name}}
	if c.State.Status != record.StatusRunning {
		return s
	}
	cg := func(ctrl, file string) string {
		return readProcFile(filepath.Join(cgroupV1Root, ctrl, "berth", c.ID, file))
	}
	s.systemNs = systemCPUNs()
	s.cpuNs, _ = strconv.ParseUint(cg("cpuacct", "cpuacct.usage"), 10, 64)
	usage, _ := strconv.ParseUint(cg("memory", "memory.usage_in_bytes"), 10, 64)
	for _, line := range strings.Split(cg("memory", "memory.stat"), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "total_inactive_file" {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil && n < usage {
				usage -= n
			}
		}
	}
	s.stats.MemUsage = usage
	s.stats.MemLimit, _ = strconv.ParseUint(cg("memory", "memory.limit_in_bytes"), 10, 64)
	if total := hostMemory(); total > 0 && (s.stats.MemLimit == 0 || s.stats.MemLimit > total) {
		s.stats.MemLimit = total
	}
	if s.stats.MemLimit > 0 {
		s.stats.MemPercent = float64(s.stats.MemUsage) / float64(s.stats.MemLimit) * 100
	}
	s.stats.Pids, _ = strconv.ParseUint(cg("pids", "pids.current"), 10, 64)
	for _, line := range strings.Split(cg("blkio", "blkio.throttle.io_service_bytes"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			s.stats.BlockRead += n
		case "Write":
			s.stats.BlockWrite += n
		}
	}
	if c.State.Pid > 0 {
		s.stats.NetRx, s.stats.NetTx = netDev(c.State.Pid)
	}
	return s
}

// systemCPUNs is the host's total CPU time (all CPUs, all modes) in ns,
// from the "cpu" line of /proc/stat, as Docker's system_cpu_usage.
func systemCPUNs() uint64 {
	for _, line := range strings.Split(readProcFile("/proc/stat"), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || f[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range f[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		return ticks * uint64(time.Second/100) // USER_HZ is 100 on Linux
	}
	return 0
}

// hostMemory is MemTotal from /proc/meminfo in bytes.
func hostMemory() uint64 {
	for _, line := range strings.Split(readProcFile("/proc/meminfo"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n * 1024
		}
	}
	return 0
}

// netDev sums the received and transmitted bytes of every interface but
// lo in the network namespace of pid.
func netDev(pid int) (rx, tx uint64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			rx, tx = rx+r, tx+t
		}
	}
	return rx, tx
}
