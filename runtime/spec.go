package runtime

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/sys/signal"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Ulimit is one `docker run --ulimit NAME=SOFT[:HARD]` setting.
type Ulimit struct {
	// Name is the limit's name without the RLIMIT_ prefix, as Docker
	// spells it: as, core, cpu, data, fsize, locks, memlock, msgqueue,
	// nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack
	// (case-insensitive).
	Name string
	// Soft and Hard are in the limit's own unit (bytes, seconds, count).
	Soft, Hard uint64
}

// RunOptions holds the per-container settings a user passes to
// `run`/`create`. The zero value means "Docker's defaults".
type RunOptions struct {
	// Entrypoint replaces the image's ENTRYPOINT when EntrypointSet is
	// true (`--entrypoint`, even `--entrypoint ""`, which sets it to nil
	// or [""]); it also clears the image's CMD.
	Entrypoint    []string
	EntrypointSet bool
	// Cmd is the arguments after the image name; when non-empty it
	// replaces the image's CMD.
	Cmd []string
	// Env is `-e` entries, "KEY=VALUE" (the value may contain '=') or a
	// bare "KEY", which removes KEY from the environment. Docker's CLI
	// resolves a bare KEY from its own environment before sending; the
	// caller does that, Spec stores entries as given.
	Env []string
	// WorkingDir overrides the image's WORKDIR; it must be absolute.
	WorkingDir string
	// User overrides the image's USER; see ResolveUser for the syntax.
	User string
	// Hostname is the container's hostname (Docker uses the first 12
	// hex digits of the container ID); it is also exported as HOSTNAME.
	Hostname string
	// Tty allocates a terminal (Process.Terminal) and sets TERM=xterm.
	Tty bool
	// OpenStdin (-i) does not change the spec; it is carried for the
	// code that wires the container's stdio.
	OpenStdin bool
	// StdinOnce (Docker's) closes the container's stdin when the first
	// attached client's input ends (`docker run -i`); without it an
	// OpenStdin container's stdin stays open for later attaches. Like
	// OpenStdin it does not change the spec.
	StdinOnce bool
	// AttachStdin, AttachStdout and AttachStderr are Docker's
	// Config.Attach*: the streams the creating client attached to (run
	// without -d: stdout and stderr, stdin with -i; create: stdout and
	// stderr). Carried for inspect; they do not change the spec.
	AttachStdin, AttachStdout, AttachStderr bool
	// ReadOnlyRootfs mounts the root filesystem read-only (--read-only).
	ReadOnlyRootfs bool
	// Privileged grants every capability the caller holds, all host
	// devices, a writable /sys and cgroup filesystem, and turns off
	// masked and read-only paths and seccomp (--privileged).
	Privileged bool
	// NoNewPrivileges sets the no_new_privs bit
	// (--security-opt no-new-privileges).
	NoNewPrivileges bool
	// CapAdd and CapDrop tweak the default capabilities. Names are
	// case-insensitive, with or without the CAP_ prefix; "ALL" adds or
	// drops every capability. Ignored when Privileged.
	CapAdd, CapDrop []string
	// Ulimits become Process.Rlimits; none are set by default, so the
	// container inherits the OCI runtime's limits. Spec does not clamp
	// them: asking for more than the caller's hard limit without
	// CAP_SYS_RESOURCE makes the OCI runtime fail at start.
	Ulimits []Ulimit
	// NetworkNamespace is "" (or "none") for a new private network
	// namespace, "host" to share the host's, or an absolute path such
	// as /proc/PID/ns/net or /var/run/netns/NAME to join.
	NetworkNamespace string
	// Mounts are extra mounts (binds, tmpfs), placed after the default
	// mounts, parents before children. A mount whose destination equals
	// a default mount's replaces it; a mount on /dev replaces every
	// default mount under /dev.
	Mounts []specs.Mount
	// Sysctls are extra namespaced sysctls (--sysctl); they override
	// the defaults Spec sets for a non-host network namespace.
	Sysctls map[string]string
	// ShmSize is the size of /dev/shm in bytes (--shm-size); 0 means
	// DefaultShmSize.
	ShmSize int64
	// CgroupsPath is copied to Linux.CgroupsPath; "" leaves the choice
	// to the OCI runtime.
	CgroupsPath string
	// Init (--init) runs InitPath, bind-mounted read-only at
	// /sbin/docker-init, as PID 1 with the command under it ("--" then
	// the args), as Docker does with tini: signals are forwarded and
	// zombies reaped.
	Init bool
	// InitPath is the host's static init binary for Init (Debian's
	// /usr/bin/tini-static); required when Init is set.
	InitPath string
	// Memory limits the container's memory in bytes (--memory); 0 for
	// none. MemorySwap is memory+swap in bytes (--memory-swap; -1 for
	// unlimited swap, 0 for Docker's default of twice Memory).
	Memory, MemorySwap int64
	// NanoCPUs is --cpus in billionths of a CPU; 0 for no limit.
	NanoCPUs int64
	// PidsLimit is --pids-limit; 0 for none, -1 for unlimited.
	PidsLimit int64
	// Devices are host devices added to the container (--device,
	// HostConfig.Devices), after the default ones; see addUserDevices.
	Devices []DeviceMapping
}

// initDest is where Init's binary appears in the container.
const initDest = "/sbin/docker-init"

// ociVersion is the runtime-spec version written into config.json. It is
// the oldest 1.0.x every supported OCI runtime accepts (crun 1.8 refuses a
// version outside 1.0.x; runc takes any 1.x); the fields Berth sets all
// exist in runtime-spec 1.0.2.
const ociVersion = "1.0.2"

// Spec builds the OCI runtime config for a container whose root
// filesystem is already mounted at rootfs (an absolute host path), from
// the image config img and the run options opts, following Docker's
// behaviour for `docker run`:
//
//   - Process.Args from Args; Process.Cwd is opts.WorkingDir, else the
//     image's, else "/", and must be absolute;
//   - Process.User and HOME from ResolveUser(rootfs, opts.User or the
//     image's USER);
//   - Process.Env: PATH (DefaultPathEnv), HOSTNAME and, with a TTY,
//     TERM=xterm, overridden by the image's Env, overridden in turn by
//     opts.Env (see RunOptions.Env), then HOME if still unset;
//   - capabilities: DefaultCapabilities tweaked by CapAdd/CapDrop, or
//     all capabilities the caller holds when privileged;
//   - DefaultMounts, DefaultMaskedPaths, DefaultReadonlyPaths,
//     DefaultDeviceRules and the default seccomp profile of
//     github.com/moby/profiles/seccomp (none of the last four when
//     privileged);
//   - namespaces mount, network (per NetworkNamespace), uts, pid, ipc,
//     and cgroup when the host uses the unified cgroup v2 hierarchy;
//   - net.ipv4.ip_unprivileged_port_start=0 and
//     net.ipv4.ping_group_range="0 2147483647" unless the network
//     namespace is the host's.
//
// Errors: ErrInvalidArgument for bad options (relative rootfs or
// working directory, nothing to run, unknown user or group, unknown
// capability or ulimit, malformed env entry, bad network namespace or
// mount destination); ErrNotImplemented for Init; ErrNotFound when
// rootfs does not exist. Spec reads rootfs's /etc/passwd and /etc/group
// and a few host files under /proc and /sys; it changes nothing.
func Spec(rootfs string, img ocispec.ImageConfig, opts RunOptions) (*specs.Spec, error) {
	return buildSpec(rootfs, img, opts, currentHost())
}

// hostInfo is what Spec needs to know about the machine; tests replace it.
type hostInfo struct {
	// caps is every capability the caller holds (CAP_ names).
	caps []string
	// cgroup2 reports a unified (v2-only) cgroup hierarchy.
	cgroup2 bool
	// inUserNS reports that the caller runs in a user namespace.
	inUserNS bool
	// extraMasked are host-dependent masked paths Docker adds.
	extraMasked []string
	// sysctlExists reports whether the kernel knows a sysctl.
	sysctlExists func(name string) bool
	// devices lists host devices for a privileged container.
	devices func() ([]specs.LinuxDevice, error)
	// seccomp returns the default seccomp profile for a spec whose
	// capabilities are already set.
	seccomp func(*specs.Spec) (*specs.LinuxSeccomp, error)
}

// ValidateStopSignal checks a container's stop signal (Docker's
// --stop-signal and Config.StopSignal): "" (the default, SIGTERM), a
// signal name with or without the SIG prefix in any case, or a non-zero
// number. Anything else gives errdefs.ErrInvalidArgument "invalid signal:
// NAME", the check and message Docker's daemon applies at create.
func ValidateStopSignal(sig string) error {
	if sig == "" {
		return nil
	}
	if _, err := signal.ParseSignal(sig); err != nil {
		return invalidf("invalid signal: %s", sig)
	}
	return nil
}

func invalidf(format string, a ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
}

func buildSpec(rootfs string, img ocispec.ImageConfig, opts RunOptions, h *hostInfo) (*specs.Spec, error) {
	if opts.Init && opts.InitPath == "" {
		return nil, invalidf("--init needs an init binary (install Debian's tini: apt-get install tini)")
	}
	if !filepath.IsAbs(rootfs) {
		return nil, invalidf("rootfs %q is not an absolute path", rootfs)
	}
	args, err := Args(img, opts)
	if err != nil {
		return nil, err
	}
	if opts.Init {
		args = append([]string{initDest, "--"}, args...)
		opts.Mounts = append(slices.Clone(opts.Mounts), specs.Mount{Destination: initDest, Type: "bind", Source: opts.InitPath, Options: []string{"bind", "ro"}})
	}
	cwd, err := workingDir(img, opts)
	if err != nil {
		return nil, err
	}
	userSpec := opts.User
	if userSpec == "" {
		userSpec = img.User
	}
	usr, err := ResolveUser(rootfs, userSpec)
	if err != nil {
		return nil, err
	}
	env, err := buildEnv(img, opts, usr.Home)
	if err != nil {
		return nil, err
	}
	caps, err := tweakCapabilities(h.caps, opts)
	if err != nil {
		return nil, err
	}
	rlimits, err := buildRlimits(opts.Ulimits)
	if err != nil {
		return nil, err
	}
	mounts, err := buildMounts(opts)
	if err != nil {
		return nil, err
	}
	namespaces, hostNet, err := buildNamespaces(opts.NetworkNamespace, h.cgroup2)
	if err != nil {
		return nil, err
	}

	oomScoreAdj := 0
	s := &specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			Terminal: opts.Tty,
			User: specs.User{
				UID:            usr.UID,
				GID:            usr.GID,
				AdditionalGids: usr.AdditionalGids,
			},
			Args: args,
			Env:  env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: slices.Clone(caps),
				Permitted: slices.Clone(caps),
			},
			Rlimits:         rlimits,
			NoNewPrivileges: opts.NoNewPrivileges,
			OOMScoreAdj:     &oomScoreAdj,
		},
		Root:     &specs.Root{Path: rootfs, Readonly: opts.ReadOnlyRootfs},
		Hostname: opts.Hostname,
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces:  namespaces,
			CgroupsPath: opts.CgroupsPath,
			Resources:   &specs.LinuxResources{},
		},
	}

	sysctl := map[string]string{}
	if !hostNet {
		if !h.inUserNS && h.sysctlExists("net.ipv4.ping_group_range") {
			sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if h.sysctlExists("net.ipv4.ip_unprivileged_port_start") {
			sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
	}
	for k, v := range opts.Sysctls {
		sysctl[k] = v
	}
	if len(sysctl) > 0 {
		s.Linux.Sysctl = sysctl
	}
	if err := setResources(s.Linux.Resources, opts); err != nil {
		return nil, err
	}

	if opts.Privileged {
		devs, err := h.devices()
		if err != nil {
			return nil, fmt.Errorf("list host devices: %w", err)
		}
		s.Linux.Devices = devs
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		if err := addUserDevices(s.Linux, opts); err != nil {
			return nil, err
		}
		return s, nil
	}
	s.Linux.Resources.Devices = DefaultDeviceRules()
	if err := addUserDevices(s.Linux, opts); err != nil {
		return nil, err
	}
	s.Linux.MaskedPaths = append(DefaultMaskedPaths(), h.extraMasked...)
	s.Linux.ReadonlyPaths = DefaultReadonlyPaths()
	seccomp, err := h.seccomp(s)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	s.Linux.Seccomp = seccomp
	return s, nil
}

// Args returns the container's process arguments, Docker's way:
// entrypoint followed by command, where
//   - opts.EntrypointSet replaces the image's Entrypoint with
//     opts.Entrypoint and discards the image's Cmd (`--entrypoint ""`,
//     i.e. an empty Entrypoint or [""], clears both, leaving opts.Cmd);
//   - a non-empty opts.Cmd replaces the image's Cmd.
//
// It returns ErrInvalidArgument "no command specified" when the result
// is empty.
func Args(img ocispec.ImageConfig, opts RunOptions) ([]string, error) {
	entrypoint, cmd := img.Entrypoint, img.Cmd
	if opts.EntrypointSet {
		entrypoint, cmd = opts.Entrypoint, nil
		if len(entrypoint) == 1 && entrypoint[0] == "" {
			entrypoint = nil
		}
	}
	if len(opts.Cmd) > 0 {
		cmd = opts.Cmd
	}
	args := make([]string, 0, len(entrypoint)+len(cmd))
	args = append(args, entrypoint...)
	args = append(args, cmd...)
	if len(args) == 0 {
		return nil, invalidf("no command specified")
	}
	return args, nil
}

// workingDir picks the run's, else the image's working directory, else
// "/"; it must be absolute and is returned cleaned.
func workingDir(img ocispec.ImageConfig, opts RunOptions) (string, error) {
	wd := opts.WorkingDir
	if wd == "" {
		wd = img.WorkingDir
	}
	if wd == "" {
		return "/", nil
	}
	if !path.IsAbs(wd) {
		return "", invalidf("the working directory '%s' is invalid, it needs to be an absolute path", wd)
	}
	return path.Clean(wd), nil
}

// envKey returns the variable name of an env entry and whether it has a
// value ("KEY=..." rather than a bare "KEY").
func envKey(e string) (string, bool) {
	k, _, ok := strings.Cut(e, "=")
	return k, ok
}

// buildEnv merges the environment the way Docker does: the run's
// entries, then the image's entries whose keys the run does not set,
// laid over PATH/HOSTNAME/TERM defaults; a bare KEY removes KEY. HOME is
// appended last when nothing set it.
func buildEnv(img ocispec.ImageConfig, opts RunOptions, home string) ([]string, error) {
	runKeys := map[string]bool{}
	var merged []string
	for _, e := range opts.Env {
		k, _ := envKey(e)
		if k == "" || strings.ContainsRune(k, 0) {
			return nil, invalidf("invalid environment variable: %q", e)
		}
		if runKeys[k] {
			// A later -e for the same key wins, in the first one's place.
			for i, m := range merged {
				if mk, _ := envKey(m); mk == k {
					merged[i] = e
				}
			}
			continue
		}
		runKeys[k] = true
		merged = append(merged, e)
	}
	for _, e := range img.Env {
		if k, _ := envKey(e); k != "" && !runKeys[k] {
			merged = append(merged, e)
		}
	}

	env := []string{"PATH=" + DefaultPathEnv}
	if opts.Hostname != "" {
		env = append(env, "HOSTNAME="+opts.Hostname)
	}
	if opts.Tty {
		env = append(env, "TERM=xterm")
	}
	for _, e := range merged {
		k, hasValue := envKey(e)
		i := slices.IndexFunc(env, func(d string) bool { dk, _ := envKey(d); return dk == k })
		switch {
		case !hasValue && i >= 0:
			env = slices.Delete(env, i, i+1)
		case !hasValue:
			// Unsetting a variable that is not set: nothing to do.
		case i >= 0:
			env[i] = e
		default:
			env = append(env, e)
		}
	}
	if !slices.ContainsFunc(env, func(e string) bool { k, _ := envKey(e); return k == "HOME" }) {
		if home == "" {
			home = "/"
		}
		env = append(env, "HOME="+home)
	}
	return env, nil
}

// tweakCapabilities applies Docker's --cap-add/--cap-drop rules to
// DefaultCapabilities. available is every capability the caller holds;
// it is what "ALL" and Privileged mean, and a named capability outside
// it is rejected (the OCI runtime could not grant it).
func tweakCapabilities(available []string, opts RunOptions) ([]string, error) {
	if opts.Privileged {
		return slices.Clone(available), nil
	}
	if len(opts.CapAdd) == 0 && len(opts.CapDrop) == 0 {
		return DefaultCapabilities(), nil
	}
	normalize := func(list []string) ([]string, error) {
		var out []string
		for _, c := range list {
			n, ok := normalizeCapability(c)
			if !ok {
				return nil, invalidf("unknown capability: %q", n)
			}
			if n != "ALL" && !slices.Contains(available, n) {
				return nil, invalidf("capability not supported by your kernel or not available in the current environment: %q", n)
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	drop, err := normalize(opts.CapDrop)
	if err != nil {
		return nil, err
	}
	add, err := normalize(opts.CapAdd)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range available {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range add {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

// buildRlimits turns ulimits into RLIMIT_* entries; a later entry for
// the same name replaces an earlier one.
func buildRlimits(ulimits []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		name := strings.ToLower(u.Name)
		if !ulimitNames[name] {
			return nil, invalidf("invalid ulimit type: %s", u.Name)
		}
		if u.Soft > u.Hard {
			return nil, invalidf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard)
		}
		r := specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: u.Soft, Hard: u.Hard}
		if i := slices.IndexFunc(out, func(o specs.POSIXRlimit) bool { return o.Type == r.Type }); i >= 0 {
			out[i] = r
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// buildMounts lays the user's mounts over DefaultMounts as Docker does.
func buildMounts(opts RunOptions) ([]specs.Mount, error) {
	user := make([]specs.Mount, len(opts.Mounts))
	dests := map[string]bool{}
	for i, m := range opts.Mounts {
		if !path.IsAbs(m.Destination) {
			return nil, invalidf("invalid mount destination %q: must be an absolute path", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		m.Options = slices.Clone(m.Options)
		user[i] = m
		dests[m.Destination] = true
	}
	// Parents before children: order by path depth, stably.
	sort.SliceStable(user, func(i, j int) bool {
		return depth(user[i].Destination) < depth(user[j].Destination)
	})

	var out []specs.Mount
	for _, m := range DefaultMounts(opts.ShmSize) {
		if dests[m.Destination] || (dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		if opts.ReadOnlyRootfs && !slices.Contains([]string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}, m.Destination) &&
			!slices.Contains(m.Options, "ro") {
			m.Options = append(m.Options, "ro")
		}
		if opts.Privileged && (m.Destination == "/sys" || m.Type == "cgroup") {
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return o == "ro" })
		}
		out = append(out, m)
	}
	return append(out, user...), nil
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// buildNamespaces returns the namespaces in Docker's order and whether
// the network namespace is the host's.
func buildNamespaces(network string, cgroup2 bool) ([]specs.LinuxNamespace, bool, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	hostNet := false
	switch {
	case network == "" || network == "none":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case network == "host":
		hostNet = true
	case path.IsAbs(network):
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path.Clean(network)})
	default:
		return nil, false, invalidf("invalid network namespace %q: want \"\", \"host\" or an absolute path", network)
	}
	ns = append(ns,
		specs.LinuxNamespace{Type: specs.UTSNamespace},
		specs.LinuxNamespace{Type: specs.PIDNamespace},
		specs.LinuxNamespace{Type: specs.IPCNamespace},
	)
	if cgroup2 {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return ns, hostNet, nil
}

// setResources applies --memory, --memory-swap, --cpus and --pids-limit
// (cgroup limits, Docker's units: bytes, billionths of a CPU over a
// 100 ms period).
func setResources(r *specs.LinuxResources, opts RunOptions) error {
	if err := ValidateResources(opts); err != nil {
		return err
	}
	if opts.Memory > 0 {
		r.Memory = &specs.LinuxMemory{Limit: &opts.Memory}
		swap := opts.MemorySwap
		if swap == 0 {
			swap = 2 * opts.Memory
		}
		r.Memory.Swap = &swap
	}
	if opts.NanoCPUs > 0 {
		period := uint64(100000)
		quota := opts.NanoCPUs * int64(period) / 1e9
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	if opts.PidsLimit != 0 {
		limit := opts.PidsLimit
		if limit < 0 {
			limit = -1
		}
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return nil
}
