package testutil

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestFreePortIsBindable(t *testing.T) {
	p := FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d from FreePort not bindable: %v", p, err)
	}
	l.Close()
}

func TestRegistryPushPullSkopeo(t *testing.T) {
	reg := StartRegistry(t)
	if !strings.HasPrefix(reg.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want 127.0.0.1:PORT", reg.Addr)
	}
	img := BusyboxImage(t)
	ref, digest := reg.Push(t, "berth/busybox:test", img)
	if want := reg.Addr + "/berth/busybox:test"; ref != want {
		t.Fatalf("Push ref = %q, want %q", ref, want)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if digest != want.String() {
		t.Fatalf("Push digest = %s, image digest %s", digest, want)
	}

	// Client 1: go-containerregistry reads it back, by tag and by digest.
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(tag, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("remote.Image(%s): %v", ref, err)
	}
	gd, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if gd.String() != digest {
		t.Fatalf("pulled digest %s, pushed %s", gd, digest)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("pulled image does not validate: %v", err)
	}
	byDigest, err := name.NewDigest(reg.Addr+"/berth/busybox@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(byDigest, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("HEAD by digest: %v", err)
	}

	// Client 2: skopeo, an independent implementation.
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (`apt-get install skopeo`)")
	}
	// A private HOME keeps the caller's registries.conf.d and auth files out.
	cmd := exec.CommandContext(t.Context(), skopeo, "inspect", "--tls-verify=false", "docker://"+ref)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("skopeo inspect: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("skopeo inspect: %v", err)
	}
	var info struct {
		Digest       string
		Architecture string
		Os           string
		Layers       []string
		Env          []string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("skopeo output: %v\n%s", err, out)
	}
	if info.Digest != digest {
		t.Errorf("skopeo digest %s, pushed %s", info.Digest, digest)
	}
	if info.Os != "linux" || info.Architecture != runtime.GOARCH {
		t.Errorf("skopeo platform %s/%s, want linux/%s", info.Os, info.Architecture, runtime.GOARCH)
	}
	if len(info.Layers) != 1 {
		t.Errorf("skopeo layers %v, want 1", info.Layers)
	}
}

func TestRegistryStop(t *testing.T) {
	reg := StartRegistry(t)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(reg.URL() + "/v2/")
	if err != nil {
		t.Fatalf("registry not up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", resp.Status)
	}
	pid := reg.cmd.Process.Pid

	reg.Stop()
	reg.Stop() // idempotent

	if _, err := client.Get(reg.URL() + "/v2/"); err == nil {
		t.Fatal("GET /v2/ succeeded after Stop")
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("GET /v2/ after Stop: %v, want connection refused", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("registry pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	// A push to a stopped registry fails rather than hanging.
	tag, _ := name.NewTag(reg.Addr+"/down:x", name.Insecure)
	if err := remote.Write(tag, BusyboxImage(t), remote.WithContext(t.Context())); err == nil {
		t.Fatal("push to stopped registry succeeded")
	}
}

func TestRegistryPortTakenIsReported(t *testing.T) {
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r, err := startRegistry(l.Addr().String(), t.TempDir(), t.TempDir(), "")
	if err == nil {
		r.Stop()
		t.Fatal("registry started on a port that was already bound")
	}
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("err = %v, want errAddrInUse", err)
	}
}

func TestTwoRegistriesAreIndependent(t *testing.T) {
	a, b := StartRegistry(t), StartRegistry(t)
	if a.Addr == b.Addr || a.StorageDir == b.StorageDir {
		t.Fatalf("registries share addr or storage: %+v %+v", a.Addr, b.Addr)
	}
	ref, _ := a.Push(t, "only/in-a:v1", LayeredImage(t, [][]TarEntry{{{Name: "f", Content: []byte("x")}}}, v1.Config{}))
	tagB, _ := name.NewTag(strings.Replace(ref, a.Addr, b.Addr, 1), name.Insecure)
	_, err := remote.Image(tagB, remote.WithContext(t.Context()))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("pull from registry B of an image pushed only to A: %v, want 404", err)
	}
}

func TestBusyboxImageContents(t *testing.T) {
	img := BusyboxImage(t)
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if again := BusyboxImage(t); !sameDigest(t, img, again) {
		t.Fatal("BusyboxImage is not deterministic")
	}
	mt, err := img.MediaType()
	if err != nil || mt != types.OCIManifestSchema1 {
		t.Fatalf("manifest media type %q (%v)", mt, err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d (%v), want 1", len(layers), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if len(cf.Config.Cmd) != 1 || cf.Config.Cmd[0] != "sh" {
		t.Errorf("Cmd = %q", cf.Config.Cmd)
	}
	if len(cf.Config.Env) != 1 || cf.Config.Env[0] != "PATH="+DefaultPath {
		t.Errorf("Env = %q", cf.Config.Env)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("rootfs diff_ids = %v", cf.RootFS.DiffIDs)
	}

	hdrs := map[string]*tar.Header{}
	files := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimSuffix(h.Name, "/")
		hdrs[n] = h
		if h.Typeflag == tar.TypeReg {
			files[n], _ = io.ReadAll(tr)
		}
	}
	host, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if h := hdrs["bin/busybox"]; h == nil || h.Mode&0o111 == 0 || !bytes.Equal(files["bin/busybox"], host) {
		t.Errorf("bin/busybox missing, not executable or not the host binary")
	}
	for _, a := range BusyboxApplets {
		h := hdrs["bin/"+a]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want symlink to busybox", a, h)
		}
	}
	if h := hdrs["tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp: %+v, want dir 1777", h)
	}
	if h := hdrs["home/berthtest"]; h == nil || h.Uid != 1000 || h.Gid != 1000 {
		t.Errorf("home/berthtest: %+v, want owned by 1000:1000", h)
	}
	passwd := string(files["etc/passwd"])
	for _, line := range []string{
		"root:x:0:0:", "nobody:x:65534:65534:", "berthtest:x:1000:1000:",
	} {
		if !strings.Contains(passwd, "\n"+line) && !strings.HasPrefix(passwd, line) {
			t.Errorf("etc/passwd lacks %q:\n%s", line, passwd)
		}
	}
	group := string(files["etc/group"])
	for _, line := range []string{"root:x:0:", "berthtest:x:1000:", "nogroup:x:65534:"} {
		if !strings.Contains(group, line) {
			t.Errorf("etc/group lacks %q:\n%s", line, group)
		}
	}
}

// TestBusyboxRootfsRuns unpacks the image and runs its shell chrooted into
// it, as root and as berthtest, to show the rootfs is usable on its own.
func TestBusyboxRootfsRuns(t *testing.T) {
	RequiresRoot(t)
	root := t.TempDir()
	unpack(t, BusyboxImage(t), root)

	run := func(cred *syscall.Credential, script string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "/bin/sh", "-c", script)
		cmd.Env = []string{"PATH=" + DefaultPath}
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("chroot %s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(nil, "id -un; echo hi > /tmp/x && cat /tmp/x"); got != "root\nhi" {
		t.Errorf("as root: %q", got)
	}
	if got := run(&syscall.Credential{Uid: 1000, Gid: 1000}, "whoami; id -g; touch /tmp/y && echo ok"); got != "berthtest\n1000\nok" {
		t.Errorf("as berthtest: %q", got)
	}
	if got := run(&syscall.Credential{Uid: 65534, Gid: 65534}, "id -un"); got != "nobody" {
		t.Errorf("as nobody: %q", got)
	}
}

// unpack writes the flattened filesystem of img under dir (regular files,
// directories and symlinks only, which is all BusyboxImage has).
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o600)
			}
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		default:
			t.Fatalf("unpack: unexpected type %q for %s", h.Typeflag, h.Name)
		}
		if err == nil && h.Typeflag != tar.TypeSymlink {
			if err = os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode)); err == nil {
				err = os.Chown(p, h.Uid, h.Gid)
			}
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	}
}

func modeBits(m int64) os.FileMode {
	var fm os.FileMode
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

func TestLayeredImage(t *testing.T) {
	layers := [][]TarEntry{
		{
			{Name: "etc/", Type: tar.TypeDir},
			{Name: "etc/motd", Content: []byte("base\n")},
			{Name: "etc/gone", Content: []byte("x")},
			{Name: "data/", Type: tar.TypeDir, Mode: 0o750, UID: 5, GID: 6},
		},
		{
			{Name: "etc/motd", Content: []byte("top\n"), Mode: 0o600},
			{Name: "etc/.wh.gone"},
			{Name: "etc/link", Type: tar.TypeLink, Linkname: "etc/motd"},
			{Name: "x", Content: []byte("v"), PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}},
		},
	}
	cfg := v1.Config{Cmd: []string{"/x"}, User: "1000:1000", WorkingDir: "/data"}
	img := LayeredImage(t, layers, cfg)
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if !sameDigest(t, img, LayeredImage(t, layers, cfg)) {
		t.Fatal("same inputs gave different digests")
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 2 {
		t.Fatalf("layers %d (%v), want 2", len(ls), err)
	}
	for i, l := range ls {
		mt, _ := l.MediaType()
		if mt != types.OCILayer {
			t.Errorf("layer %d media type %s", i, mt)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, TarBytes(t, layers[i])) {
			t.Errorf("layer %d content differs from TarBytes", i)
		}
	}
	// Layer order is base first: the top layer's motd and whiteout win.
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]*tar.Header{}
	var motd []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if h.Name == "etc/motd" {
			motd, _ = io.ReadAll(tr)
		}
	}
	if string(motd) != "top\n" || seen["etc/motd"].Mode != 0o600 {
		t.Errorf("etc/motd = %q mode %o, want top layer", motd, seen["etc/motd"].Mode)
	}
	if _, ok := seen["etc/gone"]; ok {
		t.Error("whiteout in layer 2 did not hide etc/gone")
	}
	if h := seen["data"]; h == nil || h.Mode != 0o750 || h.Uid != 5 || h.Gid != 6 {
		t.Errorf("data: %+v", h)
	}
	if h := seen["x"]; h == nil || h.PAXRecords["SCHILY.xattr.user.k"] != "v" {
		t.Errorf("x lost its xattr record: %+v", h)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "1000:1000" || cf.Config.WorkingDir != "/data" || cf.Config.Cmd[0] != "/x" {
		t.Errorf("config not applied: %+v", cf.Config)
	}
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %v, want epoch", cf.Created)
	}
	if empty := LayeredImage(t, nil, v1.Config{}); mustLen(t, empty) != 0 {
		t.Error("nil layers gave a non-empty image")
	}
}

func TestTarBytesRejectsBadEntries(t *testing.T) {
	for _, es := range [][]TarEntry{
		{{Name: "d", Type: tar.TypeDir, Content: []byte("x")}},
		{{Name: "s", Type: tar.TypeSymlink, Linkname: "t", Content: []byte("x")}},
		{{Name: "weird", Type: 'Z'}},
	} {
		if _, err := tarBytes(es); err == nil {
			t.Errorf("tarBytes(%+v) succeeded", es)
		}
	}
}

func sameDigest(t *testing.T, a, b v1.Image) bool {
	t.Helper()
	da, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return da == db
}

func mustLen(t *testing.T, img v1.Image) int {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}
