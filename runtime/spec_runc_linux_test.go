package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxBundle makes a bundle directory whose rootfs holds a static
// busybox at /bin/busybox (with /bin/sh linked to it) and the test
// passwd and group files. It skips unless root with runc available.
func busyboxBundle(t *testing.T) (bundle, rootfs string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	const busybox = "/bin/busybox"
	f, err := elf.Open(busybox)
	if err != nil {
		t.Skipf("no usable %s: %v", busybox, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			f.Close()
			t.Skipf("%s is dynamically linked; install busybox-static", busybox)
		}
	}
	f.Close()

	bundle = t.TempDir()
	rootfs = filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "home/alice", "work"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(busybox)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(rootfs, "bin/busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte(testGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle, rootfs
}

// runSpec builds the spec for a busybox rootfs and runs it with `runc
// run` under a private runc state root, returning stdout and the exit
// code. The container is deleted afterwards.
func runSpec(t *testing.T, img ocispec.ImageConfig, opts RunOptions) (string, int) {
	t.Helper()
	bundle, rootfs := busyboxBundle(t)
	s, err := Spec(rootfs, img, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	var idBytes [6]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		t.Fatal(err)
	}
	id := "berth-spec-test-" + hex.EncodeToString(idBytes[:])
	stateRoot := t.TempDir()
	t.Cleanup(func() {
		out, err := exec.Command("runc", "--root", stateRoot, "delete", "--force", id).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "does not exist") {
			t.Logf("runc delete %s: %v: %s", id, err, out)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runc", "--root", stateRoot, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("runc run: %v", err)
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return stdout.String(), code
}

// field returns the value after "key=" on its own line of out.
func field(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `=(.*)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s= line in output:\n%s", key, out)
	}
	return m[1]
}

// kcoreWant is what the probe prints for /proc/kcore: masked (empty)
// when the kernel has it. It also checks that /proc/interrupts, which
// the probe expects masked, is not empty on the host.
func kcoreWant(t *testing.T) string {
	if b, err := os.ReadFile("/proc/interrupts"); err != nil || len(b) == 0 {
		t.Fatalf("host /proc/interrupts: %d bytes, %v", len(b), err)
	}
	if _, err := os.Stat("/proc/kcore"); err != nil {
		return "absent"
	}
	return "0"
}

const probeScript = `
echo id=$(id)
echo capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)
echo seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status)
echo nnp=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)
echo kcore=$(if [ -e /proc/kcore ]; then wc -c < /proc/kcore; else echo absent; fi)
echo interrupts=$(wc -c < /proc/interrupts)
echo pwd=$(pwd)
echo home=$HOME
echo path=$PATH
echo hostname=$(hostname)/$HOSTNAME
echo portstart=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)
echo sysmount=$(awk '$2=="/sys"{print $4}' /proc/mounts | cut -d, -f1)
echo shm=$(awk '$2=="/dev/shm"{print $4}' /proc/mounts)
echo rootro=$(touch /rootfile 2>/dev/null && echo rw || echo ro)
echo procsys=$(touch /proc/sys/kernel/hostname 2>/dev/null; awk '$2=="/proc/sys"{print $4}' /proc/mounts | cut -d, -f1)
`

func TestRuncDefaultRoot(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{probeScript},
		WorkingDir: "/work",
		Env:        []string{"PATH=/bin"},
	}
	out, code := runSpec(t, img, RunOptions{Hostname: "c0ffee0000ab"})
	if code != 0 {
		t.Fatalf("exit code %d, output:\n%s", code, out)
	}
	checks := map[string]string{
		"id":         "uid=0(root) gid=0(root) groups=0(root),10(wheel)",
		"capeff":     "00000000a80425fb",
		"seccomp":    "2",
		"nnp":        "0",
		"kcore":      kcoreWant(t),
		"interrupts": "0",
		"pwd":        "/work",
		"home":       "/root",
		"path":       "/bin",
		"hostname":   "c0ffee0000ab/c0ffee0000ab",
		"portstart":  "0",
		"sysmount":   "ro",
		"shm":        "rw,nosuid,nodev,noexec,relatime,size=65536k",
		"rootro":     "rw",
		"procsys":    "ro",
	}
	for k, want := range checks {
		if got := field(t, out, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRuncUserAndOptions(t *testing.T) {
	img := ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", "exit 9"}, User: "root"}
	out, code := runSpec(t, img, RunOptions{
		User:            "alice",
		Cmd:             []string{"/bin/sh", "-c", probeScript},
		ReadOnlyRootfs:  true,
		NoNewPrivileges: true,
		CapDrop:         []string{"ALL"},
		CapAdd:          []string{"net_bind_service"},
		Ulimits:         []Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}},
		Hostname:        "h",
	})
	if code != 0 {
		t.Fatalf("exit code %d, output:\n%s", code, out)
	}
	checks := map[string]string{
		"id":     "uid=1000(alice) gid=1000(alice) groups=10(wheel),29(audio),50(staff),1000(alice)", // the kernel sorts groups,
		"capeff": "0000000000000000",
		"nnp":    "1",
		"pwd":    "/",
		"home":   "/home/alice",
		"path":   DefaultPathEnv,
		"rootro": "ro",
	}
	for k, want := range checks {
		if got := field(t, out, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestRuncCapabilitiesAndExitCode(t *testing.T) {
	script := `sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status; ulimit -n; exit 3`
	out, code := runSpec(t, ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", script}},
		RunOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"CAP_KILL", "chown"}, Ulimits: []Ulimit{{Name: "NOFILE", Soft: 321, Hard: 4000}}})
	if code != 3 {
		t.Fatalf("exit code %d, want 3; output:\n%s", code, out)
	}
	// CAP_CHOWN (bit 0) and CAP_KILL (bit 5).
	if want := fmt.Sprintf("%016x\n321\n", 1<<0|1<<5); out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

func TestRuncPrivileged(t *testing.T) {
	script := `sed -n 's/^CapEff:[[:space:]]*//p;s/^Seccomp:[[:space:]]*//p' /proc/self/status; awk '$2=="/sys"{print $4}' /proc/mounts | cut -d, -f1; test -c /dev/null && echo null`
	out, code := runSpec(t, ocispec.ImageConfig{Cmd: []string{"/bin/sh", "-c", script}}, RunOptions{Privileged: true})
	if code != 0 {
		t.Fatalf("exit code %d, output:\n%s", code, out)
	}
	mask, err := capEff()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%016x\n0\nrw\nnull\n", mask); out != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
