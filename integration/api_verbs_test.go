package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerVerbsAgainstService drives top, stats, pause, rename, cp,
// network connect, push and port with the real docker CLI through the
// privilege-separated service.
func TestDockerVerbsAgainstService(t *testing.T) { dockerVerbs(t, true) }

// TestDockerVerbsInProcess is the same with the service in one process
// (BERTH_SERVICE_NO_PRIVSEP=1), the handlers calling the engine directly.
func TestDockerVerbsInProcess(t *testing.T) {
	t.Setenv("BERTH_SERVICE_NO_PRIVSEP", "1")
	dockerVerbs(t, false)
}

func dockerVerbs(t *testing.T, split bool) {
	requireDocker(t)
	e := newEnv(t)
	reg, ref := busybox(t)
	svc := startService(t, e)
	if split {
		svc.requireSplit(t)
	}
	cfg := t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		r := svc.docker(t, cfg, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	must("pull", ref)
	must("run", "-d", "--name", "vb", ref, "sh", "-c", "echo payload > /tmp/in.txt; exec sleep 300")
	t.Cleanup(func() { svc.dockerQuiet(cfg, "rm", "-f", "vb", "vb2", "other", "pp") })

	// top: the container's process.
	if out := must("top", "vb"); !strings.Contains(out, "sleep 300") || !strings.Contains(out, "PID") {
		t.Errorf("docker top: %q", out)
	}
	if out := must("top", "vb", "-o", "pid,comm"); !regexp.MustCompile(`(?m)^PID\s+COMMAND\n\d+\s+sleep$`).MatchString(out) {
		t.Errorf("docker top -o pid,comm: %q", out)
	}

	// stats: one row with the name and a memory figure.
	out := must("stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}", "vb")
	if !regexp.MustCompile(`^vb\|\d+\.\d+%\|\d+(\.\d+)?[KMG]iB / \d+(\.\d+)?[KMG]iB\|1\n$`).MatchString(out) {
		t.Errorf("docker stats --no-stream: %q", out)
	}

	// pause / unpause, and pause of a stopped container is a conflict.
	must("pause", "vb")
	if out := must("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "vb"); out != "paused true\n" {
		t.Errorf("after pause: %q", out)
	}
	must("unpause", "vb")
	if out := must("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "vb"); out != "running false\n" {
		t.Errorf("after unpause: %q", out)
	}
	must("create", "--name", "other", ref, "true")
	if r := svc.docker(t, cfg, "pause", "other"); r.code != 1 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("pause of a created container: %d %q", r.code, r.stderr)
	}

	// rename: the new name resolves, the old does not; a taken name is a
	// conflict with Docker's message.
	must("rename", "vb", "vb2")
	if out := must("inspect", "-f", "{{.Name}}", "vb2"); out != "/vb2\n" {
		t.Errorf("after rename: %q", out)
	}
	if r := svc.docker(t, cfg, "inspect", "vb"); r.code != 1 || !strings.Contains(r.stderr, "No such") {
		t.Errorf("old name after rename: %d %q", r.code, r.stderr)
	}
	r := svc.docker(t, cfg, "rename", "vb2", "other")
	if r.code != 1 || !strings.Contains(r.stderr, `Conflict. The container name "/other" is already in use by container`) {
		t.Errorf("rename to a taken name: %d %q", r.code, r.stderr)
	}

	// cp both ways.
	dir := t.TempDir()
	must("cp", "vb2:/tmp/in.txt", filepath.Join(dir, "out.txt"))
	if data, err := os.ReadFile(filepath.Join(dir, "out.txt")); err != nil || string(data) != "payload\n" {
		t.Errorf("cp from container: %q %v", data, err)
	}
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB: more than one request frame
	if err := os.WriteFile(filepath.Join(dir, "up.txt"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	must("cp", filepath.Join(dir, "up.txt"), "vb2:/tmp/")
	must("cp", filepath.Join(dir, "up.txt"), "vb2:/tmp/renamed.txt")
	if out := must("exec", "vb2", "sh", "-c", "wc -c < /tmp/up.txt; wc -c < /tmp/renamed.txt"); out != "2097152\n2097152\n" {
		t.Errorf("cp to container: %q", out)
	}
	must("cp", "vb2:/tmp/renamed.txt", filepath.Join(dir, "back.txt"))
	if data, _ := os.ReadFile(filepath.Join(dir, "back.txt")); string(data) != big {
		t.Errorf("cp round trip: %d bytes back, want %d", len(data), len(big))
	}
	// A missing path is a 404 whose message the engine words as dockerd;
	// the docker CLI 28 replaces any 404 of the archive endpoint by its
	// own "No such container:path" line, as against dockerd.
	r = svc.docker(t, cfg, "cp", "vb2:/no/such/file", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "No such container:path: vb2:/no/such/file") {
		t.Errorf("cp of a missing path: %d %q", r.code, r.stderr)
	}
	resp, err := svc.client().Get("http://berth/v1.50/containers/vb2/archive?path=/no/such/file")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "Could not find the file /no/such/file in container vb2") {
		t.Errorf("GET archive of a missing path: %d %s", resp.StatusCode, body)
	}

	// network connect / disconnect of a running container.
	must("network", "create", "verbnet")
	t.Cleanup(func() { svc.dockerQuiet(cfg, "network", "rm", "verbnet") })
	must("network", "connect", "--alias", "vbalias", "verbnet", "vb2")
	addr := must("inspect", "-f", `{{with index .NetworkSettings.Networks "verbnet"}}{{.IPAddress}}{{end}}`, "vb2")
	if !regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+\n$`).MatchString(addr) {
		t.Errorf("address on verbnet after connect: %q", addr)
	} else if out := must("exec", "vb2", "cat", "/proc/net/fib_trie"); !strings.Contains(out, strings.TrimSpace(addr)) {
		t.Errorf("container has no interface with %s: %s", addr, out)
	}
	must("network", "disconnect", "verbnet", "vb2")
	if out := must("inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, "vb2"); strings.Contains(out, "verbnet") {
		t.Errorf("networks after disconnect: %q", out)
	}
	if r := svc.docker(t, cfg, "network", "connect", "nosuchnet", "vb2"); r.code != 1 || !strings.Contains(r.stderr, "nosuchnet") {
		t.Errorf("connect to a missing network: %d %q", r.code, r.stderr)
	}

	// push through the service to the loopback registry.
	pushed := fmt.Sprintf("%s/verbs/pushed%v:v1", reg.Addr, split)
	must("tag", ref, pushed)
	if out := must("push", pushed); !regexp.MustCompile(`v1: digest: sha256:[0-9a-f]{64} size: \d+`).MatchString(out) {
		t.Errorf("docker push: %q", out)
	}
	if r := e.berth("pull", pushed); r.code != 0 {
		t.Errorf("pull of the pushed image: %d %s", r.code, r.stderr)
	}

	// A random host port is shown bound by port, ps and inspect.
	must("run", "-d", "--name", "pp", "-p", "80", ref, "sleep", "300")
	out = must("port", "pp")
	m := regexp.MustCompile(`^80/tcp -> 0\.0\.0\.0:(\d+)\n`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Fatalf("docker port: %q", out)
	}
	if out := must("ps", "--filter", "name=pp", "--format", "{{.Ports}}"); !strings.Contains(out, "0.0.0.0:"+m[1]+"->80/tcp") {
		t.Errorf("docker ps ports: %q, want host port %s", out, m[1])
	}
	if out := must("inspect", "-f", `{{(index (index .HostConfig.PortBindings "80/tcp") 0).HostPort}}`, "pp"); strings.TrimSpace(out) == m[1] {
		t.Errorf("HostConfig.PortBindings shows the resolved port %s; Docker keeps the request", m[1])
	}

	// info tells the cgroup version of this host.
	want := "1"
	if isCgroup2() {
		want = "2"
	}
	if out := must("info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"); out != want+" cgroupfs\n" {
		t.Errorf("docker info cgroup: %q, want %s cgroupfs", out, want)
	}
}

// isCgroup2 reports whether /sys/fs/cgroup is the unified hierarchy
// (cgroup.controllers exists only there).
func isCgroup2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// dockerQuiet runs the docker CLI against the service for cleanup,
// ignoring its outcome (the test's context may be over).
func (s *service) dockerQuiet(cfgDir string, args ...string) {
	cmd := exec.Command("/usr/bin/docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+cfgDir)
	cmd.Run()
}
