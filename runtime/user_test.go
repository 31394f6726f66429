package runtime

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment line

daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
dup:x:1002:1002::/first:/bin/sh
dup:x:1003:1003::/second:/bin/sh
nohome:x:1004:1004
broken:x:notanumber:5::/x:/bin/sh
+nisuser
`

const testGroup = `root:x:0:
daemon:x:1:
alice:x:1000:
bob:x:1001:
staff:x:50:alice,bob
audio:x:29:alice
wheel:x:10: root , alice
`

// writeRootfs creates a rootfs with the given /etc files (nil = absent).
func writeRootfs(t *testing.T, passwd, group *string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != nil {
		if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(*passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if group != nil {
		if err := os.WriteFile(filepath.Join(root, "etc/group"), []byte(*group), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func ptr[T any](v T) *T { return &v }

func TestResolveUser(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	tests := []struct {
		spec    string
		want    ExecUser
		wantErr string // substring; the error must be ErrInvalidArgument
	}{
		{"", ExecUser{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}, Home: "/root"}, ""},
		{"root", ExecUser{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}, Home: "/root"}, ""},
		{"alice", ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 29, 10}, Home: "/home/alice"}, ""},
		{"1000", ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50, 29, 10}, Home: "/home/alice"}, ""},
		{"bob", ExecUser{UID: 1001, GID: 1001, AdditionalGids: []uint32{1001, 50}, Home: "/home/bob"}, ""},
		{"alice:staff", ExecUser{UID: 1000, GID: 50, AdditionalGids: []uint32{50}, Home: "/home/alice"}, ""},
		{"alice:29", ExecUser{UID: 1000, GID: 29, AdditionalGids: []uint32{29}, Home: "/home/alice"}, ""},
		{"alice:4242", ExecUser{UID: 1000, GID: 4242, AdditionalGids: []uint32{4242}, Home: "/home/alice"}, ""},
		{"1000:1001", ExecUser{UID: 1000, GID: 1001, AdditionalGids: []uint32{1001}, Home: "/home/alice"}, ""},
		{"4242", ExecUser{UID: 4242, GID: 0, AdditionalGids: []uint32{0}, Home: "/"}, ""},
		{"4242:4343", ExecUser{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}, Home: "/"}, ""},
		{"4242:staff", ExecUser{UID: 4242, GID: 50, AdditionalGids: []uint32{50}, Home: "/"}, ""},
		{"dup", ExecUser{UID: 1002, GID: 1002, AdditionalGids: []uint32{1002}, Home: "/first"}, ""},
		{"nohome", ExecUser{UID: 1004, GID: 1004, AdditionalGids: []uint32{1004}, Home: "/"}, ""},
		{"nobody", ExecUser{}, "unable to find user nobody: no matching entries in passwd file"},
		{"broken", ExecUser{}, "unable to find user broken: no matching entries in passwd file"},
		{"alice:nogroup", ExecUser{}, "unable to find group nogroup: no matching entries in group file"},
		{"-1", ExecUser{}, "uids and gids must be in range"},
		{"2147483648", ExecUser{}, "uids and gids must be in range"},
		{"1000:-5", ExecUser{}, "uids and gids must be in range"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ResolveUser(rootfs, tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ResolveUser(%q) error = %v, want invalid argument containing %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveUser(%q): %v", tt.spec, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ResolveUser(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestResolveUserExactDockerMessage(t *testing.T) {
	rootfs := writeRootfs(t, ptr(testPasswd), ptr(testGroup))
	_, err := ResolveUser(rootfs, "nobody")
	if err == nil || err.Error() != "unable to find user nobody: no matching entries in passwd file" {
		t.Fatalf("error = %v", err)
	}
}

func TestResolveUserMissingFiles(t *testing.T) {
	rootfs := writeRootfs(t, nil, nil)
	got, err := ResolveUser(rootfs, "")
	if err != nil || !reflect.DeepEqual(got, ExecUser{AdditionalGids: []uint32{0}, Home: "/"}) {
		t.Fatalf(`ResolveUser("") = %+v, %v`, got, err)
	}
	got, err = ResolveUser(rootfs, "123:456")
	if err != nil || !reflect.DeepEqual(got, ExecUser{UID: 123, GID: 456, AdditionalGids: []uint32{456}, Home: "/"}) {
		t.Fatalf(`ResolveUser("123:456") = %+v, %v`, got, err)
	}
	if _, err := ResolveUser(rootfs, "alice"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf(`ResolveUser("alice") error = %v, want invalid argument`, err)
	}
	if _, err := ResolveUser(rootfs, "1:staff"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf(`ResolveUser("1:staff") error = %v, want invalid argument`, err)
	}
}

func TestResolveUserMissingRootfs(t *testing.T) {
	_, err := ResolveUser(filepath.Join(t.TempDir(), "nope"), "")
	if !errdefs.IsNotFound(err) {
		t.Fatalf("error = %v, want not found", err)
	}
}

// A symlinked /etc/passwd is resolved inside the rootfs, never on the host.
func TestResolveUserSymlinkConfined(t *testing.T) {
	outside := t.TempDir()
	hostPasswd := filepath.Join(outside, "passwd")
	if err := os.WriteFile(hostPasswd, []byte("evil:x:666:666::/evil:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, target := range []string{
		hostPasswd, // absolute, names a host file
		"../../../../../../../../../.." + hostPasswd, // relative, climbs out
	} {
		rootfs := writeRootfs(t, nil, nil)
		if err := os.Symlink(target, filepath.Join(rootfs, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		if _, err := ResolveUser(rootfs, "evil"); !errdefs.IsInvalidArgument(err) {
			t.Errorf("symlink to %s: ResolveUser(evil) error = %v, want the user not found", target, err)
		}
		// The same path inside the rootfs is what the link means.
		inRoot := filepath.Join(rootfs, hostPasswd)
		if err := os.MkdirAll(filepath.Dir(inRoot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(inRoot, []byte("good:x:42:43::/good:/bin/sh\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ResolveUser(rootfs, "good")
		if err != nil || got.UID != 42 || got.GID != 43 || got.Home != "/good" {
			t.Errorf("symlink to %s: ResolveUser(good) = %+v, %v", target, got, err)
		}
	}
}

func TestResolveUserSymlinkLoop(t *testing.T) {
	rootfs := writeRootfs(t, nil, nil)
	if err := os.Symlink("/etc/passwd", filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	// A loop reads as a missing file: numeric users still work.
	if got, err := ResolveUser(rootfs, "7"); err != nil || got.UID != 7 {
		t.Fatalf("ResolveUser(7) = %+v, %v", got, err)
	}
	if _, err := ResolveUser(rootfs, "x"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("ResolveUser(x) error = %v", err)
	}
}
