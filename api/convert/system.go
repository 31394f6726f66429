package convert

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/engine"
	mon "github.com/berthproject/berth/monitor"
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

// ProgramVersion runs `bin --version` and reads what runc, crun, conmon
// and tini print: VERSION from a first line "NAME version VERSION", and
// COMMIT from a "commit: COMMIT" line or tini's " - git.COMMIT" suffix
// ("" when absent or "unknown"). ok is false when bin does not run or
// prints no such first line. Cost: one fork/exec the first time; later
// calls answer from a cache kept while the binary's size and mtime stay
// the same (an upgrade is seen).
func ProgramVersion(bin string) (version, commit string, ok bool) {
	bin, err := exec.LookPath(bin) // a name in $PATH or a path
	if err != nil {
		return "", "", false
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", "", false
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", bin, fi.Size(), fi.ModTime().UnixNano())
	versions.Lock()
	v, hit := versions.m[key]
	versions.Unlock()
	if hit {
		return v.version, v.commit, v.ok
	}
	out, err := exec.Command(bin, "--version").Output()
	if err == nil {
		v.version, v.commit, v.ok = parseProgramVersion(string(out))
	}
	versions.Lock()
	if versions.m == nil {
		versions.m = map[string]programVersion{}
	}
	versions.m[key] = v
	versions.Unlock()
	return v.version, v.commit, v.ok
}

type programVersion struct {
	version, commit string
	ok              bool
}

// versions caches ProgramVersion's answers by path, size and mtime.
var versions struct {
	sync.Mutex
	m map[string]programVersion
}

func parseProgramVersion(out string) (version, commit string, ok bool) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[0])
	if len(f) < 3 || f[1] != "version" {
		return "", "", false
	}
	version = f[2]
	if len(f) >= 5 && f[3] == "-" {
		commit = strings.TrimPrefix(f[4], "git.")
	}
	for _, l := range lines[1:] {
		if c, found := strings.CutPrefix(strings.TrimSpace(l), "commit:"); found {
			commit = strings.TrimSpace(c)
		}
	}
	if commit == "unknown" {
		commit = ""
	}
	return version, commit, true
}

// Components are GET /version's components after "Engine", as dockerd
// lists runc and docker-init: the OCI runtime o.Runtime (named after its
// binary), the container monitor (o.Monitor, or monitor.New's default) and
// "docker-init" (engine.InitBinary), each with its Version and, when it
// prints one, Details["GitCommit"] (ProgramVersion; no key otherwise, so
// that docker's `version` prints no blank line). Programs that are
// missing are left out. Cost: one fork/exec each.
func Components(o engine.Options) []system.ComponentVersion {
	monitor := o.Monitor
	if p, err := mon.New(o.Monitor); err == nil {
		monitor = p.Binary
	}
	var out []system.ComponentVersion
	for _, p := range [][2]string{{filepath.Base(o.Runtime), o.Runtime}, {filepath.Base(monitor), monitor}, {"docker-init", engine.InitBinary()}} {
		if p[1] == "" {
			continue
		}
		if v, commit, ok := ProgramVersion(p[1]); ok {
			c := system.ComponentVersion{Name: p[0], Version: v, Details: map[string]string{}}
			if commit != "" {
				c.Details["GitCommit"] = commit
			}
			out = append(out, c)
		}
	}
	return out
}

// runtimes is Info's Runtimes: o.Runtime and those of
// engine.APIRuntimes found in $PATH, each with its path.
func runtimes(o engine.Options) map[string]system.RuntimeWithStatus {
	out := map[string]system.RuntimeWithStatus{o.Runtime: {Runtime: system.Runtime{Path: o.Runtime}}}
	for _, name := range engine.APIRuntimes {
		if p, err := exec.LookPath(name); err == nil {
			out[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
		}
	}
	return out
}

// Info is GET /info for an engine with options o, Berth version
// version, the containers cs and images images. The cgroup driver is
// "cgroupfs" (the OCI runtime's own, under the berth parent) and the
// version the host's (CgroupVersion). Runtimes lists o.Runtime and the
// installed ones of engine.APIRuntimes; InitBinary is engine.InitBinary;
// RuncCommit and InitCommit are the commits runc (when installed) and the
// init print with --version (ProgramVersion: two fork/execs).
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
		Runtimes:        runtimes(o),
		DefaultRuntime:  o.Runtime,
		InitBinary:      engine.InitBinary(),
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Labels:          []string{},
		Swarm:           swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Warnings:        []string{},
	}
	// Docker's "runc version" line: runc's commit, whichever runtime is
	// the default (crun's commit there would be mislabelled).
	_, info.RuncCommit.ID, _ = ProgramVersion("runc")
	if info.InitBinary != "" {
		_, info.InitCommit.ID, _ = ProgramVersion(info.InitBinary)
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
// versions minAPI to maxAPI: the "Engine" component, then components
// (see Components).
func Version(version, minAPI, maxAPI string, components ...system.ComponentVersion) system.VersionResponse {
	v := system.VersionResponse{
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
	v.Components = append(v.Components, components...)
	return v
}
