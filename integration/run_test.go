package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/hello"
)

func TestHelloImageRunsOffline(t *testing.T) {
	e := newEnv(t)
	out := e.ok("run", "--rm", "localhost/hello")
	if out != hello.Greeting {
		t.Fatalf("got %q", out)
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("--rm left containers: %q", ps)
	}
	if l := e.leftovers(); len(l) > 0 {
		t.Fatalf("leftovers: %v", l)
	}
}

func TestPullRunRemove(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)

	out := e.ok("pull", ref)
	if !strings.HasSuffix(out, ref+"\n") || !strings.Contains(out, "Pull complete") {
		t.Fatalf("pull output: %q", out)
	}
	// A second pull reuses everything.
	if out := e.ok("pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) || strings.Contains(out, "Pull complete") {
		t.Fatalf("second pull output: %q", out)
	}
	images := e.ok("images")
	repo := strings.TrimSuffix(ref, ":latest")
	if !strings.Contains(images, repo) || !strings.Contains(images, "latest") {
		t.Fatalf("images does not list %s:\n%s", ref, images)
	}

	if out := e.ok("run", "--rm", ref, "echo", "hello"); out != "hello\n" {
		t.Fatalf("echo: got %q", out)
	}
	if r := e.berth("run", "--rm", ref, "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exit 3: got %d (%s)", r.code, r.stderr)
	}
	if r := e.berth("run", "--rm", ref, "sh", "-c", "echo out; echo err >&2"); r.code != 0 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("stdout/stderr: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("--rm left containers: %q", ps)
	}

	// Without --rm the stopped container stays, with its exit code.
	if r := e.berth("run", "--name", "keeper", ref, "sh", "-c", "exit 5"); r.code != 5 {
		t.Fatalf("exit 5: got %d: %s", r.code, r.stderr)
	}
	ps := e.ok("ps", "-a")
	if !strings.Contains(ps, "keeper") || !strings.Contains(ps, "Exited (5)") {
		t.Fatalf("ps -a:\n%s", ps)
	}
	if ps := e.ok("ps"); strings.Contains(ps, "keeper") {
		t.Fatalf("ps without -a lists a stopped container:\n%s", ps)
	}
	// The name is taken until the container is removed.
	r := e.berth("run", "--name", "keeper", ref, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "already in use") {
		t.Fatalf("duplicate name: exit %d, stderr %q", r.code, r.stderr)
	}
	// The image is in use: rmi refuses.
	if r := e.berth("rmi", ref); r.code == 0 || !strings.Contains(r.stderr, "conflict") {
		t.Fatalf("rmi of an image in use: exit %d, stderr %q", r.code, r.stderr)
	}
	snapsBefore := countDirs(t, filepath.Join(e.root, "snapshots", "overlay", "snapshots"))
	e.ok("rm", "keeper")
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("rm left %q", ps)
	}
	if after := countDirs(t, filepath.Join(e.root, "snapshots", "overlay", "snapshots")); after != snapsBefore-1 {
		t.Fatalf("rm: snapshot dirs %d -> %d, want one fewer", snapsBefore, after)
	}

	out = e.ok("rmi", ref)
	if !strings.Contains(out, "Untagged: "+ref) || !strings.Contains(out, "Deleted: sha256:") {
		t.Fatalf("rmi output: %q", out)
	}
	if images := e.ok("images", "-q"); images != "" {
		t.Fatalf("images after rmi: %q", images)
	}
	if n := countDirs(t, filepath.Join(e.root, "content", "blobs", "sha256")); n != 0 {
		t.Fatalf("rmi left %d blobs", n)
	}
	if n := countDirs(t, filepath.Join(e.root, "snapshots", "overlay", "snapshots")); n != 0 {
		t.Fatalf("rmi left %d snapshots", n)
	}
	if l := e.leftovers(); len(l) > 0 {
		t.Fatalf("leftovers: %v", l)
	}
}

func TestRunPullsMissingImage(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	// Named without its tag, as Docker it is reported with it.
	r := e.berth("run", "--rm", strings.TrimSuffix(ref, ":latest"), "echo", "pulled")
	if r.code != 0 || r.stdout != "pulled\n" || !strings.Contains(r.stderr, "Unable to find image '"+ref+"' locally") {
		t.Fatalf("run of a missing image: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestImageConfigRules(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"env with =", []string{"-e", "A=b=c", ref, "sh", "-c", "echo $A"}, "b=c\n"},
		{"workdir created", []string{"-w", "/does/not/exist", ref, "pwd"}, "/does/not/exist\n"},
		{"user by name", []string{"-u", "berthtest", ref, "id", "-u"}, "1000\n"},
		{"uid absent from passwd", []string{"-u", "4321", ref, "id", "-u"}, "4321\n"},
		{"entrypoint", []string{"--entrypoint", "echo", ref, "a", "b"}, "a b\n"},
		{"hostname", []string{"--hostname", "boat", ref, "hostname"}, "boat\n"},
		{"no network", []string{"--network", "none", ref, "sh", "-c", "ls /sys/class/net"}, "lo\n"},
		{"loopback up with no network", []string{"--network", "none", ref, "cat", "/sys/class/net/lo/operstate"}, "unknown\n"},
		{"add-host kept in order", []string{"--add-host", "b:10.1.1.2", "--add-host", "a:10.1.1.1", ref, "sh", "-c", "grep 10.1.1 /etc/hosts"}, "10.1.1.2\tb\n10.1.1.1\ta\n"},
		{"dns", []string{"--dns", "10.9.9.9", "--dns-search", "example.test", ref, "sh", "-c", "grep -v '^#' /etc/resolv.conf"}, "nameserver 10.9.9.9\nsearch example.test\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if out := e.ok(append([]string{"run", "--rm"}, c.args...)...); out != c.want {
				t.Fatalf("got %q, want %q", out, c.want)
			}
		})
	}
}

// TestBadInput: each failure is one line on stderr, the right exit code,
// and leaves no container, mount or bundle behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	reg, ref := busybox(t)
	e.ok("pull", ref)
	missing := reg.Addr + "/nosuch:latest"
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("A=1\n  C = x \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// usage marks command-line errors: Docker's CLI ends them with a hint,
	// "Run 'docker VERB --help' for more information" (after a usage line
	// and blank lines).
	const usage = "for more information"
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		// Flag errors exit 125 (Docker's StatusError), argument-count and
		// verb errors 1 (plain errors from the docker CLI's validators).
		{"unknown flag run", []string{"run", "--bogus", ref, "true"}, 125, "unknown flag: --bogus"},
		{"unknown flag ps", []string{"ps", "--bogus"}, 125, "unknown flag: --bogus"},
		{"bad flag value", []string{"stop", "-t", "abc", "x"}, 125, `invalid argument "abc" for "-t, --time" flag`},
		{"flag needs value", []string{"logs", "--tail"}, 125, "flag needs an argument: --tail"},
		{"run without image", []string{"run"}, 1, "berth: 'berth run' requires at least 1 argument"},
		{"logs without container", []string{"logs"}, 1, "'berth logs' requires 1 argument"},
		{"rename one argument", []string{"rename", "a"}, 1, "'berth rename' requires 2 arguments"},
		{"ps with argument", []string{"ps", "x"}, 1, "'berth ps' accepts no arguments"},
		{"commit three arguments", []string{"commit", "a", "b", "c"}, 1, "'berth commit' requires at least 1 and at most 2 arguments"},
		{"unknown verb", []string{"bogusverb"}, 1, "berth: unknown command: berth bogusverb"},
		{"unknown subverb", []string{"network", "bogus"}, 1, "berth: unknown command: berth network bogus"},
		// Container config Docker validates at create.
		{"stop signal run", []string{"run", "--rm", "--stop-signal", "BOGUS", ref, "true"}, 125, "invalid signal: BOGUS"},
		{"stop signal create", []string{"create", "--stop-signal", "SIGBOGUS", ref}, 125, "invalid signal: SIGBOGUS"},
		{"stop signal zero", []string{"create", "--stop-signal", "0", ref}, 125, "invalid signal: 0"},
		{"env-file whitespace", []string{"run", "--rm", "--env-file", envFile, ref, "true"}, 125, "variable 'C ' contains whitespaces"},
		{"log-opt max-file zero", []string{"run", "--rm", "--log-opt", "max-file=0", ref, "true"}, 125, "max-file cannot be less than 1"},
		{"log-opt unknown", []string{"run", "--rm", "--log-opt", "syslog-address=udp://127.0.0.1:1", ref, "true"}, 125, "unknown log opt 'syslog-address' for json-file log driver"},
		{"log-opt mode", []string{"run", "--rm", "--log-opt", "mode=lossy", ref, "true"}, 125, "logging mode not supported: lossy"},
		{"log-opt other", []string{"create", "--log-opt", "labels=a", ref}, 125, "log opt 'labels' is not supported"},
		{"log-opt bad size", []string{"create", "--log-opt", "max-size=lots", ref}, 125, "invalid size: 'lots'"},
		{"log driver", []string{"run", "--rm", "--log-driver", "syslog", ref, "true"}, 125, `log driver "syslog" is not supported`},
		{"expose reversed range", []string{"create", "--expose", "9001-9000", ref}, 125, "invalid range format for --expose: 9001-9000"},
		{"expose host port", []string{"create", "--expose", "8080:80", ref}, 125, "invalid range format for --expose: 8080:80"},
		{"unknown image", []string{"run", "--rm", missing, "true"}, 125, "not found"},
		{"unknown image kept", []string{"run", missing, "true"}, 125, "not found"},
		{"malformed reference", []string{"run", "--rm", "UPPER/Case", "true"}, 125, "invalid reference format"},
		{"pull malformed", []string{"pull", "a:b:c"}, 1, "invalid reference format"},
		{"never pull", []string{"run", "--pull", "never", missing}, 125, "No such image"},
		{"missing executable", []string{"run", "--rm", ref, "/no/such/bin"}, 127, "no such file or directory"},
		{"missing executable in PATH", []string{"run", "--rm", ref, "nosuchcmd"}, 127, "executable file not found"},
		{"not executable", []string{"run", "--rm", ref, "/etc/passwd"}, 126, "permission denied"},
		{"unknown user", []string{"run", "--rm", "-u", "nobody2", ref, "true"}, 125, "unable to find user nobody2"},
		{"bad name", []string{"run", "--name", "-x", ref}, 125, "Invalid container name"},
		{"memory below minimum", []string{"create", "--memory", "1k", ref}, 125, "Minimum memory limit allowed is 6MB"},
		{"memory-swap below memory", []string{"create", "--memory", "10m", "--memory-swap", "8m", ref}, 125, "Minimum memoryswap limit should be larger than memory limit"},
		{"too many cpus", []string{"create", "--cpus", "100000", ref}, 125, "range of CPUs is from 0.01 to"},
		{"mount missing source", []string{"create", "--mount", "type=bind,source=/no/such/dir,target=/x", ref}, 125, `invalid mount config for type "bind": bind source path does not exist: /no/such/dir`},
		{"unknown container", []string{"rm", "nosuch"}, 1, "No such container: nosuch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.berth(c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, c.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr %q does not mention %q", r.stderr, c.want)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) >= 2 && strings.HasSuffix(lines[len(lines)-1], " --help' "+usage) {
				lines = lines[:1] // a command-line error and Docker's hint
			}
			if len(lines) != 1 && !strings.Contains(r.stderr, "Unable to find image") {
				t.Fatalf("error is not one line: %q", r.stderr)
			}
			// Nothing was created (--rm removed what failed to start).
			if ps := e.ok("ps", "-aq"); ps != "" {
				t.Fatalf("left container %q", ps)
			}
			if l := e.leftovers(); len(l) > 0 {
				t.Fatalf("leftovers: %v", l)
			}
		})
	}
	// A failed start without --rm leaves a Created container, as Docker.
	e.berth("run", "--name", "nocmd", ref, "nosuchcmd")
	if ps := e.ok("ps", "-a"); !strings.Contains(ps, "nocmd") || !strings.Contains(ps, "Created") {
		t.Fatalf("ps -a after a failed start:\n%s", ps)
	}
	// Registry down: a one-line error, and nothing is stored.
	reg.Stop()
	e.ok("rmi", "-f", ref)
	before := countDirs(t, filepath.Join(e.root, "content", "blobs", "sha256"))
	r := e.berth("pull", ref)
	if r.code != 1 || !strings.Contains(r.stderr, "registry unreachable") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("registry down: exit %d stderr %q", r.code, r.stderr)
	}
	if r := e.berth("run", "--rm", ref, "true"); r.code != 125 {
		t.Fatalf("run with registry down: exit %d", r.code)
	}
	if images := e.ok("images", "-q"); images != "" {
		t.Fatalf("failed pull registered %q", images)
	}
	if after := countDirs(t, filepath.Join(e.root, "content", "blobs", "sha256")); after > before {
		t.Fatalf("failed pull stored blobs: %d -> %d", before, after)
	}
}

// TestConcurrentRuns: several berth processes at once share one store.
func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	const n = 12
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.berth("run", ref, "true")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	ps := strings.Split(strings.TrimSpace(e.ok("ps", "-a", "--no-trunc")), "\n")[1:]
	names := map[string]bool{}
	for _, line := range ps {
		f := strings.Fields(line)
		names[f[len(f)-1]] = true
	}
	if len(ps) != n || len(names) != n {
		t.Fatalf("want %d containers with unique names, got %d rows, %d names", n, len(ps), len(names))
	}
}

func countDirs(t *testing.T, dir string) int {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestExitCodeWhenKilled: a container killed by signal N exits 128+N.
func TestExitCodeWhenKilled(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	cmd := exec.Command(berthBin, e.args("run", "--name", "victim", ref, "busybox", "sleep", "30")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the container's process runs, then kill it from outside,
	// as the kernel's OOM killer or an operator would.
	pid := 0
	for i := 0; i < 200 && pid == 0; i++ {
		r := e.berth("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "victim")
		if f := strings.Fields(r.stdout); r.code == 0 && len(f) == 2 && f[0] == "true" {
			pid, _ = strconv.Atoi(f[1])
		}
		if pid == 0 {
			time.Sleep(25 * time.Millisecond)
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		t.Fatalf("container never showed as running:\n%s\nstderr: %s", e.ok("ps", "-a"), stderr.String())
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pid, err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 137 {
		t.Fatalf("want exit 137, got %v: %s", err, stderr.String())
	}
	if ps := e.ok("ps", "-a"); !strings.Contains(ps, "Exited (137)") {
		t.Fatalf("ps -a:\n%s", ps)
	}
}
