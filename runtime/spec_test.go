package runtime

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep", "-x"}, Cmd: []string{"cmd", "arg"}}
	cmdOnly := ocispec.ImageConfig{Cmd: []string{"sh"}}
	tests := []struct {
		name string
		img  ocispec.ImageConfig
		opts RunOptions
		want []string
	}{
		{"image entrypoint and cmd", img, RunOptions{}, []string{"/ep", "-x", "cmd", "arg"}},
		{"run args replace cmd", img, RunOptions{Cmd: []string{"a", "b"}}, []string{"/ep", "-x", "a", "b"}},
		{"entrypoint clears image cmd", img, RunOptions{Entrypoint: []string{"/new"}, EntrypointSet: true}, []string{"/new"}},
		{"entrypoint plus run args", img, RunOptions{Entrypoint: []string{"/new"}, EntrypointSet: true, Cmd: []string{"z"}}, []string{"/new", "z"}},
		{`entrypoint "" clears both`, img, RunOptions{Entrypoint: []string{""}, EntrypointSet: true, Cmd: []string{"echo", "hi"}}, []string{"echo", "hi"}},
		{"empty entrypoint slice clears both", img, RunOptions{EntrypointSet: true, Cmd: []string{"echo"}}, []string{"echo"}},
		{"cmd only image", cmdOnly, RunOptions{}, []string{"sh"}},
		{"cmd only image with args", cmdOnly, RunOptions{Cmd: []string{"ls", "-l"}}, []string{"ls", "-l"}},
		{"entrypoint only image", ocispec.ImageConfig{Entrypoint: []string{"/ep"}}, RunOptions{}, []string{"/ep"}},
		{"empty image, run args", ocispec.ImageConfig{}, RunOptions{Cmd: []string{"true"}}, []string{"true"}},
		{"entrypoint unset flag ignores field", img, RunOptions{Entrypoint: []string{"/ignored"}}, []string{"/ep", "-x", "cmd", "arg"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Args(tt.img, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestArgsNoCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		img  ocispec.ImageConfig
		opts RunOptions
	}{
		{"empty image", ocispec.ImageConfig{}, RunOptions{}},
		{`entrypoint "" and no args`, ocispec.ImageConfig{Cmd: []string{"sh"}}, RunOptions{Entrypoint: []string{""}, EntrypointSet: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Args(tt.img, tt.opts)
			if !errdefs.IsInvalidArgument(err) || err.Error() != "no command specified" {
				t.Fatalf("error = %v, want invalid argument \"no command specified\"", err)
			}
		})
	}
}

func TestArgsDoesNotAliasInputs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: make([]string, 1, 10), Cmd: []string{"c"}}
	img.Entrypoint[0] = "/ep"
	got, _ := Args(img, RunOptions{})
	got[0] = "changed"
	if img.Entrypoint[0] != "/ep" {
		t.Fatal("Args aliased the image's entrypoint")
	}
}

func TestBuildEnv(t *testing.T) {
	tests := []struct {
		name string
		img  []string
		opts RunOptions
		home string
		want []string
	}{
		{"defaults", nil, RunOptions{}, "/root", []string{"PATH=" + DefaultPathEnv, "HOME=/root"}},
		{"hostname and tty", nil, RunOptions{Hostname: "abc123", Tty: true}, "/",
			[]string{"PATH=" + DefaultPathEnv, "HOSTNAME=abc123", "TERM=xterm", "HOME=/"}},
		{"image PATH replaces default in place", []string{"A=1", "PATH=/img"}, RunOptions{Hostname: "h"}, "/root",
			[]string{"PATH=/img", "HOSTNAME=h", "A=1", "HOME=/root"}},
		{"run overrides image by key, value with =", []string{"A=1", "B=2"}, RunOptions{Env: []string{"B=x=y", "C=3"}}, "/",
			[]string{"PATH=" + DefaultPathEnv, "B=x=y", "C=3", "A=1", "HOME=/"}},
		{"bare key unsets image var", []string{"A=1", "B=2"}, RunOptions{Env: []string{"A"}}, "/",
			[]string{"PATH=" + DefaultPathEnv, "B=2", "HOME=/"}},
		{"bare key unsets default", nil, RunOptions{Env: []string{"PATH"}, Tty: true}, "/",
			[]string{"TERM=xterm", "HOME=/"}},
		{"run overrides TERM and HOSTNAME", nil, RunOptions{Tty: true, Hostname: "h", Env: []string{"TERM=dumb", "HOSTNAME=other"}}, "/",
			[]string{"PATH=" + DefaultPathEnv, "HOSTNAME=other", "TERM=dumb", "HOME=/"}},
		{"HOME from image wins over passwd", []string{"HOME=/img"}, RunOptions{}, "/root",
			[]string{"PATH=" + DefaultPathEnv, "HOME=/img"}},
		{"HOME from run wins", []string{"HOME=/img"}, RunOptions{Env: []string{"HOME=/run"}}, "/root",
			[]string{"PATH=" + DefaultPathEnv, "HOME=/run"}},
		{"later duplicate run key wins", nil, RunOptions{Env: []string{"A=1", "B=2", "A=3"}}, "/",
			[]string{"PATH=" + DefaultPathEnv, "A=3", "B=2", "HOME=/"}},
		{"empty value kept", []string{"A=1"}, RunOptions{Env: []string{"A="}}, "/",
			[]string{"PATH=" + DefaultPathEnv, "A=", "HOME=/"}},
		{"empty home means /", nil, RunOptions{}, "", []string{"PATH=" + DefaultPathEnv, "HOME=/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildEnv(ocispec.ImageConfig{Env: tt.img}, tt.opts, tt.home)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("env = %q\nwant  %q", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"=x", "", "A\x00B=1"} {
		if _, err := buildEnv(ocispec.ImageConfig{}, RunOptions{Env: []string{bad}}, "/"); !errdefs.IsInvalidArgument(err) {
			t.Errorf("env %q: error = %v, want invalid argument", bad, err)
		}
	}
}

func TestWorkingDir(t *testing.T) {
	tests := []struct {
		img, run, want string
		bad            bool
	}{
		{"", "", "/", false},
		{"/app", "", "/app", false},
		{"/app", "/srv/x/", "/srv/x", false},
		{"", "/a/../b", "/b", false},
		{"/app", "rel", "", true},
		{"rel", "", "", true},
		{"./x", "", "", true},
	}
	for _, tt := range tests {
		got, err := workingDir(ocispec.ImageConfig{WorkingDir: tt.img}, RunOptions{WorkingDir: tt.run})
		if tt.bad {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("workingDir(%q, %q) error = %v, want invalid argument", tt.img, tt.run, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("workingDir(%q, %q) = %q, %v, want %q", tt.img, tt.run, got, err, tt.want)
		}
	}
}

func TestTweakCapabilities(t *testing.T) {
	all := slices.Clone(knownCapabilities)
	noSysResource := slices.DeleteFunc(slices.Clone(knownCapabilities), func(c string) bool { return c == "CAP_SYS_RESOURCE" })
	def := DefaultCapabilities()
	without := func(drop ...string) []string {
		return slices.DeleteFunc(DefaultCapabilities(), func(c string) bool { return slices.Contains(drop, c) })
	}
	tests := []struct {
		name      string
		available []string
		opts      RunOptions
		want      []string
	}{
		{"default", all, RunOptions{}, def},
		{"add with and without prefix, any case", all, RunOptions{CapAdd: []string{"net_admin", "CAP_SYS_PTRACE", "cap_sys_time"}},
			append(DefaultCapabilities(), "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_TIME")},
		{"drop", all, RunOptions{CapDrop: []string{"chown", "Cap_Kill"}}, without("CAP_CHOWN", "CAP_KILL")},
		{"add existing is no duplicate", all, RunOptions{CapAdd: []string{"CHOWN"}}, def},
		{"drop ALL then add", all, RunOptions{CapDrop: []string{"all"}, CapAdd: []string{"NET_BIND_SERVICE"}}, []string{"CAP_NET_BIND_SERVICE"}},
		{"drop ALL only", all, RunOptions{CapDrop: []string{"ALL"}}, []string{}},
		{"add ALL drop some", noSysResource, RunOptions{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}},
			slices.DeleteFunc(slices.Clone(noSysResource), func(c string) bool { return c == "CAP_SYS_ADMIN" })},
		{"add ALL wins over drop ALL", noSysResource, RunOptions{CapAdd: []string{"ALL"}, CapDrop: []string{"ALL"}}, noSysResource},
		{"privileged is everything available", noSysResource, RunOptions{Privileged: true, CapDrop: []string{"ALL"}}, noSysResource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tweakCapabilities(tt.available, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("caps = %q\nwant   %q", got, tt.want)
			}
		})
	}

	for _, tt := range []struct {
		opts RunOptions
		msg  string
	}{
		{RunOptions{CapAdd: []string{"FLY"}}, `unknown capability: "CAP_FLY"`},
		{RunOptions{CapDrop: []string{"CAP_"}}, `unknown capability: "CAP_"`},
		{RunOptions{CapAdd: []string{"sys_resource"}}, `capability not supported by your kernel or not available in the current environment: "CAP_SYS_RESOURCE"`},
	} {
		_, err := tweakCapabilities(noSysResource, tt.opts)
		if !errdefs.IsInvalidArgument(err) || err.Error() != tt.msg {
			t.Errorf("%+v: error = %v, want invalid argument %q", tt.opts, err, tt.msg)
		}
	}
}

func TestBuildRlimits(t *testing.T) {
	got, err := buildRlimits([]Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "NPROC", Soft: 5, Hard: 5}, {Name: "nofile", Soft: 10, Hard: 20}})
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20}, {Type: "RLIMIT_NPROC", Soft: 5, Hard: 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rlimits = %+v, want %+v", got, want)
	}
	if got, err := buildRlimits(nil); err != nil || got != nil {
		t.Errorf("no ulimits: %+v, %v; want none (inherit the runtime's)", got, err)
	}
	for _, bad := range []Ulimit{{Name: "bogus", Soft: 1, Hard: 1}, {Name: "nofile", Soft: 2, Hard: 1}, {Name: "RLIMIT_NOFILE", Soft: 1, Hard: 1}} {
		if _, err := buildRlimits([]Ulimit{bad}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: error = %v, want invalid argument", bad, err)
		}
	}
}

func mountDests(ms []specs.Mount) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Destination)
	}
	return out
}

func findMount(ms []specs.Mount, dest string) *specs.Mount {
	for i := range ms {
		if ms[i].Destination == dest {
			return &ms[i]
		}
	}
	return nil
}

func TestBuildMounts(t *testing.T) {
	defaults := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}

	got, err := buildMounts(RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mountDests(got), defaults) {
		t.Fatalf("default mounts = %q", mountDests(got))
	}
	if shm := findMount(got, "/dev/shm"); !slices.Contains(shm.Options, "size=67108864") {
		t.Errorf("/dev/shm options = %q, want 64m", shm.Options)
	}
	for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
		if !slices.Contains(findMount(got, d).Options, "ro") {
			t.Errorf("%s not read-only by default", d)
		}
	}

	user := []specs.Mount{
		{Destination: "/data/sub", Type: "bind", Source: "/h/b", Options: []string{"rbind"}},
		{Destination: "/data/", Type: "bind", Source: "/h/a", Options: []string{"rbind"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/h/shm", Options: []string{"rbind"}},
	}
	got, err = buildMounts(RunOptions{Mounts: user, ShmSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/data", "/data/sub", "/dev/shm"}
	if !reflect.DeepEqual(mountDests(got), want) {
		t.Errorf("mounts = %q, want %q", mountDests(got), want)
	}
	if m := findMount(got, "/dev/shm"); m.Source != "/h/shm" {
		t.Errorf("user /dev/shm did not replace the default: %+v", m)
	}

	got, _ = buildMounts(RunOptions{Mounts: []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind"}}}})
	if want := []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"}; !reflect.DeepEqual(mountDests(got), want) {
		t.Errorf("with user /dev: mounts = %q, want %q", mountDests(got), want)
	}

	got, _ = buildMounts(RunOptions{Privileged: true})
	for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
		if slices.Contains(findMount(got, d).Options, "ro") {
			t.Errorf("privileged: %s still read-only", d)
		}
	}

	ro := []specs.Mount{{Destination: "/data", Type: "bind", Source: "/h", Options: []string{"rbind"}}}
	got, _ = buildMounts(RunOptions{ReadOnlyRootfs: true, Mounts: ro})
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm", "/data"} {
		if slices.Contains(findMount(got, d).Options, "ro") {
			t.Errorf("read-only rootfs: %s made read-only", d)
		}
	}
	if n := strings.Count(strings.Join(findMount(got, "/sys").Options, ","), "ro"); n != 1 {
		t.Errorf("/sys has %d ro options", n)
	}

	if _, err := buildMounts(RunOptions{Mounts: []specs.Mount{{Destination: "rel"}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative destination: error = %v", err)
	}
	// The caller's mounts are not modified.
	if user[1].Destination != "/data/" {
		t.Error("buildMounts modified the caller's mounts")
	}
}

func TestBuildNamespaces(t *testing.T) {
	type nsList = []specs.LinuxNamespace
	base := func(net ...specs.LinuxNamespace) nsList {
		out := nsList{{Type: specs.MountNamespace}}
		out = append(out, net...)
		return append(out, nsList{{Type: specs.UTSNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}}...)
	}
	tests := []struct {
		network string
		cgroup2 bool
		want    nsList
		hostNet bool
	}{
		{"", false, base(specs.LinuxNamespace{Type: specs.NetworkNamespace}), false},
		{"none", false, base(specs.LinuxNamespace{Type: specs.NetworkNamespace}), false},
		{"host", false, base(), true},
		{"/var/run/netns/x", false, base(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"}), false},
		{"", true, append(base(specs.LinuxNamespace{Type: specs.NetworkNamespace}), specs.LinuxNamespace{Type: specs.CgroupNamespace}), false},
	}
	for _, tt := range tests {
		got, hostNet, err := buildNamespaces(tt.network, tt.cgroup2)
		if err != nil || hostNet != tt.hostNet || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("buildNamespaces(%q, %v) = %+v, %v, %v", tt.network, tt.cgroup2, got, hostNet, err)
		}
	}
	if _, _, err := buildNamespaces("bridge", false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad network: error = %v", err)
	}
}

// fakeHost is a host with every capability but CAP_SYS_RESOURCE, cgroup
// v1, and a recognisable seccomp profile.
func fakeHost() *hostInfo {
	return &hostInfo{
		caps:         slices.DeleteFunc(slices.Clone(knownCapabilities), func(c string) bool { return c == "CAP_SYS_RESOURCE" }),
		extraMasked:  []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"},
		sysctlExists: func(string) bool { return true },
		devices: func() ([]specs.LinuxDevice, error) {
			return []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8}}, nil
		},
		seccomp: func(s *specs.Spec) (*specs.LinuxSeccomp, error) {
			if s.Process.Capabilities == nil || len(s.Process.Capabilities.Bounding) == 0 {
				return nil, errors.New("seccomp computed before capabilities")
			}
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil
		},
	}
}

func TestBuildSpec(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	img := ocispec.ImageConfig{
		User:       "alice",
		Env:        []string{"PATH=/opt/bin:/bin", "LANG=C.UTF-8"},
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		WorkingDir: "/work",
	}
	s, err := buildSpec(rootfs, img, RunOptions{Hostname: "c0ffee", Env: []string{"X=1"}, CgroupsPath: "/berth/c0ffee", NoNewPrivileges: true}, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != ociVersion || s.Root.Path != rootfs || s.Root.Readonly || s.Hostname != "c0ffee" {
		t.Errorf("version/root/hostname: %q %+v %q", s.Version, s.Root, s.Hostname)
	}
	p := s.Process
	if !reflect.DeepEqual(p.Args, []string{"/bin/sh", "-c", "echo hi"}) || p.Cwd != "/work" || p.Terminal || !p.NoNewPrivileges {
		t.Errorf("process: %+v", p)
	}
	if want := (specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 29, 10}}); !reflect.DeepEqual(p.User, want) {
		t.Errorf("user = %+v, want %+v", p.User, want)
	}
	if want := []string{"PATH=/opt/bin:/bin", "HOSTNAME=c0ffee", "X=1", "LANG=C.UTF-8", "HOME=/home/alice"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %q, want %q", p.Env, want)
	}
	c := p.Capabilities
	if !reflect.DeepEqual(c.Bounding, DefaultCapabilities()) || !reflect.DeepEqual(c.Effective, c.Bounding) ||
		!reflect.DeepEqual(c.Permitted, c.Bounding) || c.Inheritable != nil || c.Ambient != nil {
		t.Errorf("capabilities = %+v", c)
	}
	if p.Rlimits != nil {
		t.Errorf("rlimits = %+v, want none", p.Rlimits)
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 0 {
		t.Errorf("oomScoreAdj = %v", p.OOMScoreAdj)
	}
	l := s.Linux
	if l.CgroupsPath != "/berth/c0ffee" {
		t.Errorf("cgroupsPath = %q", l.CgroupsPath)
	}
	if want := append(DefaultMaskedPaths(), "/sys/devices/system/cpu/cpu0/thermal_throttle"); !reflect.DeepEqual(l.MaskedPaths, want) {
		t.Errorf("masked = %q", l.MaskedPaths)
	}
	if !slices.Contains(l.MaskedPaths, "/proc/kcore") || !reflect.DeepEqual(l.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("masked/readonly = %q / %q", l.MaskedPaths, l.ReadonlyPaths)
	}
	if !reflect.DeepEqual(l.Resources.Devices, DefaultDeviceRules()) || l.Devices != nil {
		t.Errorf("devices = %+v / %+v", l.Resources.Devices, l.Devices)
	}
	if l.Seccomp == nil || l.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp = %+v", l.Seccomp)
	}
	if want := map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}; !reflect.DeepEqual(l.Sysctl, want) {
		t.Errorf("sysctl = %v", l.Sysctl)
	}
	if !slices.ContainsFunc(l.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace && n.Path == "" }) {
		t.Errorf("namespaces = %+v, want a new network namespace", l.Namespaces)
	}
}

func TestBuildSpecOptions(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	img := ocispec.ImageConfig{Cmd: []string{"sh"}, User: "alice"}

	// --user overrides the image's USER; tty; read-only; ulimits; host network.
	s, err := buildSpec(rootfs, img, RunOptions{
		User: "4242:4343", Tty: true, ReadOnlyRootfs: true, NetworkNamespace: "host",
		Ulimits: []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}}, Sysctls: map[string]string{"kernel.msgmax": "1"},
	}, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.User.UID != 4242 || s.Process.User.GID != 4343 || !s.Process.Terminal || !s.Root.Readonly {
		t.Errorf("user/tty/readonly: %+v %v %v", s.Process.User, s.Process.Terminal, s.Root.Readonly)
	}
	if !slices.Contains(s.Process.Env, "TERM=xterm") || !slices.Contains(s.Process.Env, "HOME=/") {
		t.Errorf("env = %q", s.Process.Env)
	}
	if !reflect.DeepEqual(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}) {
		t.Errorf("rlimits = %+v", s.Process.Rlimits)
	}
	if !reflect.DeepEqual(s.Linux.Sysctl, map[string]string{"kernel.msgmax": "1"}) {
		t.Errorf("host network: sysctl = %v, want only the user's", s.Linux.Sysctl)
	}
	if slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace }) {
		t.Errorf("host network: namespaces = %+v", s.Linux.Namespaces)
	}

	// Privileged: every available capability, host devices, no confinement.
	s, err = buildSpec(rootfs, img, RunOptions{Privileged: true, CapDrop: []string{"ALL"}}, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Process.Capabilities.Bounding, fakeHost().caps) {
		t.Errorf("privileged caps = %q", s.Process.Capabilities.Bounding)
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
		t.Errorf("privileged: masked %q readonly %q seccomp %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp)
	}
	if len(s.Linux.Devices) != 1 || !reflect.DeepEqual(s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}) {
		t.Errorf("privileged devices: %+v / %+v", s.Linux.Devices, s.Linux.Resources.Devices)
	}

	// The image's unknown USER fails the way Docker fails.
	_, err = buildSpec(rootfs, ocispec.ImageConfig{Cmd: []string{"sh"}, User: "ghost"}, RunOptions{}, fakeHost())
	if !errdefs.IsInvalidArgument(err) || err.Error() != "unable to find user ghost: no matching entries in passwd file" {
		t.Errorf("unknown user: %v", err)
	}
}

func TestBuildSpecErrors(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	img := ocispec.ImageConfig{Cmd: []string{"sh"}}
	tests := []struct {
		name   string
		rootfs string
		img    ocispec.ImageConfig
		opts   RunOptions
		is     func(error) bool
	}{
		{"init without binary", rootfs, img, RunOptions{Init: true}, errdefs.IsInvalidArgument},
		{"memory below 6MB", rootfs, img, RunOptions{Memory: 1 << 20}, errdefs.IsInvalidArgument},
		{"swap below memory", rootfs, img, RunOptions{Memory: 64 << 20, MemorySwap: 32 << 20}, errdefs.IsInvalidArgument},
		{"swap without memory", rootfs, img, RunOptions{MemorySwap: 64 << 20}, errdefs.IsInvalidArgument},
		{"cpus too small", rootfs, img, RunOptions{NanoCPUs: 1e6}, errdefs.IsInvalidArgument},
		{"relative rootfs", "rootfs", img, RunOptions{}, errdefs.IsInvalidArgument},
		{"no command", rootfs, ocispec.ImageConfig{}, RunOptions{}, errdefs.IsInvalidArgument},
		{"relative workdir", rootfs, img, RunOptions{WorkingDir: "app"}, errdefs.IsInvalidArgument},
		{"unknown user", rootfs, img, RunOptions{User: "ghost"}, errdefs.IsInvalidArgument},
		{"unknown cap", rootfs, img, RunOptions{CapAdd: []string{"NOPE"}}, errdefs.IsInvalidArgument},
		{"bad ulimit", rootfs, img, RunOptions{Ulimits: []Ulimit{{Name: "x"}}}, errdefs.IsInvalidArgument},
		{"bad network", rootfs, img, RunOptions{NetworkNamespace: "bridge"}, errdefs.IsInvalidArgument},
		{"bad env", rootfs, img, RunOptions{Env: []string{"=1"}}, errdefs.IsInvalidArgument},
		{"missing rootfs", rootfs + "/nope", img, RunOptions{}, errdefs.IsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := buildSpec(tt.rootfs, tt.img, tt.opts, fakeHost())
			if err == nil || !tt.is(err) || s != nil {
				t.Fatalf("buildSpec = %v, %v", s, err)
			}
		})
	}
}

// Spec on this machine: the real seccomp profile is present and only
// allows syscalls the default capabilities need.
func TestSpecRealHost(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	s, err := Spec(rootfs, ocispec.ImageConfig{Cmd: []string{"sh"}}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Fatalf("seccomp = %+v", s.Linux.Seccomp)
	}
	allowed := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	if !allowed(s, "read") || allowed(s, "mount") {
		t.Errorf("default profile: read allowed=%v, mount allowed=%v", allowed(s, "read"), allowed(s, "mount"))
	}
	// With CAP_SYS_ADMIN, Docker's profile allows mount.
	if slices.Contains(currentHost().caps, "CAP_SYS_ADMIN") {
		s, err = Spec(rootfs, ocispec.ImageConfig{Cmd: []string{"sh"}}, RunOptions{CapAdd: []string{"SYS_ADMIN"}})
		if err != nil {
			t.Fatal(err)
		}
		if !allowed(s, "mount") {
			t.Error("CAP_SYS_ADMIN: mount not allowed by seccomp")
		}
	}
}
