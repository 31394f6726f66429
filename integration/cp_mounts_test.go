package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCpMounts checks that cp reads and writes what the container sees
// at a path: its bind mounts (directory and file), named volumes, the
// /etc files the engine binds and its tmpfs mounts, rather than the
// rootfs underneath them; read-only mounts refuse writes; links inside a
// bind mount stay inside the container's tree; and a stopped container
// resolves its binds the same way.
func TestCpMounts(t *testing.T) {
	host := t.TempDir()
	write := func(p, data string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	read := func(p string) string {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		return string(data)
	}
	hostdir := filepath.Join(host, "hostdir")
	write(filepath.Join(hostdir, "f"), "bind data")
	bindFile := write(filepath.Join(host, "bf.txt"), "bind file")
	rodir := filepath.Join(host, "ro")
	write(filepath.Join(rodir, "r"), "read only")
	write(filepath.Join(host, "secret"), "host secret")
	in := write(filepath.Join(host, "src", "in.txt"), "data")
	write(filepath.Join(host, "tree", "h", "f2"), "routed")
	for name, target := range map[string]string{"root": "/", "up": "../..", "esc": "../secret"} {
		if err := os.Symlink(target, filepath.Join(hostdir, name)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(host, "out")
	os.Mkdir(out, 0o755)

	e, _, _ := runningBusybox(t, "cpm", "-v", hostdir+":/h", "-v", bindFile+":/bf.txt", "-v", "cpmvol:/vol",
		"-v", rodir+":/ro:ro", "--mount", "type=tmpfs,target=/tt")
	e.ok("exec", "cpm", "sh", "-c", "echo vol > /vol/v && echo tmp > /tt/t && echo inside > /marker")

	// Out of the container, through each kind of mount.
	e.ok("cp", "cpm:/h/f", filepath.Join(out, "f"))
	e.ok("cp", "cpm:/bf.txt", filepath.Join(out, "bf"))
	e.ok("cp", "cpm:/vol/v", filepath.Join(out, "v"))
	e.ok("cp", "cpm:/tt/t", filepath.Join(out, "t"))
	e.ok("cp", "cpm:/etc/hosts", filepath.Join(out, "hosts"))
	e.ok("cp", "cpm:/etc/hostname", filepath.Join(out, "hostname"))
	hosts := e.ok("exec", "cpm", "cat", "/etc/hosts")
	for p, want := range map[string]string{"f": "bind data", "bf": "bind file", "v": "vol\n", "t": "tmp\n", "hosts": hosts,
		"hostname": e.ok("exec", "cpm", "cat", "/etc/hostname")} {
		if got := read(filepath.Join(out, p)); got != want || got == "" {
			t.Errorf("cp out %s: %q, want %q", p, got, want)
		}
	}
	if fi, _ := os.Stat(filepath.Join(out, "hosts")); fi.Mode().Perm() == 0o755 {
		t.Errorf("cp out /etc/hosts: mode %v, the rootfs's mount point", fi.Mode())
	}
	// A directory holding mounts carries what is mounted.
	e.ok("cp", "cpm:/etc", filepath.Join(out, "etc"))
	if got := read(filepath.Join(out, "etc", "hosts")); got != hosts {
		t.Errorf("cp out /etc: hosts %q, want %q", got, hosts)
	}

	// Into the container, through each kind of mount.
	e.ok("cp", in, "cpm:/h/")
	if got := read(filepath.Join(hostdir, "in.txt")); got != "data" {
		t.Errorf("cp into bind dir: host has %q", got)
	}
	e.ok("cp", in, "cpm:/vol/")
	e.ok("cp", in, "cpm:/tt/")
	write(filepath.Join(host, "newhosts"), "10.1.2.3\tplanted\n")
	e.ok("cp", filepath.Join(host, "newhosts"), "cpm:/etc/hosts")
	write(filepath.Join(host, "newbf"), "new bind file")
	e.ok("cp", filepath.Join(host, "newbf"), "cpm:/bf.txt")
	e.ok("cp", filepath.Join(host, "tree")+"/.", "cpm:/")
	got := e.ok("exec", "cpm", "sh", "-c", "cat /h/in.txt /vol/in.txt /tt/in.txt /etc/hosts /bf.txt /h/f2")
	if want := "datadatadata10.1.2.3\tplanted\nnew bind filerouted"; got != want {
		t.Errorf("copied in, the container sees %q, want %q", got, want)
	}
	if got := read(bindFile); got != "new bind file" {
		t.Errorf("cp onto bind file: host has %q", got)
	}
	if got := read(filepath.Join(hostdir, "f2")); got != "routed" {
		t.Errorf("cp of a tree over a mount point: host has %q", got)
	}

	// Read-only mounts refuse writes.
	e.wantFail(1, "mounted volume is marked read-only", "cp", in, "cpm:/ro/")
	e.wantFail(1, "mounted volume is marked read-only", "cp", in, "cpm:/ro/r")
	if _, err := os.Stat(filepath.Join(rodir, "in.txt")); err == nil {
		t.Error("cp wrote into a read-only bind mount")
	}
	if got := read(filepath.Join(rodir, "r")); got != "read only" {
		t.Errorf("read-only bind file changed: %q", got)
	}

	// Links inside a bind mount resolve in the container's tree.
	for _, p := range []string{"/h/root/marker", "/h/up/marker"} {
		e.ok("cp", "cpm:"+p, filepath.Join(out, "marker"))
		if got := read(filepath.Join(out, "marker")); got != "inside\n" {
			t.Errorf("cp out %s: %q", p, got)
		}
	}
	e.wantFail(1, "Could not find the file", "cp", "-L", "cpm:/h/esc", filepath.Join(out, "esc"))
	// On the host, hostdir/up/BASE/secret is host/secret.
	e.wantFail(1, "Could not find the file", "cp", "cpm:/h/up/"+filepath.Base(host)+"/secret", filepath.Join(out, "esc"))
	if _, err := os.Stat(filepath.Join(out, "esc")); err == nil {
		t.Error("cp -L followed a link in a bind mount onto the host")
	}
	e.ok("cp", "cpm:/h/esc", filepath.Join(out, "esc")) // the link itself
	if target, err := os.Readlink(filepath.Join(out, "esc")); err != nil || target != "../secret" {
		t.Errorf("link in a bind mount copied as %q, %v", target, err)
	}
	e.ok("cp", in, "cpm:/h/up/")
	if got := e.ok("exec", "cpm", "cat", "/in.txt"); got != "data" {
		t.Errorf("cp through /h/up: container has %q", got)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(host), "in.txt")); err == nil {
		t.Error("cp wrote through a link in a bind mount onto the host")
	}

	// A stopped container: binds, volumes and /etc files still resolve;
	// its tmpfs has no contents, which is an error, not the rootfs.
	e.ok("stop", "-t", "0", "cpm")
	e.ok("cp", "cpm:/h/f", filepath.Join(out, "stopped-f"))
	e.ok("cp", "cpm:/etc/hosts", filepath.Join(out, "stopped-hosts"))
	if got := read(filepath.Join(out, "stopped-f")); got != "bind data" {
		t.Errorf("cp out of a stopped container's bind: %q", got)
	}
	if got := read(filepath.Join(out, "stopped-hosts")); got != "10.1.2.3\tplanted\n" {
		t.Errorf("cp out of a stopped container's /etc/hosts: %q", got)
	}
	write(filepath.Join(host, "src2", "in2.txt"), "stopped")
	e.ok("cp", filepath.Join(host, "src2", "in2.txt"), "cpm:/vol/")
	e.ok("cp", filepath.Join(host, "src2", "in2.txt"), "cpm:/h/")
	if got := read(filepath.Join(hostdir, "in2.txt")); got != "stopped" {
		t.Errorf("cp into a stopped container's bind: host has %q", got)
	}
	e.wantFail(1, "mounted volume is marked read-only", "cp", in, "cpm:/ro/")
	e.wantFail(1, "not running", "cp", "cpm:/tt/t", filepath.Join(out, "t2"))
	e.wantFail(1, "not running", "cp", in, "cpm:/tt/")
	e.ok("start", "cpm")
	if got := e.ok("exec", "cpm", "cat", "/vol/in2.txt"); got != "stopped" {
		t.Errorf("cp into a stopped container's volume: %q", got)
	}
	if !strings.Contains(e.ok("exec", "cpm", "ls", "/h"), "in2.txt") {
		t.Error("cp into a stopped container's bind: not visible after start")
	}
}

// TestCpMountsDockerCLI drives the same resolution with the docker CLI
// through the privilege-separated service: the archive routes call the
// engine methods `berth cp` calls.
func TestCpMountsDockerCLI(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	cfg := t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		r := svc.docker(t, cfg, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	host := t.TempDir()
	hostdir := filepath.Join(host, "hostdir")
	os.Mkdir(hostdir, 0o755)
	os.WriteFile(filepath.Join(hostdir, "f"), []byte("bind data"), 0o644)
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("data"), 0o644)
	must("pull", ref)
	must("run", "-d", "--name", "cpd", "-v", hostdir+":/h", "-v", host+":/ro:ro", ref, "sleep", "300")
	t.Cleanup(func() { svc.dockerQuiet(cfg, "rm", "-f", "cpd") })

	must("cp", "cpd:/h/f", filepath.Join(host, "f.out"))
	must("cp", "cpd:/etc/hosts", filepath.Join(host, "hosts.out"))
	must("cp", filepath.Join(host, "in.txt"), "cpd:/h/")
	if data, _ := os.ReadFile(filepath.Join(host, "f.out")); string(data) != "bind data" {
		t.Errorf("docker cp out of a bind: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(host, "hosts.out")); string(data) != must("exec", "cpd", "cat", "/etc/hosts") || len(data) == 0 {
		t.Errorf("docker cp out of /etc/hosts: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(hostdir, "in.txt")); string(data) != "data" {
		t.Errorf("docker cp into a bind: host has %q", data)
	}
	r := svc.docker(t, cfg, "cp", filepath.Join(host, "in.txt"), "cpd:/ro/")
	if r.code != 1 || !strings.Contains(r.stderr, "mounted volume is marked read-only") {
		t.Errorf("docker cp into a read-only bind: exit %d, %q", r.code, r.stderr)
	}
}
