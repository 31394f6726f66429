package runtime

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    DeviceMapping
		wantErr string
	}{
		{in: "/dev/null", want: DeviceMapping{"/dev/null", "/dev/null", "rwm"}},
		{in: "/dev/null:/dev/mynull", want: DeviceMapping{"/dev/null", "/dev/mynull", "rwm"}},
		{in: "/dev/null:r", want: DeviceMapping{"/dev/null", "/dev/null", "r"}},
		{in: "/dev/null:mw", want: DeviceMapping{"/dev/null", "/dev/null", "mw"}},
		{in: "/dev/zero:/dev/z:r", want: DeviceMapping{"/dev/zero", "/dev/z", "r"}},
		{in: "/dev/zero:/dev//z/:wr", want: DeviceMapping{"/dev/zero", "/dev/z", "wr"}},
		{in: "/dev/snd:/dev/snd:rwm", want: DeviceMapping{"/dev/snd", "/dev/snd", "rwm"}},
		// Two fields: the second is a container path unless it is a mode.
		{in: "/dev/null:rwx", wantErr: "rwx is not an absolute path"},
		{in: "/dev/null:dev/x", wantErr: "dev/x is not an absolute path"},
		{in: "/dev/null:/dev/x:rwx", wantErr: "bad mode specified: rwx"},
		{in: "/dev/null:/dev/x:rr", wantErr: "bad mode specified: rr"},
		{in: "/dev/null:/dev/x:", wantErr: "bad mode specified: "},
		{in: "/dev/null:/dev/x:R", wantErr: "bad mode specified: R"},
		{in: "", wantErr: "bad format for path: "},
		{in: ":/dev/x", wantErr: "bad format for path: :/dev/x"},
		{in: "/a:/b:r:x", wantErr: "bad format for path: /a:/b:r:x"},
	} {
		got, err := ParseDevice(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr || !errdefs.IsInvalidArgument(err) {
				t.Errorf("ParseDevice(%q) = %+v, %v; want error %q (invalid argument)", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestValidDevicePermissions(t *testing.T) {
	valid := []string{"r", "w", "m", "rw", "wr", "rwm", "mrw", "mw"}
	invalid := []string{"", "x", "rr", "rwmr", "rwmx", "RW", " r"}
	for _, p := range valid {
		if !validDevicePermissions(p) {
			t.Errorf("%q should be valid", p)
		}
	}
	for _, p := range invalid {
		if validDevicePermissions(p) {
			t.Errorf("%q should be invalid", p)
		}
	}
}

func requireLinuxDevNull(t *testing.T) {
	t.Helper()
	if goruntime.GOOS != "linux" {
		t.Skip("host devices are Linux-only")
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Skip("/dev/null is not a character device here")
	}
}

func TestValidateDevices(t *testing.T) {
	requireLinuxDevNull(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "null-link")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		devs    []DeviceMapping
		wantErr string // substring; "" for success
	}{
		{"none", nil, ""},
		{"device", []DeviceMapping{{"/dev/null", "/dev/mynull", "rw"}}, ""},
		{"defaults", []DeviceMapping{{PathOnHost: "/dev/null"}}, ""},
		{"symlink to device", []DeviceMapping{{link, "/dev/x", "r"}}, ""},
		{"regular file", []DeviceMapping{{file, "/dev/x", "rwm"}}, `error gathering device information while adding custom device "` + file + `": not a device node`},
		{"missing", []DeviceMapping{{filepath.Join(dir, "nope"), "/dev/x", "rwm"}}, "no such file or directory"},
		{"directory without devices", []DeviceMapping{{dir, "/dev/x", "rwm"}}, "not a device node"},
		{"empty host path", []DeviceMapping{{"", "/dev/x", "rwm"}}, "bad format for path"},
		{"relative container path", []DeviceMapping{{"/dev/null", "x", "rwm"}}, "x is not an absolute path"},
		{"bad perms", []DeviceMapping{{"/dev/null", "/dev/x", "rwa"}}, "bad mode specified: rwa"},
		{"second one bad", []DeviceMapping{{"/dev/null", "/dev/x", "r"}, {file, "", ""}}, "not a device node"},
	} {
		err := ValidateDevices(tc.devs)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.IsInvalidArgument(err)):
			t.Errorf("%s: err = %v, want invalid argument containing %q", tc.name, err, tc.wantErr)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: error is not one line: %q", tc.name, err)
		}
	}
}

func TestAddUserDevices(t *testing.T) {
	requireLinuxDevNull(t)
	var null, zero unix.Stat_t
	if unix.Stat("/dev/null", &null) != nil || unix.Stat("/dev/zero", &zero) != nil {
		t.Skip("no /dev/null or /dev/zero")
	}
	opts := RunOptions{Devices: []DeviceMapping{{"/dev/null", "/dev/mynull", ""}, {"/dev/zero", "/dev/z", "r"}}}
	l := &specs.Linux{Resources: &specs.LinuxResources{Devices: DefaultDeviceRules()}}
	if err := addUserDevices(l, opts); err != nil {
		t.Fatal(err)
	}
	if len(l.Devices) != 2 {
		t.Fatalf("devices = %+v", l.Devices)
	}
	for i, want := range []struct {
		path string
		st   unix.Stat_t
	}{{"/dev/mynull", null}, {"/dev/z", zero}} {
		d := l.Devices[i]
		if d.Path != want.path || d.Type != "c" || d.Major != int64(unix.Major(want.st.Rdev)) || d.Minor != int64(unix.Minor(want.st.Rdev)) {
			t.Errorf("device %d = %+v", i, d)
		}
		if d.FileMode == nil || uint32(*d.FileMode) != want.st.Mode&0o777 || d.UID == nil || *d.UID != want.st.Uid || d.GID == nil || *d.GID != want.st.Gid {
			t.Errorf("device %d mode/owner = %v/%v/%v", i, d.FileMode, d.UID, d.GID)
		}
	}
	// The defaults come first (deny all, then allow), the user's rules after.
	rules := l.Resources.Devices
	n := len(DefaultDeviceRules())
	if len(rules) != n+2 || rules[0].Allow {
		t.Fatalf("rules = %+v", rules)
	}
	for i, want := range []struct {
		st     unix.Stat_t
		access string
	}{{null, "rwm"}, {zero, "r"}} {
		r := rules[n+i]
		if !r.Allow || r.Type != "c" || r.Major == nil || *r.Major != int64(unix.Major(want.st.Rdev)) ||
			r.Minor == nil || *r.Minor != int64(unix.Minor(want.st.Rdev)) || r.Access != want.access {
			t.Errorf("rule %d = %+v", n+i, r)
		}
	}

	// Privileged: nodes only for new paths, no extra rules, perms ignored.
	l = &specs.Linux{Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}}
	opts = RunOptions{Privileged: true, Devices: []DeviceMapping{{"/dev/null", "/dev/null", "r"}, {PathOnHost: "/dev/zero"}, {"/dev/zero", "/dev/z", "r"}}}
	if err := addUserDevices(l, opts); err != nil {
		t.Fatal(err)
	}
	if len(l.Devices) != 1 || l.Devices[0].Path != "/dev/z" || len(l.Resources.Devices) != 1 {
		t.Errorf("privileged: devices %+v, rules %+v", l.Devices, l.Resources.Devices)
	}

	// A bad mapping that slipped past validation still fails the spec.
	if err := addUserDevices(&specs.Linux{Resources: &specs.LinuxResources{}}, RunOptions{Devices: []DeviceMapping{{"/dev/null", "rel", ""}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative container path: %v", err)
	}
}

func TestDeviceDirectory(t *testing.T) {
	requireLinuxDevNull(t)
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "a"), unix.S_IFCHR|0o640, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("mknod: %v", err)
	}
	if err := unix.Mknod(filepath.Join(dir, "sub", "b"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 42))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l := &specs.Linux{Resources: &specs.LinuxResources{}}
	if err := addUserDevices(l, RunOptions{Devices: []DeviceMapping{{dir, "/dev/mine", "rw"}}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range l.Devices {
		got = append(got, d.Path+" "+d.Type)
	}
	slices.Sort(got)
	if want := []string{"/dev/mine/a c", "/dev/mine/sub/b b"}; !slices.Equal(got, want) {
		t.Errorf("devices = %q, want %q", got, want)
	}
	if len(l.Resources.Devices) != 2 {
		t.Errorf("rules = %+v", l.Resources.Devices)
	}
	for _, r := range l.Resources.Devices {
		if r.Access != "rw" || r.Major == nil || !(*r.Major == 1 && *r.Minor == 3 && r.Type == "c" || *r.Major == 7 && *r.Minor == 42 && r.Type == "b") {
			t.Errorf("rule = %+v", r)
		}
	}
	if err := ValidateDevices([]DeviceMapping{{dir, "/dev/mine", "rw"}}); err != nil {
		t.Errorf("ValidateDevices(dir) = %v", err)
	}
}

func TestBuildSpecDevices(t *testing.T) {
	requireLinuxDevNull(t)
	rootfs := writeRootfs(t, nil, nil)
	img := ocispec.ImageConfig{Cmd: []string{"/bin/true"}}
	s, err := buildSpec(rootfs, img, RunOptions{Devices: []DeviceMapping{{"/dev/null", "/dev/mynull", "r"}}}, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	rules := s.Linux.Resources.Devices
	if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/mynull" ||
		len(rules) != len(DefaultDeviceRules())+1 || rules[len(rules)-1].Access != "r" {
		t.Errorf("devices %+v, rules %+v", s.Linux.Devices, rules)
	}
	s, err = buildSpec(rootfs, img, RunOptions{Privileged: true, Devices: []DeviceMapping{{"/dev/null", "/dev/mynull", "r"}}}, fakeHost())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Devices) != 2 || s.Linux.Devices[1].Path != "/dev/mynull" || len(s.Linux.Resources.Devices) != 1 {
		t.Errorf("privileged: devices %+v, rules %+v", s.Linux.Devices, s.Linux.Resources.Devices)
	}
	if _, err := buildSpec(rootfs, img, RunOptions{Devices: []DeviceMapping{{PathOnHost: rootfs}}}, fakeHost()); !errdefs.IsInvalidArgument(err) {
		t.Errorf("directory without devices: %v", err)
	}
}
