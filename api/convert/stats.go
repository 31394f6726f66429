package convert

import (
	goruntime "runtime"
	"time"

	"github.com/berthproject/berth/engine"
	containertypes "github.com/moby/moby/api/types/container"
)

// statsSystemNs is the host CPU time (ns) a Stats reading is scaled to.
const statsSystemNs = 1_000_000_000_000

// Stats is one reading as Docker's StatsResponse (GET
// /containers/{id}/stats). The engine reports CPU use as a percentage
// over its sampling interval, not as counters, so the CPU counters are
// scaled: precpu_stats is zero and cpu_stats holds a system time of 10^12
// ns and a container time such that Docker's formula
// (Δcontainer/Δsystem × online_cpus × 100) gives st.CPUPercent. Memory
// usage already excludes the inactive file cache, so memory_stats.stats
// is empty; the network is one "eth0" entry summing every interface but
// lo; block I/O is one read and one write entry (bytes). read is when the
// reading was taken, interval how long it sampled.
func Stats(st engine.Stats, read time.Time, interval time.Duration) containertypes.StatsResponse {
	online := uint32(goruntime.NumCPU())
	resp := containertypes.StatsResponse{
		ID: st.ID, Name: "/" + st.Name, OSType: "linux",
		Read: read, PreRead: read.Add(-interval),
		MemoryStats: containertypes.MemoryStats{Usage: st.MemUsage, Limit: st.MemLimit},
		Networks:    map[string]containertypes.NetworkStats{"eth0": {RxBytes: st.NetRx, TxBytes: st.NetTx}},
		PidsStats:   containertypes.PidsStats{Current: st.Pids},
		BlkioStats: containertypes.BlkioStats{IoServiceBytesRecursive: []containertypes.BlkioStatEntry{
			{Op: "read", Value: st.BlockRead}, {Op: "write", Value: st.BlockWrite},
		}},
	}
	if interval == 0 {
		resp.PreRead = time.Time{}
	}
	resp.CPUStats = containertypes.CPUStats{SystemUsage: statsSystemNs, OnlineCPUs: online}
	if online > 0 {
		resp.CPUStats.CPUUsage.TotalUsage = uint64(st.CPUPercent / 100 / float64(online) * statsSystemNs)
	}
	return resp
}
