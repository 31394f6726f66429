package runtime

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// knownCapabilities must be indexed by the kernel's capability numbers.
func TestKnownCapabilityNumbers(t *testing.T) {
	for name, num := range map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_KILL": unix.CAP_KILL, "CAP_NET_RAW": unix.CAP_NET_RAW,
		"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_MKNOD": unix.CAP_MKNOD,
		"CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE, "CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
		"CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
	} {
		if knownCapabilities[num] != name {
			t.Errorf("knownCapabilities[%d] = %s, want %s", num, knownCapabilities[num], name)
		}
	}
	if len(knownCapabilities) != unix.CAP_LAST_CAP+1 {
		t.Errorf("%d known capabilities, want %d", len(knownCapabilities), unix.CAP_LAST_CAP+1)
	}
}

// Docker's default set is CapEff 00000000a80425fb in a root container.
func TestDefaultCapabilitiesMask(t *testing.T) {
	var mask uint64
	for _, c := range DefaultCapabilities() {
		i := slices.Index(knownCapabilities, c)
		if i < 0 {
			t.Fatalf("unknown default capability %s", c)
		}
		mask |= 1 << uint(i)
	}
	if mask != 0xa80425fb {
		t.Errorf("default capability mask = %#x, want 0xa80425fb", mask)
	}
}

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{"chown": "CAP_CHOWN", "CAP_chown": "CAP_CHOWN", "Net_Admin": "CAP_NET_ADMIN", "all": "ALL", "ALL": "ALL"} {
		if got, ok := normalizeCapability(in); !ok || got != want {
			t.Errorf("normalizeCapability(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "CAP_ALL", "CAP_FLY", "chownx"} {
		if _, ok := normalizeCapability(in); ok {
			t.Errorf("normalizeCapability(%q) accepted", in)
		}
	}
}

// hostCapabilities agrees with capget(2) for this process.
func TestHostCapabilitiesMatchesCapget(t *testing.T) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	var want []string
	for i, c := range knownCapabilities {
		if eff&(1<<uint(i)) != 0 {
			want = append(want, c)
		}
	}
	if got := hostCapabilities(); !slices.Equal(got, want) {
		t.Errorf("hostCapabilities = %q\ncapget          = %q", got, want)
	}
}

func TestHostDevices(t *testing.T) {
	devs, err := hostDevices()
	if err != nil {
		t.Fatal(err)
	}
	var null bool
	for _, d := range devs {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 && d.FileMode != nil && *d.FileMode == 0o666 {
			null = true
		}
		if d.Path == "/dev/console" || strings.HasPrefix(d.Path, "/dev/pts/") || strings.HasPrefix(d.Path, "/dev/shm/") {
			t.Errorf("unexpected device %s", d.Path)
		}
		if d.Type != "c" && d.Type != "b" {
			t.Errorf("%s has type %q", d.Path, d.Type)
		}
	}
	if !null {
		t.Errorf("/dev/null (c 1:3 0666) not among %d host devices", len(devs))
	}
}

func TestCgroupNamespaceFollowsHost(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Skip(err)
	}
	if got, want := currentHost().cgroup2, st.Type == unix.CGROUP2_SUPER_MAGIC; got != want {
		t.Errorf("cgroup2 = %v, want %v", got, want)
	}
}
