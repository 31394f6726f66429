package testutil

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryBinary is the path of Debian's distribution v2 registry server
// (package docker-registry). StartRegistry runs it as
// "docker-registry serve CONFIG.yml".
const RegistryBinary = "/usr/bin/docker-registry"

// registryReadyTimeout bounds how long StartRegistry waits for GET /v2/ to
// answer 200 after the process starts.
const registryReadyTimeout = 10 * time.Second

// Registry is a running docker-registry (distribution v2) process serving
// plain HTTP on a free 127.0.0.1 port, with no authentication unless an
// option asks for it (WithHtpasswd, WithTokenAuth), storing blobs
// and manifests under a per-test temporary directory. It is stopped (SIGKILL
// by PID, then reaped) in t.Cleanup, before the storage directory is removed.
type Registry struct {
	// Addr is "127.0.0.1:PORT", the registry host for references such as
	// Addr+"/repo:tag".
	Addr string
	// StorageDir is the registry's filesystem storage root (a t.TempDir),
	// for tests that inspect or damage stored blobs.
	StorageDir string
	// Username and Password are the account an auth option configured;
	// empty for an anonymous registry. Push uses them.
	Username, Password string
	// TokenRealm is the token server's URL for a WithTokenAuth registry,
	// else "".
	TokenRealm string

	tokens   *tokenServer
	cmd      *exec.Cmd
	stderr   *lockedBuffer
	exited   chan struct{} // closed once the process has been reaped
	stopOnce sync.Once
}

// URL returns the registry's base URL, "http://127.0.0.1:PORT".
func (r *Registry) URL() string { return "http://" + r.Addr }

// Stderr returns what the registry process has written to stderr so far
// (its log, at level error).
func (r *Registry) Stderr() string { return r.stderr.String() }

// TokensIssued is how many tokens a WithTokenAuth registry's token server
// has issued so far (0 for other registries).
func (r *Registry) TokensIssued() int {
	if r.tokens == nil {
		return 0
	}
	return int(r.tokens.issued.Load())
}

// StartRegistry starts a docker-registry process on a free 127.0.0.1 port and
// waits (up to about 10s) until GET http://ADDR/v2/ answers 200 (401 with
// an auth option). Options choose authentication; none means anonymous
// access for everyone. It skips t
// if /usr/bin/docker-registry is missing and fails t, with the registry's
// stderr, if the process does not become ready. If the chosen port is taken
// before the registry binds it, it retries with another port.
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	if _, err := os.Stat(RegistryBinary); err != nil {
		t.Skipf("testutil: %s not found (%v); install it with `apt-get install docker-registry`", RegistryBinary, err)
	}
	storage := t.TempDir()
	confDir := t.TempDir()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	authYAML, tokens, err := authConfig(t, o, confDir)
	if err != nil {
		t.Fatalf("testutil: registry auth: %v", err)
	}

	const attempts = 3
	for i := 1; ; i++ {
		addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
		r, err := startRegistry(addr, storage, confDir, authYAML)
		if err == nil {
			r.Username, r.Password, r.tokens = o.user, o.password, tokens
			if tokens != nil {
				r.TokenRealm = tokens.realm()
			}
			// TempDir cleanups were registered earlier and run later (LIFO),
			// so the process is gone before its storage is removed.
			t.Cleanup(func() {
				r.Stop()
				if t.Failed() {
					if s := r.Stderr(); s != "" {
						t.Logf("registry %s stderr:\n%s", r.Addr, s)
					}
				}
			})
			return r
		}
		if i < attempts && errors.Is(err, errAddrInUse) {
			continue
		}
		t.Fatalf("testutil: start registry: %v", err)
	}
}

var errAddrInUse = errors.New("address already in use")

// startRegistry runs docker-registry on addr and waits for it to be ready.
// The error wraps errAddrInUse if addr was taken.
func startRegistry(addr, storage, confDir, authYAML string) (*Registry, error) {
	conf := filepath.Join(confDir, "config.yml")
	if err := os.WriteFile(conf, append(registryConfig(addr, storage), authYAML...), 0o600); err != nil {
		return nil, err
	}

	r := &Registry{
		Addr:       addr,
		StorageDir: storage,
		stderr:     &lockedBuffer{},
		exited:     make(chan struct{}),
	}
	r.cmd = exec.Command(RegistryBinary, "serve", conf)
	r.cmd.Env = registryEnv()
	r.cmd.Stdout = r.stderr
	r.cmd.Stderr = r.stderr
	// If the test binary dies without running cleanups (e.g. a -timeout
	// panic), the kernel kills the registry too. Pdeathsig fires when the
	// forking thread exits, so fork from a goroutine that keeps its thread
	// locked until the process has been reaped.
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := r.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = r.cmd.Wait()
		close(r.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("exec %s: %w", RegistryBinary, err)
	}

	ready := http.StatusOK
	if authYAML != "" {
		ready = http.StatusUnauthorized
	}
	if err := r.waitReady(registryReadyTimeout, ready); err != nil {
		r.Stop()
		msg := r.Stderr()
		if strings.Contains(msg, "address already in use") {
			return nil, fmt.Errorf("%s: %w", addr, errAddrInUse)
		}
		return nil, fmt.Errorf("%s: %w; registry stderr:\n%s", addr, err, msg)
	}
	return r, nil
}

// waitReady polls GET /v2/ until it answers status, the process exits, or
// timeout passes.
func (r *Registry) waitReady(timeout time.Duration, status int) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("registry exited before it was ready (%v)", r.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("registry not ready after %v: %v", timeout, last)
}

// Stop kills the registry process with SIGKILL (by PID) and waits until it
// has been reaped, so that afterwards connections to Addr are refused; use it
// for "registry down" tests. It is idempotent and safe to call concurrently;
// the storage directory is left in place until the test ends.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		select {
		case <-r.exited:
		default:
			// ESRCH only means it already exited and Wait is reaping it.
			_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-r.exited
	})
}

// Push writes img to this registry as Addr+"/"+repoTag over plain HTTP with
// go-containerregistry (as Username/Password if set, else anonymous), and
// returns the full reference
// ("127.0.0.1:PORT/repo:tag") and the manifest digest ("sha256:<64 hex>").
// repoTag must be "repo:tag" or "path/to/repo:tag" with an explicit tag. It
// fails t if the reference is invalid or the push fails.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) (ref string, digest string) {
	t.Helper()
	tag, err := name.NewTag(r.Addr+"/"+repoTag, name.Insecure, name.StrictValidation)
	if err != nil {
		t.Fatalf("testutil: push: bad reference %q: %v", repoTag, err)
	}
	var auth authn.Authenticator = authn.Anonymous
	if r.Username != "" {
		auth = &authn.Basic{Username: r.Username, Password: r.Password}
	}
	if err := remote.Write(tag, img, remote.WithContext(t.Context()), remote.WithAuth(auth)); err != nil {
		t.Fatalf("testutil: push %s: %v", tag.Name(), err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("testutil: push %s: digest: %v", tag.Name(), err)
	}
	return tag.Name(), d.String()
}

// registryConfig renders a distribution v2 configuration (version 0.1) for a
// throw-away registry: filesystem storage at root, plain HTTP on addr, no
// auth (the caller appends an auth: section), errors-only logging, and no redis, health checks, notifications,
// debug server or upload purging.
func registryConfig(addr, root string) []byte {
	// JSON strings are valid YAML double-quoted scalars, which keeps odd
	// characters in temp paths from breaking the document.
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return []byte(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ` + q(root) + `
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
  redirect:
    disable: true
http:
  addr: ` + q(addr) + `
  headers:
    X-Content-Type-Options: [nosniff]
`)
}

// registryEnv is the test process environment without REGISTRY_* variables,
// which docker-registry would otherwise apply as config overrides.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	return env
}

// lockedBuffer is a bytes.Buffer safe for the exec copier goroutine and
// readers in the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
