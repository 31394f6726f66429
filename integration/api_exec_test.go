package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/privsep"
	"golang.org/x/sys/unix"
)

// The privilege-separated client runs exec'd processes through the helper.
var _ stream.Execer = (*privsep.Client)(nil)

// TestServiceExec drives `docker exec` (and stdin through attach) with
// the real docker CLI, through the privilege-separated service and
// through the in-process one (BERTH_SERVICE_NO_PRIVSEP=1).
func TestServiceExec(t *testing.T) {
	requireDocker(t)
	for _, split := range []bool{true, false} {
		name := map[bool]string{true: "split", false: "in-process"}[split]
		t.Run(name, func(t *testing.T) {
			if !split {
				t.Setenv("BERTH_SERVICE_NO_PRIVSEP", "1")
			}
			e := newEnv(t)
			_, ref := busybox(t)
			svc := startService(t, e)
			if split {
				svc.requireSplit(t)
			} else if svc.hasServerChild() {
				t.Fatal("BERTH_SERVICE_NO_PRIVSEP=1 still started a service-server child")
			}
			testExec(t, e, svc, ref)
		})
	}
}

// hasServerChild reports whether the service has a service-server child.
func (s *service) hasServerChild() bool {
	out, _ := exec.Command("pgrep", "-P", fmt.Sprint(s.cmd.Process.Pid), "-f", "service-server").Output()
	return len(bytes.TrimSpace(out)) > 0
}

func testExec(t *testing.T, e *env, svc *service, ref string) {
	cfg := t.TempDir()
	if r := svc.docker(t, cfg, "pull", ref); r.code != 0 {
		t.Fatalf("pull: %d %s", r.code, r.stderr)
	}
	if r := svc.docker(t, cfg, "run", "-d", "--name", "ex", ref, "sleep", "300"); r.code != 0 {
		t.Fatalf("run -d: %d %s", r.code, r.stderr)
	}
	steps := []struct {
		stdin string
		args  []string
		code  int
		out   string // regexp the stdout must match
		err   string // regexp the stderr must match ("" = anything)
	}{
		{args: []string{"exec", "ex", "echo", "hi"}, out: `^hi\n$`},
		{args: []string{"exec", "ex", "sh", "-c", "exit 3"}, code: 3, out: `^$`},
		{args: []string{"exec", "ex", "sh", "-c", "echo out; echo to-err >&2"}, out: `^out\n$`, err: `^to-err\n$`},
		{args: []string{"exec", "ex", "nosuchcmd"}, code: 127, out: `OCI runtime exec failed: .*executable file not found`},
		{args: []string{"exec", "ex", "/etc"}, code: 126, out: `OCI runtime exec failed`},
		{stdin: "data\n", args: []string{"exec", "-i", "ex", "cat"}, out: `^data\n$`},
		{stdin: "a\nb\nc\n", args: []string{"exec", "-i", "ex", "sh", "-c", "while read l; do n=$((n+1)); done; echo $n"}, out: `^3\n$`},
		{args: []string{"exec", "-e", "A=1", "-w", "/tmp", "-u", "1:1", "ex", "sh", "-c", "echo $A $(pwd) $(id -u):$(id -g)"}, out: `^1 /tmp 1:1\n$`},
		{args: []string{"exec", "-d", "ex", "touch", "/made-by-exec"}, out: `^$`},
		{args: []string{"exec", "nosuch", "true"}, code: 1, err: `No such container: nosuch`},
		{args: []string{"exec", "ex"}, code: 1},
		{stdin: "hi\n", args: []string{"run", "-i", "--rm", ref, "cat"}, out: `^hi\n$`},
		{stdin: "line\n", args: []string{"run", "-i", "--rm", ref, "sh", "-c", "read l; echo got $l; cat; echo eof"}, out: `^got line\neof\n$`},
	}
	for _, st := range steps {
		r := svc.dockerIn(t, cfg, st.stdin, st.args...)
		what := "docker " + strings.Join(st.args, " ")
		if r.code != st.code {
			t.Errorf("%s: exit %d, want %d\nstdout: %s\nstderr: %s", what, r.code, st.code, r.stdout, r.stderr)
			continue
		}
		if st.out != "" && !regexp.MustCompile(st.out).MatchString(r.stdout) {
			t.Errorf("%s: stdout %q does not match %q", what, r.stdout, st.out)
		}
		if st.err != "" && !regexp.MustCompile(st.err).MatchString(r.stderr) {
			t.Errorf("%s: stderr %q does not match %q", what, r.stderr, st.err)
		}
	}
	// The detached exec ran (it may end just after the start returned).
	for i := 0; ; i++ {
		r := svc.docker(t, cfg, "exec", "ex", "ls", "/made-by-exec")
		if r.code == 0 {
			break
		}
		if i == 50 {
			t.Errorf("docker exec -d touch: the file never appeared: %s", r.stderr)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	testExecTTY(t, svc, cfg)
	testExecDockerPy(t, svc)

	// stdin through attach: the line reaches a detached -i container.
	if r := svc.docker(t, cfg, "run", "-d", "-i", "--name", "at", ref, "sh", "-c", "read l; echo got $l; exit 7"); r.code != 0 {
		t.Fatalf("run -d -i: %d %s", r.code, r.stderr)
	}
	if r := svc.dockerIn(t, cfg, "hello\n", "attach", "at"); r.code != 7 || r.stdout != "got hello\n" {
		t.Errorf("docker attach with stdin: exit %d, stdout %q, stderr %q; want 7, \"got hello\\n\"", r.code, r.stdout, r.stderr)
	}

	if r := svc.docker(t, cfg, "stop", "-t", "0", "ex"); r.code != 0 {
		t.Fatalf("stop: %d %s", r.code, r.stderr)
	}
	r := svc.docker(t, cfg, "exec", "ex", "true")
	if r.code != 1 || !regexp.MustCompile(`Error response from daemon: container [0-9a-f]{64} is not running`).MatchString(r.stderr) {
		t.Errorf("exec in a stopped container: exit %d, stderr %q", r.code, r.stderr)
	}
	svc.docker(t, cfg, "rm", "-f", "ex", "at")
}

// dockerIn runs the docker CLI with stdin (none when empty) and a 30 s
// limit: a stream that never sees EOF fails instead of hanging the test.
func (s *service) dockerIn(t *testing.T, cfgDir, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+cfgDir)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Errorf("docker %v: no end within 30 s (stdout %q)", args, r.stdout)
		r.code = -1
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("docker %v: %v", args, err)
	}
	return r
}

// openPty returns a new pseudo-terminal's master and its slave, the
// slave sized rows x cols.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testExecTTY runs `docker exec -it ex sh` on a pseudo-terminal: the
// process has a terminal of the CLI's size, what is typed reaches the
// shell and its output comes back, and `exit 5` ends the CLI with 5.
func testExecTTY(t *testing.T, svc *service, cfg string) {
	master, slave := openPty(t, 33, 97)
	cmd := exec.Command("/usr/bin/docker", "exec", "-it", "ex", "sh")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock, "DOCKER_CONFIG="+cfg)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out lockedBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor := func(re string) bool {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if regexp.MustCompile(re).MatchString(out.String()) {
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("docker exec -it: output %q never matched %q", out.String(), re)
		return false
	}
	// The shell's prompt, then a command whose result is not its echo.
	ok := waitFor(`# $|# \S*$`)
	if ok {
		master.Write([]byte("test -t 0 && echo tty-$((6*7)); stty size\r"))
		ok = waitFor(`tty-42\r?\n`) && waitFor(`33 97`)
	}
	master.Write([]byte("exit 5\r"))
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Errorf("docker exec -it ... exit 5: %v, want exit status 5 (output %q)", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Errorf("docker exec -it did not end after exit (output %q)", out.String())
	}
}

// testExecDockerPy runs exec through docker-py (Debian's python3-docker):
// exec_run's output and exit code, a demultiplexed run, and the low-level
// inspect.
func testExecDockerPy(t *testing.T, svc *service) {
	if exec.Command("python3", "-c", "import docker").Run() != nil {
		t.Log("python3-docker not installed: docker-py exec not checked")
		return
	}
	script := `
import docker
c = docker.from_env(version="auto").containers.get("ex")
r = c.exec_run(["sh", "-c", "echo py; echo pyerr >&2; exit 4"])
# stdout and stderr are two pipes, copied side by side: their relative
# order is not defined (nor is it with dockerd).
assert r.exit_code == 4 and sorted(r.output.splitlines()) == [b"py", b"pyerr"], r
r = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
assert r.exit_code == 0 and r.output == (b"o\n", b"e\n"), r
r = c.exec_run(["cat", "/etc/hostname"], tty=True)
assert r.exit_code == 0 and r.output.strip() == c.id[:12].encode(), r
api = c.client.api
ex = api.exec_create(c.id, ["true"])
assert api.exec_inspect(ex["Id"])["Running"] is False
api.exec_start(ex["Id"])
i = api.exec_inspect(ex["Id"])
assert i["ExitCode"] == 0 and i["ContainerID"] == c.id and i["ProcessConfig"]["entrypoint"] == "true", i
try:
    api.exec_inspect("nosuch")
    raise AssertionError("expected NotFound")
except docker.errors.NotFound:
    pass
`
	cmd := exec.Command("python3", "-c", script)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker-py exec: %v\n%s", err, out)
	}
}
