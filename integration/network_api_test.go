package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// getLoopback fetches http://127.0.0.1:port/, retrying for a few seconds
// while the server starts; "" when it never answers 200.
func getLoopback(port int) string {
	c := &http.Client{Timeout: 2 * time.Second}
	for range 40 {
		if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(body)
			}
		}
		time.Sleep(150 * time.Millisecond)
	}
	return ""
}

// TestNetworkAPIPortsSurviveReconnect is Berth issue 5's repro through
// the split service with the docker CLI: a container created with -p on
// a user network, disconnected and connected again while stopped (what
// docker-compose 1.29 does before every start), publishes its port when
// started; it keeps publishing when, running, it leaves that network and
// joins another. Also the legacy NetworkSettings fields and
// Config.ExposedPorts.
func TestNetworkAPIPortsSurviveReconnect(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	svc := startService(t, e)
	svc.requireSplit(t)
	cfg := t.TempDir()
	docker := func(args ...string) string {
		t.Helper()
		r := svc.docker(t, cfg, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	docker("network", "create", "--subnet", nextUserSubnet(24), "pnet")
	docker("network", "create", "--subnet", nextUserSubnet(24), "pnet2")
	port := testutil.FreePort(t)
	docker("create", "--name", "pc", "--network", "pnet", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--expose", "7000", ref, "sh", "-c", httpdScript("pc"))
	if got := docker("inspect", "-f", "{{json .Config.ExposedPorts}}", "pc"); got != `{"7000/tcp":{},"80/tcp":{}}`+"\n" {
		t.Errorf("Config.ExposedPorts = %q, want 80/tcp (-p) and 7000/tcp (--expose)", got)
	}
	docker("network", "disconnect", "pnet", "pc")
	docker("network", "connect", "pnet", "pc")
	docker("start", "pc")
	if got := docker("port", "pc", "80"); got != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Errorf("docker port after disconnect/connect: %q", got)
	}
	if got := docker("inspect", "-f", `{{json (index .NetworkSettings.Ports "80/tcp")}}`, "pc"); !strings.Contains(got, fmt.Sprintf(`"HostPort":"%d"`, port)) {
		t.Errorf("NetworkSettings.Ports[80/tcp] = %s", got)
	}
	if got := getLoopback(port); got != "hello from pc\n" {
		t.Fatalf("published port after disconnect/connect: %q", got)
	}
	// Running: leaving the network that carries the port moves it to
	// the container's other network; traffic still flows.
	docker("network", "connect", "pnet2", "pc")
	docker("network", "disconnect", "pnet", "pc")
	if got := docker("port", "pc", "80"); got != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Errorf("docker port after the carrying network left: %q", got)
	}
	if got := getLoopback(port); got != "hello from pc\n" {
		t.Fatalf("published port after the carrying network left: %q", got)
	}
	// With no network left the port goes; connecting publishes it again.
	docker("network", "disconnect", "pnet2", "pc")
	if len(rulesWith(fmt.Sprintf("--dport %d", port))) != 0 {
		t.Errorf("port rules left with no network: %v", rulesWith(fmt.Sprintf("--dport %d", port)))
	}
	docker("network", "connect", "pnet", "pc")
	if got := getLoopback(port); got != "hello from pc\n" {
		t.Fatalf("published port after connecting a running container again: %q", got)
	}
	// A user network only: the legacy fields are empty, as Docker's.
	if got := docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}|{{.NetworkSettings.Gateway}}", "pc"); got != "|\n" {
		t.Errorf("legacy fields on a user network: %q", got)
	}

	// On the default bridge the legacy top-level fields are the bridge
	// endpoint's, for docker inspect (API 1.50) and an older API version.
	docker("run", "-d", "--name", "pb", ref, "sleep", "60")
	ip := strings.TrimSpace(docker("inspect", "-f", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "pb"))
	if ip == "" {
		t.Fatal("pb has no address on bridge")
	}
	got := docker("inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.MacAddress}} {{.NetworkSettings.EndpointID}}", "pb")
	want := docker("inspect", "-f", "{{with .NetworkSettings.Networks.bridge}}{{.IPAddress}} {{.IPPrefixLen}} {{.Gateway}} {{.MacAddress}} {{.EndpointID}}{{end}}", "pb")
	if got != want || !strings.HasPrefix(got, ip+" 24 ") {
		t.Errorf("legacy fields %q, want %q", got, want)
	}
	if !regexp.MustCompile(` [0-9a-f]{64}\n$`).MatchString(got) {
		t.Errorf("EndpointID is not 64 hex digits: %q", got)
	}
	resp, err := svc.client().Get("http://berth/v1.41/containers/pb/json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"IPAddress":"`+ip+`"`) || !strings.Contains(string(body), `"Bridge":""`) {
		t.Errorf("v1.41 inspect lacks the legacy fields: %s", body)
	}
}

// TestNetworkAPIFilters checks network ls's filters, network rm's 403
// for a network in use, 64-hex endpoint IDs in network inspect, and
// volume ls's name filter, through the service with the docker CLI.
func TestNetworkAPIFilters(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	svc := startService(t, e)
	cfg := t.TempDir()
	docker := func(args ...string) result {
		t.Helper()
		return svc.docker(t, cfg, args...)
	}
	names := func(args ...string) string {
		t.Helper()
		r := docker(append([]string{"network", "ls", "--format", "{{.Name}}"}, args...)...)
		if r.code != 0 {
			t.Fatalf("network ls %v: exit %d %s", args, r.code, r.stderr)
		}
		return strings.Join(strings.Fields(r.stdout), ",")
	}
	for _, n := range []string{"front-fx", "back-fx"} {
		if r := docker("network", "create", "--subnet", nextUserSubnet(24), "--label", "tier="+strings.TrimSuffix(n, "-fx"), n); r.code != 0 {
			t.Fatalf("create %s: %s", n, r.stderr)
		}
	}
	if r := docker("run", "-d", "--name", "user", "--network", "back-fx", ref, "sleep", "60"); r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	for _, c := range []struct {
		filter []string
		want   string
	}{
		{[]string{"name=fx"}, "back-fx,front-fx"},
		{[]string{"name=ront"}, "front-fx"},
		{[]string{"name=^back"}, "back-fx"},
		{[]string{"type=custom"}, "back-fx,front-fx"},
		{[]string{"type=builtin"}, "bridge,host,none"},
		{[]string{"dangling=true"}, "front-fx"},
		{[]string{"dangling=false", "name=fx"}, "back-fx"},
		{[]string{"driver=bridge", "name=fx"}, "back-fx,front-fx"},
		{[]string{"driver=host"}, "host"},
		{[]string{"label=tier=front"}, "front-fx"},
		{[]string{"label=tier"}, "back-fx,front-fx"},
	} {
		var args []string
		for _, f := range c.filter {
			args = append(args, "--filter", f)
		}
		if got := names(args...); got != c.want {
			t.Errorf("network ls %v: %q, want %q", c.filter, got, c.want)
		}
	}
	if r := docker("network", "ls", "--filter", "type=odd"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter") {
		t.Errorf("type=odd: exit %d %q", r.code, r.stderr)
	}
	// rm of a network in use: Docker's 403 and message.
	resp, err := http.NewRequest(http.MethodDelete, "http://berth/v1.50/networks/back-fx", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.client().Do(resp)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "error while removing network: network back-fx has active endpoints") {
		t.Errorf("DELETE of a network in use: %d %s", res.StatusCode, body)
	}
	if r := docker("network", "rm", "back-fx"); r.code == 0 || !strings.Contains(r.stderr, "has active endpoints") {
		t.Errorf("docker network rm in use: exit %d %q", r.code, r.stderr)
	}
	// Endpoint IDs: 64 hex digits, the same in network and container inspect.
	epNet := docker("network", "inspect", "-f", "{{range .Containers}}{{.EndpointID}}{{end}}", "back-fx").stdout
	epCtr := docker("inspect", "-f", `{{(index .NetworkSettings.Networks "back-fx").EndpointID}}`, "user").stdout
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(epNet) || epNet != epCtr {
		t.Errorf("endpoint IDs: network %q container %q", epNet, epCtr)
	}
	// volume ls --filter name= matches substrings.
	for _, v := range []string{"alpha-vfx", "beta-vfx"} {
		if r := docker("volume", "create", v); r.code != 0 {
			t.Fatalf("volume create: %s", r.stderr)
		}
	}
	if got := strings.Join(strings.Fields(docker("volume", "ls", "-q", "--filter", "name=vfx").stdout), ","); got != "alpha-vfx,beta-vfx" {
		t.Errorf("volume ls name=vfx: %q", got)
	}
	if got := strings.Join(strings.Fields(docker("volume", "ls", "-q", "--filter", "name=lph").stdout), ","); got != "alpha-vfx" {
		t.Errorf("volume ls name=lph: %q", got)
	}
}

// TestNetworkAPIComposePorts runs docker-compose 1.29.2, which
// disconnects and reconnects every service's networks before starting
// it, with a published loopback port on a user network: the host must
// reach the service through it.
func TestNetworkAPIComposePorts(t *testing.T) {
	_, ref, svc := composeSetup(t)
	cfg, dir := t.TempDir(), t.TempDir()
	port := testutil.FreePort(t)
	project := fmt.Sprintf("bcport%d", os.Getpid())
	file := fmt.Sprintf(`version: "3.7"
services:
  web:
    image: %s
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
    networks: [front]
    ports: ["127.0.0.1:%d:8080"]
networks:
  front: {}
`, ref, port)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/docker-compose", append([]string{"-p", project, "--no-ansi"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock, "DOCKER_CONFIG="+cfg, "COMPOSE_INTERACTIVE_NO_CLI=1")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
		return string(out), 0
	}
	t.Cleanup(func() { compose("down", "-v", "--timeout", "1") })
	if out, code := compose("up", "-d"); code != 0 {
		t.Fatalf("up -d: exit %d\n%s", code, out)
	}
	if got := getLoopback(port); got != "hello-from-web\n" {
		t.Errorf("compose ports: http://127.0.0.1:%d/ gave %q", port, got)
	}
	// Published on loopback only, as the file asks.
	if r := svc.docker(t, cfg, "port", project+"_web_1", "8080"); r.stdout != fmt.Sprintf("127.0.0.1:%d\n", port) {
		t.Errorf("docker port: %q %q", r.stdout, r.stderr)
	}
	if out, code := compose("down", "-v", "--timeout", "1"); code != 0 {
		t.Fatalf("down -v: exit %d\n%s", code, out)
	}
	if got := rulesWith(fmt.Sprintf("--dport %d", port)); len(got) != 0 {
		t.Errorf("port rules left after down: %v", got)
	}
}
