package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// slowRegistry is a reverse proxy on 127.0.0.1 in front of a real
// registry that trickles blob bodies while slow is set.
type slowRegistry struct {
	addr string
	slow atomic.Bool
}

// chunk and pause set the trickle: 32 KiB every 40ms, about 800 KiB/s.
const (
	slowChunk = 32 << 10
	slowPause = 40 * time.Millisecond
)

func startSlowRegistry(t *testing.T, reg *testutil.Registry) *slowRegistry {
	t.Helper()
	s := &slowRegistry{}
	s.slow.Store(true)
	s.addr = proxyRegistry(t, reg, func(resp *http.Response) error {
		if s.slow.Load() && resp.Request.Method == http.MethodGet && strings.Contains(resp.Request.URL.Path, "/blobs/") {
			resp.Body = &trickle{rc: resp.Body}
		}
		return nil
	})
	return s
}

// proxyRegistry starts a reverse proxy on 127.0.0.1 in front of the real
// registry reg and returns its "127.0.0.1:PORT". modify may rewrite each
// response of the registry (as httputil.ReverseProxy.ModifyResponse) to
// inject a fault the registry itself cannot produce. Bodies are passed on
// as they arrive.
func proxyRegistry(t *testing.T, reg *testutil.Registry, modify func(*http.Response) error) string {
	t.Helper()
	target, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{Proxy: nil}
	proxy.FlushInterval = -1 // pass each chunk on at once
	proxy.ModifyResponse = modify
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// trickle reads at most slowChunk bytes per slowPause.
type trickle struct{ rc io.ReadCloser }

func (r *trickle) Read(p []byte) (int, error) {
	time.Sleep(slowPause)
	if len(p) > slowChunk {
		p = p[:slowChunk]
	}
	return r.rc.Read(p)
}

func (r *trickle) Close() error { return r.rc.Close() }

// randomImage has one small layer first and then n layers of size bytes
// of incompressible data, so that through the slow proxy the first layer
// commits long before the others.
func randomImage(t *testing.T, n, size int) v1.Image {
	t.Helper()
	layers := [][]testutil.TarEntry{{{Name: "small", Content: []byte("small layer\n")}}}
	for i := range n {
		data := make([]byte, size)
		rand.Read(data)
		layers = append(layers, []testutil.TarEntry{{Name: fmt.Sprintf("big%d", i), Content: data}})
	}
	return testutil.LayeredImage(t, layers, v1.Config{Cmd: []string{"/small"}})
}

// startPull starts `berth pull ref` in the background.
func (e *env) startPull(ref string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	e.t.Helper()
	cmd := exec.Command(berthBin, "--root", e.root, "--runroot", e.runroot, "pull", ref)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out, &errb
}

// childOf finds the process whose parent is pid and whose command line
// contains word, waiting up to timeout.
func childOf(t *testing.T, pid int, word string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			status, err := os.ReadFile(d + "/status")
			if err != nil {
				continue
			}
			m := regexp.MustCompile(`(?m)^PPid:\s+(\d+)$`).FindSubmatch(status)
			if m == nil || string(m[1]) != strconv.Itoa(pid) {
				continue
			}
			cmdline, _ := os.ReadFile(d + "/cmdline")
			if strings.Contains(string(cmdline), word) {
				n, _ := strconv.Atoi(filepath.Base(d))
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no child %q of pid %d after %v", word, pid, timeout)
	return 0
}

// statusFields reads the named lines of /proc/PID/status.
func statusFields(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("fetcher status: %v", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

func ingestFiles(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "content", "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestFetcherIsUnprivileged: during a root pull from a deliberately slow
// registry, the process doing the registry I/O is a child of berth running
// as nobody/nogroup with no capabilities at all, no supplementary groups
// and no_new_privs, and the pull still succeeds.
func TestFetcherIsUnprivileged(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	slow := startSlowRegistry(t, reg)
	reg.Push(t, "slow:latest", randomImage(t, 2, 512<<10))
	ref := slow.addr + "/slow:latest"

	cmd, out, errb := e.startPull(ref)
	pid := childOf(t, cmd.Process.Pid, "fetcher", 10*time.Second)
	st := statusFields(t, pid)
	want := map[string]string{
		"Uid":        "65534 65534 65534 65534",
		"Gid":        "65534 65534 65534 65534",
		"Groups":     "",
		"CapInh":     "0000000000000000",
		"CapPrm":     "0000000000000000",
		"CapEff":     "0000000000000000",
		"CapBnd":     "0000000000000000",
		"CapAmb":     "0000000000000000",
		"NoNewPrivs": "1",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("fetcher (pid %d) %s: %q, want %q", pid, k, st[k], v)
		}
	}
	// The parent itself stays root: it is the one that commits.
	if st := statusFields(t, cmd.Process.Pid); !strings.HasPrefix(st["Uid"], "0 ") {
		t.Errorf("berth Uid %q", st["Uid"])
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pull: %v\nstdout: %s\nstderr: %s", err, out, errb)
	}
	if !strings.Contains(out.String(), "Pull complete") || !strings.HasSuffix(out.String(), ref+"\n") {
		t.Fatalf("pull output:\n%s", out)
	}
	// Not a terminal: plain status lines, no byte counts or cursor moves.
	if strings.Contains(out.String(), "\x1b[") || strings.Contains(out.String(), "Downloading") {
		t.Fatalf("non-terminal output has progress bars:\n%q", out)
	}
	for _, s := range []string{"Pulling fs layer", "Verifying Checksum", "Download complete"} {
		if !strings.Contains(out.String(), s) {
			t.Fatalf("output lacks %q:\n%s", s, out)
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fetcher %d still exists after the pull", pid)
	}
	if images := e.ok("images"); !strings.Contains(images, slow.addr+"/slow") {
		t.Fatalf("images does not list the pulled image:\n%s", images)
	}
}

// TestPullInterrupt: Ctrl-C during a pull exits 130, leaves no partial
// blob in the ingest directory and no fetcher behind, and keeps the
// layers already committed, which the next pull reports "Already exists".
func TestPullInterrupt(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	slow := startSlowRegistry(t, reg)
	img := randomImage(t, 3, 2<<20)
	reg.Push(t, "big:latest", img)
	ref := slow.addr + "/big:latest"
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	first := m.Layers[0].Digest

	cmd, out, errb := e.startPull(ref)
	fetcherPid := childOf(t, cmd.Process.Pid, "fetcher", 10*time.Second)
	blob := filepath.Join(e.root, "content", "blobs", "sha256", first.Hex)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(blob); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first layer never committed\nstdout: %s\nstderr: %s", out, errb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ingestFiles(t, e.root)) == 0 {
		t.Fatalf("no download in progress when interrupting (test too fast to mean anything)")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted pull: %v (want exit 130)\nstdout: %s\nstderr: %s", err, out, errb)
	}
	if errb.Len() != 0 {
		t.Errorf("interrupted pull printed %q", errb)
	}
	if left := ingestFiles(t, e.root); len(left) > 0 {
		t.Fatalf("ingest not empty after interrupt: %v", left)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", fetcherPid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fetcher %d outlived the interrupted pull", fetcherPid)
	}
	if images := e.ok("images", "-q"); images != "" {
		t.Fatalf("interrupted pull registered %q", images)
	}

	slow.slow.Store(false)
	again := e.ok("pull", ref)
	if !strings.Contains(again, first.Hex[:12]+": Already exists") {
		t.Fatalf("second pull did not reuse the committed layer:\n%s", again)
	}
	for _, l := range m.Layers[1:] {
		if !strings.Contains(again, l.Digest.Hex[:12]+": Pull complete") {
			t.Fatalf("second pull did not fetch %s:\n%s", l.Digest, again)
		}
	}
	if left := ingestFiles(t, e.root); len(left) > 0 {
		t.Fatalf("ingest not empty after a pull: %v", left)
	}
}

// heldProxy is a reverse proxy on 127.0.0.1 in front of reg that holds
// the first request match accepts until release is called (held is
// closed once it arrives), so that a test can look at the processes
// doing registry I/O while one of their requests is open.
type heldProxy struct {
	addr    string
	held    chan struct{}
	release func()
}

func startHeldProxy(t *testing.T, reg *testutil.Registry, match func(*http.Request) bool) *heldProxy {
	t.Helper()
	target, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{Proxy: nil}
	p := &heldProxy{held: make(chan struct{})}
	gate := make(chan struct{})
	var once, heldOnce sync.Once
	p.release = func() { once.Do(func() { close(gate) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r) {
			first := false
			heldOnce.Do(func() { first = true })
			if first {
				close(p.held)
				<-gate
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(p.release)
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// tcpInodes lists the socket inodes of the TCP connections whose remote
// end is 127.0.0.1:port (from /proc/net/tcp: one network namespace, all
// processes).
func tcpInodes(t *testing.T, port string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	remote := fmt.Sprintf("0100007F:%04X", p)
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[2] == remote && f[9] != "0" {
			out[f[9]] = true
		}
	}
	return out
}

// socketInodes lists the socket inodes among pid's open descriptors.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

// checkUnprivilegedIO runs berth args in the background against the
// proxy p, and while p holds a request checks that berth's fetcher child
// is nobody with no capabilities and no_new_privs, that the connections
// to the registry are the child's, and that berth itself holds none.
// It returns the command's outcome.
func checkUnprivilegedIO(t *testing.T, e *env, p *heldProxy, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(berthBin, e.args(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	select {
	case <-p.held:
	case <-time.After(30 * time.Second):
		t.Fatalf("berth %v sent no request to hold", args)
	}
	pid := childOf(t, cmd.Process.Pid, "fetcher", 5*time.Second)
	st := statusFields(t, pid)
	for k, v := range map[string]string{
		"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534", "Groups": "",
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1",
	} {
		if st[k] != v {
			t.Errorf("berth %s: fetcher (pid %d) %s: %q, want %q", args[0], pid, k, st[k], v)
		}
	}
	_, port, _ := strings.Cut(p.addr, ":")
	conns := tcpInodes(t, port)
	parent, child := socketInodes(t, cmd.Process.Pid), socketInodes(t, pid)
	childConns := 0
	for ino := range conns {
		if parent[ino] {
			t.Errorf("berth %s: the root process (pid %d) holds a connection to the registry (socket %s)", args[0], cmd.Process.Pid, ino)
		}
		if child[ino] {
			childConns++
		}
	}
	if childConns == 0 {
		t.Errorf("berth %s: none of the %d connections to the registry is the fetcher's (test cannot see them)", args[0], len(conns))
	}
	p.release()
	err := cmd.Wait()
	return out.String(), errb.String(), err
}

// TestRegistryIOIsUnprivileged: push, login and the tag listing of
// `pull -a` run their registry I/O in the unprivileged fetcher: while the
// registry holds one of their requests, the child is nobody with no
// capabilities, and every connection to the registry is the child's.
func TestRegistryIOIsUnprivileged(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t, testutil.WithHtpasswd("dave", "pa55"))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	src, _ := reg.Push(t, "src:1", randomImage(t, 1, 64<<10))

	t.Run("login", func(t *testing.T) {
		p := startHeldProxy(t, reg, func(r *http.Request) bool { return r.URL.Path == "/v2/" })
		out, errs, err := checkUnprivilegedIO(t, e, p, "pa55\n", "login", "-u", "dave", "--password-stdin", p.addr)
		if err != nil || out != "Login Succeeded\n" {
			t.Fatalf("login: %v\n%s%s", err, out, errs)
		}
		e.loginStdin(reg.Addr, "dave", "pa55")
	})
	t.Run("push", func(t *testing.T) {
		e.ok("pull", src)
		p := startHeldProxy(t, reg, func(r *http.Request) bool { return r.Method == http.MethodPatch })
		if r := e.loginStdin(p.addr, "dave", "pa55"); r.code != 0 {
			t.Fatalf("login: %+v", r)
		}
		dst := p.addr + "/dst:2"
		e.ok("tag", src, dst)
		out, errs, err := checkUnprivilegedIO(t, e, p, "", "push", dst)
		if err != nil {
			t.Fatalf("push: %v\n%s%s", err, out, errs)
		}
		if !strings.HasPrefix(out, "The push refers to repository ["+p.addr+"/dst]\n") || !strings.Contains(out, ": Pushed\n") ||
			!regexp.MustCompile(`(?m)^2: digest: sha256:[0-9a-f]{64} size: \d+\n$`).MatchString(out) {
			t.Fatalf("push output:\n%s", out)
		}
		for _, s := range []string{"Preparing", "Pushed"} {
			if !strings.Contains(out, s) {
				t.Fatalf("push output lacks %q:\n%s", s, out)
			}
		}
		if strings.Contains(out, "Pushing") || strings.Contains(out, "\x1b[") {
			t.Fatalf("non-terminal push output has progress bars:\n%q", out)
		}
		// Pushed under the name with the digest stored: a second push
		// finds every layer there.
		again := e.ok("push", dst)
		if !strings.Contains(again, "Layer already exists") || strings.Contains(again, "Pushed") {
			t.Fatalf("second push:\n%s", again)
		}
	})
	t.Run("tags", func(t *testing.T) {
		p := startHeldProxy(t, reg, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/tags/list") })
		if r := e.loginStdin(p.addr, "dave", "pa55"); r.code != 0 {
			t.Fatalf("login: %+v", r)
		}
		out, errs, err := checkUnprivilegedIO(t, e, p, "", "pull", "-a", p.addr+"/src")
		if err != nil || !strings.HasSuffix(out, p.addr+"/src\n") {
			t.Fatalf("pull -a: %v\n%s%s", err, out, errs)
		}
		if e.inspect(p.addr+"/src:1", "{{.Id}}") == "" {
			t.Fatal("pull -a did not pull the tag")
		}
	})
}
