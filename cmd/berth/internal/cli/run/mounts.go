package run

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// parseVolume reads one -v/--volume value, Docker's
// "[SOURCE:]CONTAINER-PATH[:OPTIONS]". SOURCE is a host path (absolute,
// or relative starting with ".") for a bind mount, or a volume name; no
// SOURCE means a new anonymous volume. OPTIONS is a comma list of ro/rw,
// nocopy (volumes), propagation (private, rprivate, shared, rshared,
// slave, rslave; binds) and SELinux labels z/Z (accepted, no effect
// here). A missing host path is created as a directory, as Docker does
// for -v; missing volumes are created by the engine.
func parseVolume(spec string) (specs.Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) == 1 && filepath.IsAbs(parts[0]) {
		return engine.VolumeMount("", filepath.Clean(parts[0]), false, false), nil
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("invalid volume specification: '%s': %w", spec, errdefs.ErrInvalidArgument)
	}
	src, dst := parts[0], parts[1]
	if !filepath.IsAbs(dst) {
		return specs.Mount{}, fmt.Errorf("invalid volume specification: '%s': invalid mount config: invalid mount path: '%s' mount path must be absolute: %w", spec, dst, errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(src) && !strings.HasPrefix(src, ".") {
		ro, noCopy := false, false
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch o {
				case "ro":
					ro = true
				case "rw", "z", "Z", "":
				case "nocopy":
					noCopy = true
				default:
					return specs.Mount{}, fmt.Errorf("invalid volume specification: '%s': invalid mode: %s: %w", spec, o, errdefs.ErrInvalidArgument)
				}
			}
		}
		return engine.VolumeMount(src, filepath.Clean(dst), ro, noCopy), nil
	}
	src, err := filepath.Abs(src)
	if err != nil {
		return specs.Mount{}, err
	}
	opts := []string{"rbind"}
	propagation := "rprivate"
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro", "rw":
				opts = append(opts, o)
			case "private", "rprivate", "shared", "rshared", "slave", "rslave":
				propagation = o
			case "z", "Z", "":
			default:
				return specs.Mount{}, fmt.Errorf("invalid volume specification: '%s': invalid mode: %s: %w", spec, o, errdefs.ErrInvalidArgument)
			}
		}
	}
	if _, err := os.Stat(src); os.IsNotExist(err) {
		if err := os.MkdirAll(src, 0o755); err != nil {
			return specs.Mount{}, fmt.Errorf("create host path %s: %w", src, err)
		}
	}
	return specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: src, Options: append(opts, propagation)}, nil
}

// parseMount reads one --mount value: comma-separated key=value pairs
// with type=bind|volume|tmpfs (default volume), source/src (a volume name,
// none for an anonymous volume), volume-nocopy, target/destination/dst, readonly/ro,
// bind-propagation, tmpfs-size, tmpfs-mode (Docker's syntax). A bind
// source that does not exist is an error, as in Docker.
func parseMount(spec string) (specs.Mount, error) {
	kv := map[string]string{}
	for _, f := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok && (k == "readonly" || k == "ro") {
			v = "true"
		}
		kv[strings.ToLower(strings.TrimSpace(k))] = v
	}
	bad := func(format string, a ...any) (specs.Mount, error) {
		return specs.Mount{}, fmt.Errorf("invalid argument %q for \"--mount\" flag: "+format+": %w", append(append([]any{spec}, a...), errdefs.ErrInvalidArgument)...)
	}
	target := firstOf(kv, "target", "destination", "dst")
	if target == "" {
		return bad("target is required")
	}
	if !filepath.IsAbs(target) {
		return bad("mount path must be absolute")
	}
	ro := kv["readonly"] == "true" || kv["readonly"] == "1" || kv["ro"] == "true" || kv["ro"] == "1"
	switch typ := kv["type"]; typ {
	case "bind":
		src := firstOf(kv, "source", "src")
		if src == "" {
			return bad("source is required when specifying volume-driver or type bind")
		}
		if _, err := os.Stat(src); err != nil {
			return specs.Mount{}, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", src, errdefs.ErrInvalidArgument)
		}
		prop := kv["bind-propagation"]
		if prop == "" {
			prop = "rprivate"
		}
		opts := []string{"rbind", prop}
		if ro {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: filepath.Clean(target), Type: "bind", Source: src, Options: opts}, nil
	case "tmpfs":
		return tmpfsMount(target, kv["tmpfs-size"], kv["tmpfs-mode"], ro)
	case "volume", "":
		for _, k := range []string{"volume-driver", "volume-opt", "volume-subpath"} {
			if kv[k] != "" && (k != "volume-driver" || kv[k] != "local") {
				return bad("%s is not supported", k)
			}
		}
		for _, k := range []string{"bind-propagation", "tmpfs-size", "tmpfs-mode"} {
			if _, ok := kv[k]; ok {
				return bad("cannot mix '%s' options with type 'volume'", strings.SplitN(k, "-", 2)[0])
			}
		}
		noCopy := kv["volume-nocopy"] == "true" || kv["volume-nocopy"] == "1"
		if _, ok := kv["volume-nocopy"]; ok && kv["volume-nocopy"] == "" {
			noCopy = true
		}
		return engine.VolumeMount(firstOf(kv, "source", "src"), filepath.Clean(target), ro, noCopy), nil
	default:
		return bad("unknown mount type %q", typ)
	}
}

func firstOf(kv map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := kv[k]; v != "" {
			return v
		}
	}
	return ""
}

// parseTmpfs reads one --tmpfs value, "PATH[:OPTIONS]" with mount(8)
// options such as size=64m,mode=1777,noexec.
func parseTmpfs(spec string) (specs.Mount, error) {
	dst, opts, _ := strings.Cut(spec, ":")
	if !filepath.IsAbs(dst) {
		return specs.Mount{}, fmt.Errorf("invalid tmpfs mount %q: mount path must be absolute: %w", spec, errdefs.ErrInvalidArgument)
	}
	m := specs.Mount{Destination: filepath.Clean(dst), Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec"}}
	if opts != "" {
		m.Options = append(m.Options, strings.Split(opts, ",")...)
	}
	return m, nil
}

func tmpfsMount(target, size, mode string, ro bool) (specs.Mount, error) {
	m := specs.Mount{Destination: filepath.Clean(target), Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}}
	if size != "" {
		n, err := units.RAMInBytes(size)
		if err != nil {
			return specs.Mount{}, fmt.Errorf("invalid tmpfs-size %q: %w", size, errdefs.ErrInvalidArgument)
		}
		m.Options = append(m.Options, "size="+strconv.FormatInt(n, 10))
	}
	if mode != "" {
		if _, err := strconv.ParseUint(mode, 8, 32); err != nil {
			return specs.Mount{}, fmt.Errorf("invalid tmpfs-mode %q: %w", mode, errdefs.ErrInvalidArgument)
		}
		m.Options = append(m.Options, "mode="+mode)
	}
	if ro {
		m.Options = append(m.Options, "ro")
	}
	return m, nil
}

// resourceOptions fills r from the mount, limit and security flags.
func (rf *runFlags) resourceOptions(r *runtime.RunOptions) error {
	for _, v := range rf.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return err
		}
		r.Mounts = append(r.Mounts, m)
	}
	for _, v := range rf.mounts {
		m, err := parseMount(v)
		if err != nil {
			return err
		}
		r.Mounts = append(r.Mounts, m)
	}
	for _, v := range rf.tmpfs {
		m, err := parseTmpfs(v)
		if err != nil {
			return err
		}
		r.Mounts = append(r.Mounts, m)
	}
	r.Init = rf.init
	var err error
	if r.Memory, err = byteFlag("--memory", rf.memory); err != nil {
		return err
	}
	if rf.memorySwap == "-1" {
		r.MemorySwap = -1
	} else if r.MemorySwap, err = byteFlag("--memory-swap", rf.memorySwap); err != nil {
		return err
	}
	if r.ShmSize, err = byteFlag("--shm-size", rf.shmSize); err != nil {
		return err
	}
	if rf.cpus < 0 {
		return fmt.Errorf("invalid argument \"%v\" for \"--cpus\" flag: must not be negative: %w", rf.cpus, errdefs.ErrInvalidArgument)
	}
	r.NanoCPUs = int64(rf.cpus * 1e9)
	r.PidsLimit = rf.pidsLimit
	for _, u := range rf.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--ulimit\" flag: %v: %w", u, err, errdefs.ErrInvalidArgument)
		}
		if err := checkUlimit(ul); err != nil {
			return err
		}
		r.Ulimits = append(r.Ulimits, runtime.Ulimit{Name: ul.Name, Soft: uint64(ul.Soft), Hard: uint64(ul.Hard)})
	}
	for _, o := range rf.securityOpts {
		k, v, _ := strings.Cut(o, "=")
		if !strings.Contains(o, "=") {
			k, v, _ = strings.Cut(o, ":")
		}
		switch k {
		case "no-new-privileges":
			r.NoNewPrivileges = v == "" || v == "true"
		case "label", "apparmor":
			// No SELinux or AppArmor on this host; accepted as Docker
			// accepts them where the module is absent.
		default:
			return fmt.Errorf("invalid --security-opt: %q (supported: no-new-privileges): %w", o, errdefs.ErrInvalidArgument)
		}
	}
	for _, sc := range rf.sysctls {
		k, v, ok := strings.Cut(sc, "=")
		if !ok {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: want KEY=VALUE: %w", sc, errdefs.ErrInvalidArgument)
		}
		if r.Sysctls == nil {
			r.Sysctls = map[string]string{}
		}
		r.Sysctls[k] = v
	}
	return nil
}

func byteFlag(name, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid argument %q for \"%s\" flag: invalid size: %w", v, name, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// checkUlimit refuses limits above berth's own hard limit when it cannot
// raise it (no CAP_SYS_RESOURCE): the OCI runtime would fail at start
// with a cryptic message.
func checkUlimit(u *units.Ulimit) error {
	if u.Soft > u.Hard {
		return fmt.Errorf("ulimit %s: soft limit %d exceeds hard limit %d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalidArgument)
	}
	res, ok := map[string]int{"nofile": unix.RLIMIT_NOFILE, "nproc": unix.RLIMIT_NPROC, "core": unix.RLIMIT_CORE,
		"memlock": unix.RLIMIT_MEMLOCK, "stack": unix.RLIMIT_STACK, "fsize": unix.RLIMIT_FSIZE, "cpu": unix.RLIMIT_CPU,
		"data": unix.RLIMIT_DATA, "as": unix.RLIMIT_AS, "locks": unix.RLIMIT_LOCKS, "sigpending": unix.RLIMIT_SIGPENDING,
		"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME, "rss": unix.RLIMIT_RSS}[u.Name]
	if !ok {
		return nil
	}
	var cur unix.Rlimit
	if unix.Getrlimit(res, &cur) != nil || cur.Max == unix.RLIM_INFINITY || uint64(u.Hard) <= cur.Max {
		return nil
	}
	if hasCapSysResource() {
		return nil
	}
	return fmt.Errorf("ulimit %s: hard limit %d exceeds berth's own hard limit %d, and berth lacks CAP_SYS_RESOURCE to raise it: %w", u.Name, u.Hard, cur.Max, errdefs.ErrInvalidArgument)
}

func hasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}
