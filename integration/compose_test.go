package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestComposeAgainstService runs Debian's docker-compose 1.29.2 against
// the privilege-separated service: up -d of two services on a user
// network with a named volume, B reaching A by its service name, then
// ps, logs and down -v, which must leave no container, network or
// volume behind.
func TestComposeAgainstService(t *testing.T) {
	_, ref, svc := composeSetup(t)
	cfg := t.TempDir()
	dir := t.TempDir()
	project := fmt.Sprintf("bcomp%d", os.Getpid())
	file := fmt.Sprintf(`version: "3.7"
services:
  a:
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-a > /www/index.html && echo a-ready && exec httpd -f -p 8080 -h /www"]
    networks: [back]
    volumes: ["data:/data"]
  b:
    image: %[1]s
    command: ["sh", "-c", "for i in $$(seq 1 50); do wget -qO- http://a:8080/ && break; sleep 0.2; done; echo b-done; exec sleep 300"]
    networks: [back]
    volumes: ["data:/data"]
    depends_on: [a]
networks:
  back: {}
volumes:
  data: {}
`, ref)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/docker-compose", append([]string{"-p", project, "--no-ansi"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock, "DOCKER_CONFIG="+cfg, "COMPOSE_INTERACTIVE_NO_CLI=1")
		out, err := cmd.CombinedOutput()
		r := result{stdout: string(out)}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
		return r
	}
	mustCompose := func(args ...string) string {
		t.Helper()
		r := compose(args...)
		if r.code != 0 {
			t.Fatalf("docker-compose %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stdout)
		}
		return r.stdout
	}
	t.Cleanup(func() { compose("down", "-v", "--timeout", "1") })

	mustCompose("up", "-d")
	ps := mustCompose("ps")
	for _, svcName := range []string{project + "_a_1", project + "_b_1"} {
		if !strings.Contains(ps, svcName) || !strings.Contains(ps, "Up") {
			t.Errorf("docker-compose ps lacks %s up:\n%s", svcName, ps)
		}
	}
	var logs string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		logs = mustCompose("logs", "--no-color", "b")
		if strings.Contains(logs, "b-done") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(logs, "hello-from-a") {
		t.Errorf("b did not reach a by name; logs of b:\n%s", logs)
	}
	if out := mustCompose("logs", "--no-color", "a"); !strings.Contains(out, "a-ready") {
		t.Errorf("logs of a:\n%s", out)
	}
	// The named volume and the user network carry the project's name.
	if r := svc.docker(t, cfg, "volume", "inspect", "-f", "{{.Name}}", project+"_data"); r.code != 0 {
		t.Errorf("volume %s_data: %d %s", project, r.code, r.stderr)
	}
	if r := svc.docker(t, cfg, "network", "inspect", "-f", "{{.Name}}", project+"_back"); r.code != 0 {
		t.Errorf("network %s_back: %d %s", project, r.code, r.stderr)
	}

	mustCompose("down", "-v", "--timeout", "1")
	label := "label=com.docker.compose.project=" + project
	if out := svc.docker(t, cfg, "ps", "-aq", "--filter", label).stdout; out != "" {
		t.Errorf("containers left after down -v: %q", out)
	}
	if out := svc.docker(t, cfg, "network", "ls", "-q", "--filter", "name="+project).stdout; out != "" {
		t.Errorf("networks left after down -v: %q", out)
	}
	if out := svc.docker(t, cfg, "volume", "ls", "-q", "--filter", "name="+project).stdout; out != "" {
		t.Errorf("volumes left after down -v: %q", out)
	}
}

// composeSetup is what the compose tests share: docker-compose and the
// docker CLI present (else skip), an engine with the busybox image's
// registry, and the privilege-separated service on it.
func composeSetup(t *testing.T) (*env, string, *service) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/docker-compose"); err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	return e, ref, svc
}
