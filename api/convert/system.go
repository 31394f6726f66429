package convert

import (
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

// KernelVersion is the running kernel's release ("" if unknown).
func KernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// cgroupRoot is where the cgroup hierarchies are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// CgroupVersion is the host's cgroup version as dockerd reports it: "2"
// when cgroupRoot is a cgroup2 mount (the unified hierarchy), else "1"
// (cgroup v1, including the hybrid layout with cgroup2 at
// cgroupRoot/unified).
func CgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func osName() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// Info is GET /info for an engine with options o, Berth version
// version, the containers cs and images images. The cgroup driver is
// "cgroupfs" (the OCI runtime's own, under the berth parent) and the
// version the host's (CgroupVersion).
func Info(o engine.Options, version string, cs []engine.Container, images int) system.Info {
	hostname, _ := os.Hostname()
	info := system.Info{
		ID: "berth", Containers: len(cs), Images: images,
		Driver: o.Snapshotter, DriverStatus: [][2]string{},
		Plugins:       system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "none"}, Log: []string{"json-file"}},
		MemoryLimit:   true,
		PidsLimit:     true,
		SystemTime:    time.Now().Format(time.RFC3339Nano),
		LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: CgroupVersion(),
		KernelVersion: KernelVersion(), OperatingSystem: osName(), OSType: "linux", Architecture: goruntime.GOARCH,
		IndexServerAddress: "https://index.docker.io/v1/",
		NCPU:               goruntime.NumCPU(), DockerRootDir: o.Root,
		Name: hostname, ServerVersion: version,
		Runtimes:        map[string]system.RuntimeWithStatus{o.Runtime: {Runtime: system.Runtime{Path: o.Runtime}}},
		DefaultRuntime:  o.Runtime,
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Labels:          []string{},
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Warnings:        []string{},
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		info.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, c := range cs {
		switch {
		case c.State.Status == engine.StatusRunning && c.State.Paused:
			info.ContainersPaused++
		case c.State.Status == engine.StatusRunning:
			info.ContainersRunning++
		default:
			info.ContainersStopped++
		}
	}
	return info
}

// CompareVersions compares API versions "major.minor": -1, 0 or 1.
func CompareVersions(a, b string) int {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := 0; i < 2; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Version is GET /version for Berth version version serving the API
// versions minAPI to maxAPI.
func Version(version, minAPI, maxAPI string) system.VersionResponse {
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth"},
		Version:       version,
		APIVersion:    maxAPI,
		MinAPIVersion: minAPI,
		Os:            goruntime.GOOS,
		Arch:          goruntime.GOARCH,
		GoVersion:     goruntime.Version(),
		KernelVersion: KernelVersion(),
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: version,
			Details: map[string]string{"ApiVersion": maxAPI, "MinAPIVersion": minAPI, "Os": goruntime.GOOS, "Arch": goruntime.GOARCH,
				"KernelVersion": KernelVersion(), "GoVersion": goruntime.Version(), "Experimental": "false"},
		}},
	}
}
