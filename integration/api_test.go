package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// service is a running `berth system service` on a unix socket.
type service struct {
	sock string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

// startService runs the service with e's roots and waits until its
// socket answers /_ping.
func startService(t *testing.T, e *env, extra ...string) *service {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "berth.sock")
	args := e.args(append([]string{"system", "service", "-H", "unix://" + sock}, extra...)...)
	s := &service{sock: sock, log: &bytes.Buffer{}}
	s.cmd = exec.Command(berthBin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("service output:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := s.client().Get("http://berth/_ping")
		if err == nil {
			resp.Body.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not answer: %v\n%s", err, s.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *service) client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.sock)
	}}, Timeout: 30 * time.Second}
}

// docker runs the real docker CLI against the service.
func (s *service) docker(t *testing.T, cfgDir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+cfgDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("docker %v: %v", args, err)
	}
	return r
}

func requireDocker(t *testing.T) {
	if _, err := os.Stat("/usr/bin/docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
}

// TestDockerCLIAgainstService drives the real docker CLI through the
// service: a table of commands with their expected output and exit code.
func TestDockerCLIAgainstService(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	cfg := t.TempDir()
	steps := []struct {
		args []string
		code int
		out  string // regexp the stdout must match
		err  string // regexp the stderr must match ("" = anything)
	}{
		{args: []string{"version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}"}, out: `^1\.50 1\.24\n$`},
		{args: []string{"info", "--format", "{{.OSType}} {{.Driver}} {{.Containers}}"}, out: `^linux overlay 0\n$`},
		{args: []string{"pull", ref}, out: `(?s)` + regexp.QuoteMeta(ref)},
		{args: []string{"images", "--format", "{{.Repository}}:{{.Tag}}"}, out: regexp.QuoteMeta(ref)},
		{args: []string{"run", "--rm", ref, "echo", "hi"}, out: `^hi\n$`},
		{args: []string{"run", "--rm", ref, "sh", "-c", "echo to-err >&2; exit 3"}, code: 3, out: `^$`, err: `to-err`},
		{args: []string{"run", "--name", "lg", ref, "sh", "-c", "echo out; echo err >&2"}, out: `^out\n$`, err: `err`},
		{args: []string{"wait", "lg"}, out: `^0\n$`},
		{args: []string{"inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}}", "lg"}, out: `^exited 0 /lg\n$`},
		{args: []string{"logs", "lg"}, out: `^out\n$`, err: `^err\n$`},
		{args: []string{"rm", "lg"}, out: `^lg\n$`},
		{args: []string{"run", "-d", "--name", "web", ref, "sh", "-c", "echo started; sleep 300"}, out: `^[0-9a-f]{64}\n$`},
		{args: []string{"ps", "--format", "{{.Names}} {{.State}}"}, out: `(?m)^web running$`},
		{args: []string{"logs", "web"}, out: `^started\n$`},
		{args: []string{"stop", "-t", "1", "web"}, out: `^web\n$`},
		{args: []string{"ps", "-a", "--filter", "name=web", "--format", "{{.Status}}"}, out: `^Exited \(137\)`},
		{args: []string{"rm", "web"}, out: `^web\n$`},
		{args: []string{"inspect", "web"}, code: 1, err: `No such (container|object): web`},
		{args: []string{"run", "--rm", "-v", "vol1:/data", ref, "sh", "-c", "echo kept > /data/f"}},
		{args: []string{"run", "--rm", "-v", "vol1:/data", ref, "cat", "/data/f"}, out: `^kept\n$`},
		{args: []string{"volume", "ls", "--format", "{{.Name}} {{.Driver}}"}, out: `(?m)^vol1 local$`},
		{args: []string{"volume", "rm", "vol1"}, out: `^vol1\n$`},
		{args: []string{"network", "create", "apinet"}, out: `^[0-9a-f]{64}\n$`},
		{args: []string{"network", "ls", "--format", "{{.Name}}"}, out: `(?m)^apinet$`},
		{args: []string{"network", "rm", "apinet"}, out: `^apinet\n$`},
		{args: []string{"run", "--rm", ref, "/no/such/program"}, code: 127},
		{args: []string{"run", "--rm", "127.0.0.1:1/none:latest", "true"}, code: 125},
	}
	for _, st := range steps {
		r := svc.docker(t, cfg, st.args...)
		if r.code != st.code {
			t.Fatalf("docker %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(st.args, " "), r.code, st.code, r.stdout, r.stderr)
		}
		if st.out != "" && !regexp.MustCompile(st.out).MatchString(r.stdout) {
			t.Errorf("docker %s: stdout %q does not match %q", strings.Join(st.args, " "), r.stdout, st.out)
		}
		if st.err != "" && !regexp.MustCompile(st.err).MatchString(r.stderr) {
			t.Errorf("docker %s: stderr %q does not match %q", strings.Join(st.args, " "), r.stderr, st.err)
		}
	}
	// One store: what the CLI starts the service sees, and the reverse.
	e.ok("run", "-d", "--name", "fromcli", ref, "sleep", "300")
	if r := svc.docker(t, cfg, "ps", "--format", "{{.Names}}"); !strings.Contains(r.stdout, "fromcli") {
		t.Errorf("docker ps does not list a container berth started: %q", r.stdout)
	}
	svc.docker(t, cfg, "create", "--name", "fromapi", ref, "true")
	if out := e.ok("ps", "-a"); !strings.Contains(out, "fromapi") {
		t.Errorf("berth ps -a does not list a container the API created: %q", out)
	}
	if r := svc.docker(t, cfg, "rm", "-f", "fromcli", "fromapi"); r.code != 0 {
		t.Errorf("docker rm -f: %d %s", r.code, r.stderr)
	}
}

// TestServiceBadRequests checks statuses and Docker's error body for
// requests the service must refuse.
func TestServiceBadRequests(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	c := svc.client()
	do := func(method, path, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String(), resp.Header
	}
	if code, _, h := do("GET", "/_ping", ""); code != 200 || h.Get("Api-Version") != "1.50" || h.Get("Ostype") != "linux" {
		t.Errorf("/_ping: %d %v", code, h)
	}
	e.ok("pull", ref)
	e.ok("create", "--name", "taken", ref, "true")
	cases := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"POST", "/v1.50/containers/create", `{"Image": `, 400, "invalid JSON"},
		{"POST", "/v1.50/containers/create", `{"Image": 42}`, 400, "invalid JSON"},
		{"GET", "/v1.50/containers/nosuch/json", "", 404, "No such container: nosuch"},
		{"POST", "/v1.50/containers/create?name=taken", `{"Image": "` + ref + `"}`, 409, `is already in use`},
		{"GET", "/v1.99/version", "", 400, "client version 1.99 is too new"},
		{"GET", "/v1.12/version", "", 400, "too old"},
		{"POST", "/v1.50/containers/create", `{"Image": "127.0.0.1:1/missing:latest"}`, 404, "No such image"},
		{"POST", "/v1.50/containers/create?name=bad%2Fname", `{"Image": "` + ref + `"}`, 400, "Invalid container name"},
		{"POST", "/v1.50/containers/taken/wait?condition=bogus", "", 400, "invalid condition"},
		{"GET", "/v1.50/nosuch/endpoint", "", 404, "page not found"},
	}
	for _, tc := range cases {
		code, body, h := do(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, `"message":`) || !strings.Contains(body, tc.msg) {
			t.Errorf("%s %s: %d %s; want %d with message containing %q", tc.method, tc.path, code, body, tc.code, tc.msg)
		}
		if h.Get("Api-Version") != "1.50" {
			t.Errorf("%s %s: no Api-Version header", tc.method, tc.path)
		}
	}
}

// TestServiceIdleTimeout checks that --timeout makes the service exit
// once idle.
func TestServiceIdleTimeout(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(berthBin, e.args("system", "service", "-H", "unix://"+sock, "--timeout", "1")...)
	start := time.Now()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("service exited with %v", err)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("exited after %s, before the idle timeout", d)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("service did not exit when idle")
	}
}

// TestDockerPy runs the docker-py scripts in testdata/api against the
// service.
func TestDockerPy(t *testing.T) {
	if exec.Command("python3", "-c", "import docker").Run() != nil {
		t.Skip("python3-docker not installed")
	}
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	scripts, _ := filepath.Glob("testdata/api/*.py")
	if len(scripts) == 0 {
		t.Fatal("no scripts in testdata/api")
	}
	for _, script := range scripts {
		t.Run(filepath.Base(script), func(t *testing.T) {
			cmd := exec.Command("python3", script, ref)
			cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, out)
			}
		})
	}
}
