package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// zombieChildren lists the helper's (pid's) children that are zombies,
// with their names.
func zombieChildren(pid int) []string {
	files, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(data)) {
			stat, err := os.ReadFile("/proc/" + c + "/stat")
			if err != nil {
				continue
			}
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && s[i+2] == 'Z' {
				out = append(out, c+" "+s[strings.IndexByte(s, '(')+1:i])
			}
		}
	}
	return out
}

// TestServiceReapsOrphans: after API execs (which make the helper a child
// subreaper) and detached containers whose monitors are re-parented to
// it, the helper has no zombie children, and exec exit codes still come
// back.
func TestServiceReapsOrphans(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	cfg := t.TempDir()
	if r := svc.docker(t, cfg, "run", "-d", "--name", "ex", ref, "sleep", "300"); r.code != 0 {
		t.Fatalf("docker run -d: %d %s", r.code, r.stderr)
	}
	for i := range 4 {
		if r := svc.docker(t, cfg, "exec", "ex", "sh", "-c", fmt.Sprintf("exit %d", i+2)); r.code != i+2 {
			t.Errorf("exec exit %d: got %d %s", i+2, r.code, r.stderr)
		}
	}
	if r := svc.docker(t, cfg, "exec", "-d", "-t", "ex", "sleep", "0.2"); r.code != 0 {
		t.Errorf("exec -d -t: %d %s", r.code, r.stderr)
	}
	for i := range 3 {
		name := fmt.Sprintf("d%d", i)
		if r := svc.docker(t, cfg, "run", "-d", "--name", name, ref, "sleep", "300"); r.code != 0 {
			t.Fatalf("docker run -d: %d %s", r.code, r.stderr)
		}
		if r := svc.docker(t, cfg, "rm", "-f", name); r.code != 0 {
			t.Fatalf("docker rm -f: %d %s", r.code, r.stderr)
		}
	}
	if r := svc.docker(t, cfg, "exec", "ex", "true"); r.code != 0 {
		t.Errorf("exec after the runs: %d %s", r.code, r.stderr)
	}
	if r := svc.docker(t, cfg, "rm", "-f", "ex"); r.code != 0 {
		t.Fatalf("docker rm -f: %d %s", r.code, r.stderr)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		z := zombieChildren(svc.cmd.Process.Pid)
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper keeps zombie children: %v", z)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServiceManyStreams: 300 idle event streams do not hold up short
// calls.
func TestServiceManyStreams(t *testing.T) {
	e := newEnv(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	const streams = 300
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range streams {
		c, err := net.Dial("unix", svc.sock)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /v1.50/events HTTP/1.1\r\nHost: berth\r\n\r\n")
	}
	// Every stream has its headers (the server answers before any event).
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("stream %d: status %d", i, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	start := time.Now()
	cl := svc.client()
	cl.Timeout = 10 * time.Second
	for range 5 {
		resp, err := cl.Get("http://berth/v1.50/containers/json")
		if err != nil {
			t.Fatalf("/containers/json with %d open streams: %v", streams, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/containers/json: %d", resp.StatusCode)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("5 × /containers/json took %s with %d open streams", d, streams)
	}
}

// TestServiceBindConfinement: binds that would expose berth's state
// through a parent directory or a symbolic link are refused (400, in
// Docker's words) for -v, --mount and the API's Binds.
func TestServiceBindConfinement(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	cfg := t.TempDir()
	if r := svc.docker(t, cfg, "pull", ref); r.code != 0 {
		t.Fatalf("pull: %s", r.stderr)
	}
	parent := filepath.Dir(e.root)
	lnk := filepath.Join(t.TempDir(), "lnk")
	if err := os.Symlink(e.root, lnk); err != nil {
		t.Fatal(err)
	}
	free := t.TempDir()
	for _, args := range [][]string{
		{"run", "--rm", "-v", parent + ":/h", ref, "true"},
		{"run", "--rm", "-v", lnk + ":/h", ref, "true"},
		{"create", "--mount", "type=bind,source=" + lnk + ",target=/h", ref, "true"},
		{"create", "--mount", "type=bind,source=" + parent + ",target=/h", ref, "true"},
		{"run", "--rm", "-v", e.runroot + "/../run:/h", ref, "true"},
	} {
		r := svc.docker(t, cfg, args...)
		want := 125 // docker run's code for a daemon error; create's is 1
		if args[0] == "create" {
			want = 1
		}
		if r.code != want || !strings.Contains(r.stderr, `Error response from daemon: invalid mount config for type "bind": bind source path`) {
			t.Errorf("docker %v: exit %d, stderr %q; want %d and an invalid mount config error", args, r.code, r.stderr, want)
		}
	}
	body := `{"Image":"` + ref + `","HostConfig":{"Binds":["` + lnk + `:/h"]}}`
	resp, err := svc.client().Post("http://berth/v1.50/containers/create", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(b.String(), "is inside berth's state") {
		t.Errorf("API bind through a symbolic link to the root: %d %s", resp.StatusCode, b.String())
	}
	// A symbolic link swapped after create is caught at start.
	swap := filepath.Join(t.TempDir(), "swap")
	if err := os.Symlink(free, swap); err != nil {
		t.Fatal(err)
	}
	if r := svc.docker(t, cfg, "create", "--name", "sw", "-v", swap+":/h", ref, "true"); r.code != 0 {
		t.Fatalf("create with a harmless link: %d %s", r.code, r.stderr)
	}
	os.Remove(swap)
	if err := os.Symlink(e.root, swap); err != nil {
		t.Fatal(err)
	}
	if r := svc.docker(t, cfg, "start", "sw"); r.code == 0 || !strings.Contains(r.stderr, "is inside berth's state") {
		t.Errorf("start after the link was swapped to the root: %d %q", r.code, r.stderr)
	}
	// An ordinary bind still works.
	if r := svc.docker(t, cfg, "run", "--rm", "-v", free+":/h", ref, "true"); r.code != 0 {
		t.Errorf("bind of an unrelated directory: %d %s", r.code, r.stderr)
	}
}

// TestServiceInheritedDescriptors: a descriptor the service's launcher
// left open (not close-on-exec) does not reach the API server.
func TestServiceInheritedDescriptors(t *testing.T) {
	e := newEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	stray := fmt.Sprintf("pipe:[%d]", st.Ino)
	svc := startServiceWith(t, e, func(c *exec.Cmd) { c.ExtraFiles = []*os.File{r, w} })
	svc.requireSplit(t)
	// The helper got them (fds 3 and 4)…
	if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/3", svc.cmd.Process.Pid)); target != stray {
		t.Fatalf("the test's pipe is not the helper's fd 3 (%q): the check below would prove nothing", target)
	}
	// …the server has none of them.
	pid := svc.serverPid(t)
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		target, _ := os.Readlink(fd)
		if target == stray {
			t.Errorf("API server inherited the launcher's pipe: %s → %s", fd, target)
		}
	}
}
