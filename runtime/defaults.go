package runtime

import (
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPathEnv is the PATH a container gets when neither the image nor
// the run options set one; it is the value Docker uses on Linux.
const DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultShmSize is the size in bytes of /dev/shm when RunOptions.ShmSize
// is zero: 64 MiB, Docker's default for --shm-size.
const DefaultShmSize int64 = 64 << 20

// knownCapabilities lists every Linux capability by number (index = the
// kernel's capability number, 0 through CAP_CHECKPOINT_RESTORE = 40).
var knownCapabilities = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// DefaultCapabilities returns Docker's default capability set for a
// non-privileged container, in Docker's order, with the CAP_ prefix.
// The caller owns the returned slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths returns the paths Docker masks in a non-privileged
// container (bind-mounted over with /dev/null or an empty read-only
// tmpfs by the OCI runtime). Docker also masks
// /sys/devices/system/cpu/cpuN/thermal_throttle for every possible CPU
// where that directory exists on the host; Spec adds those.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths returns the paths Docker remounts read-only in a
// non-privileged container.
func DefaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

// DefaultMounts returns the mounts every Linux container gets before any
// user mount, as Docker sets them: /proc, a tmpfs /dev, /dev/pts,
// a read-only /sys, a read-only cgroup filesystem at /sys/fs/cgroup,
// /dev/mqueue and a /dev/shm tmpfs of shmSize bytes (DefaultShmSize when
// shmSize <= 0). Order matters: parents come before children.
func DefaultMounts(shmSize int64) []specs.Mount {
	if shmSize <= 0 {
		shmSize = DefaultShmSize
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize, 10)}},
	}
}

// DefaultDeviceRules returns the device cgroup rules a non-privileged
// Docker container ends up with: deny everything, then allow mknod of any
// node, /dev/null, /dev/zero, /dev/random, /dev/urandom, /dev/full,
// /dev/tty, /dev/console, /dev/ptmx, the pseudo-terminals (136:*) and
// /dev/net/tun (10:200); /dev/fuse (10:229) is denied explicitly. Docker's
// own list is the first seven; runc, its runtime, adds the others to every
// container; they are spelled out here so that a container is allowed the
// same devices under crun, which adds only what the runtime spec requires.
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(allow bool, major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: "c", Major: &major, Minor: &minor, Access: "rwm"}
	}
	pts := int64(136)
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule(false, 10, 229), // /dev/fuse, before any wildcard (cgroup v1 cannot punch holes)
		// nil major or minor: any (runtime-spec).
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
		rule(true, 1, 7),                                     // /dev/full
		rule(true, 5, 2),                                     // /dev/ptmx
		{Allow: true, Type: "c", Major: &pts, Access: "rwm"}, // /dev/pts/*
		rule(true, 10, 200),                                  // /dev/net/tun
		rule(true, 1, 5),                                     // /dev/zero
		rule(true, 1, 3),                                     // /dev/null
		rule(true, 1, 9),                                     // /dev/urandom
		rule(true, 1, 8),                                     // /dev/random
		rule(true, 5, 0),                                     // /dev/tty
		rule(true, 5, 1),                                     // /dev/console
	}
}

// ulimitNames are the names docker run --ulimit accepts (RLIMIT_ + upper).
var ulimitNames = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true,
	"locks": true, "memlock": true, "msgqueue": true, "nice": true,
	"nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

// normalizeCapability upper-cases c and adds the CAP_ prefix; "ALL" (any
// case) is returned as "ALL". ok is false for an unknown capability.
func normalizeCapability(c string) (string, bool) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" {
		return c, true
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	for _, k := range knownCapabilities {
		if k == c {
			return c, true
		}
	}
	return c, false
}
