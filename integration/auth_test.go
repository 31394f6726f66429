package integration

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// loginStdin runs `berth login -u user --password-stdin server`.
func (e *env) loginStdin(server, user, password string) result {
	e.t.Helper()
	return e.berthIO(strings.NewReader(password+"\n"), nil, "login", "-u", user, "--password-stdin", server)
}

// configAuth is the "auth" of server's entry in DOCKER_CONFIG's config.json.
func configAuth(t *testing.T, dir, server string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct{ Auth string }
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	return cfg.Auths[server].Auth
}

// TestRegistryAuth: against a registry with HTTP basic auth (htpasswd) and
// one with the distribution token flow (a bearer token from a token server
// that wants basic credentials), a pull without login fails with one line
// naming the image and "unauthorized"; a login with a wrong password exits
// 1 and saves nothing; after login (config.json, Docker's format) pull and
// push work; after logout pull fails again.
func TestRegistryAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  testutil.RegistryOption
	}{
		{"htpasswd", testutil.WithHtpasswd("alice", "s3cret")},
		{"token", testutil.WithTokenAuth("bob", "t0ken-pass")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testutil.StartRegistry(t, tc.opt)
			ref, _ := reg.Push(t, "private/busybox:1", testutil.BusyboxImage(t))
			cfgDir := t.TempDir()
			t.Setenv("DOCKER_CONFIG", cfgDir)
			e := newEnv(t)

			e.pullFails(ref, reg.Addr+"/private/busybox", "pull access denied", "unauthorized", "authentication required")

			if r := e.loginStdin(reg.Addr, reg.Username, "wrong"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 ||
				!strings.Contains(r.stderr, "unauthorized") || !strings.Contains(r.stderr, reg.Addr) {
				t.Fatalf("login with a wrong password: exit %d %q", r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(cfgDir, "config.json")); err == nil {
				t.Fatal("a failed login wrote credentials")
			}
			tokens := reg.TokensIssued()
			if r := e.loginStdin(reg.Addr, reg.Username, reg.Password); r.code != 0 || r.stdout != "Login Succeeded\n" {
				t.Fatalf("login: exit %d %q %q", r.code, r.stdout, r.stderr)
			}
			if got, want := configAuth(t, cfgDir, reg.Addr), base64.StdEncoding.EncodeToString([]byte(reg.Username+":"+reg.Password)); got != want {
				t.Fatalf("config.json auth for %s: %q, want %q", reg.Addr, got, want)
			}

			e.ok("pull", ref)
			if e.inspect(ref, "{{.Id}}") == "" {
				t.Fatal("pulled image has no ID")
			}
			if tc.name == "token" && reg.TokensIssued() <= tokens {
				t.Fatal("the pull got no token from the token server")
			}
			pushed := reg.Addr + "/private/copy:2"
			e.ok("tag", ref, pushed)
			e.ok("push", pushed)
			b := newEnv(t)
			b.ok("pull", pushed)
			if b.inspect(pushed, "{{.Id}}") != e.inspect(ref, "{{.Id}}") {
				t.Fatal("the pushed and pulled image differs")
			}

			if out := e.ok("logout", reg.Addr); out != "Removing login credentials for "+reg.Addr+"\n" {
				t.Fatalf("logout printed %q", out)
			}
			if out := e.ok("logout", reg.Addr); out != "Not logged in to "+reg.Addr+"\n" {
				t.Fatalf("second logout printed %q", out)
			}
			c := newEnv(t)
			c.pullFails(ref, reg.Addr+"/private/busybox", "pull access denied", "unauthorized")
			// Docker's words for a registry that wants credentials: "no
			// basic auth credentials" (HTTP basic), the registry's
			// "unauthorized: …" (token flow); never a raw HTTP error.
			want := map[string]string{"htpasswd": "no basic auth credentials", "token": "unauthorized: "}[tc.name]
			if r := e.berth("push", pushed); r.code != 1 || strings.Count(r.stderr, "\n") != 1 ||
				!strings.Contains(r.stderr, "pushing "+pushed+": "+want) || strings.Contains(r.stderr, "HEAD") {
				t.Fatalf("push after logout: exit %d %q", r.code, r.stderr)
			}
		})
	}
}

// TestFetcherGetsCredentialsPrivately: a root pull from a registry that
// wants credentials hands them to the unprivileged fetcher over its pipe,
// never in its argv or environment, where other users could read them
// (/proc/PID/cmdline is world-readable; environ is readable by the same
// uid, which the fetcher shares with every other "nobody" process).
func TestFetcherGetsCredentialsPrivately(t *testing.T) {
	const password = "Pr1vate-Pa55word"
	reg := testutil.StartRegistry(t, testutil.WithHtpasswd("carol", password))
	slow := startSlowRegistry(t, reg)
	reg.Push(t, "slow:1", randomImage(t, 2, 512<<10))
	ref := slow.addr + "/slow:1"
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	e := newEnv(t)
	if r := e.loginStdin(slow.addr, "carol", password); r.code != 0 {
		t.Fatalf("login: exit %d %q", r.code, r.stderr)
	}

	cmd, out, errb := e.startPull(ref)
	pid := childOf(t, cmd.Process.Pid, "fetcher", 10*time.Second)
	secrets := []string{password, base64.StdEncoding.EncodeToString([]byte("carol:" + password))}
	for _, f := range []string{"cmdline", "environ"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Fatalf("fetcher %s: %v", f, err)
		}
		for _, s := range secrets {
			if strings.Contains(string(data), s) {
				t.Fatalf("fetcher's %s holds the credential: %q", f, data)
			}
		}
		if f == "environ" && strings.Contains(string(data), "DOCKER_CONFIG") {
			t.Fatalf("fetcher's environment names the credentials file: %q", data)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("pull with credentials: %v\nstdout: %s\nstderr: %s", err, out, errb)
	}
}

// credentialHelper writes a docker-credential-NAME shell script into a
// new directory, put first on PATH: it keeps one credential in a file
// next to itself and logs each action it was asked for.
func credentialHelper(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
d=$(dirname "$0")
echo "$1" >> "$d/log"
case "$1" in
store) cat > "$d/cred.json" ;;
get) read url; if [ -f "$d/cred.json" ]; then cat "$d/cred.json"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) read url; rm -f "$d/cred.json" ;;
*) exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

// TestCredentialHelpers: with config.json's credsStore, login stores the
// credential through `docker-credential-NAME store` (nothing in the
// file, no plaintext warning), pull and push get it back with `get`,
// logout erases it; a credHelpers entry naming a helper that is not
// installed fails the login with Docker's error, exit 1, and writes
// nothing.
func TestCredentialHelpers(t *testing.T) {
	const password = "h3lper-pass"
	reg := testutil.StartRegistry(t, testutil.WithHtpasswd("erin", password))
	ref, _ := reg.Push(t, "private/busybox:1", testutil.BusyboxImage(t))
	helperDir := credentialHelper(t, "berthtest")
	cfgDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfgDir)
	cfgPath := filepath.Join(cfgDir, "config.json")
	if err := os.WriteFile(cfgPath, []byte(`{"credsStore": "berthtest", "detachKeys": "ctrl-x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)

	r := e.loginStdin(reg.Addr, "erin", password)
	if r.code != 0 || r.stdout != "Login Succeeded\n" || strings.Contains(r.stderr, "unencrypted") {
		t.Fatalf("login with a credsStore: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	stored, err := os.ReadFile(filepath.Join(helperDir, "cred.json"))
	if err != nil {
		t.Fatalf("the helper stored nothing: %v", err)
	}
	var cred struct{ ServerURL, Username, Secret string }
	if err := json.Unmarshal(stored, &cred); err != nil || cred.ServerURL != reg.Addr || cred.Username != "erin" || cred.Secret != password {
		t.Fatalf("helper got %s (%v)", stored, err)
	}
	cfg, _ := os.ReadFile(cfgPath)
	if strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte("erin:"+password))) || strings.Contains(string(cfg), password) ||
		!strings.Contains(string(cfg), "detachKeys") {
		t.Fatalf("config.json after login with a helper:\n%s", cfg)
	}

	e.ok("pull", ref)
	pushed := reg.Addr + "/private/copy:2"
	e.ok("tag", ref, pushed)
	e.ok("push", pushed)
	log, _ := os.ReadFile(filepath.Join(helperDir, "log"))
	if !strings.Contains(string(log), "get") {
		t.Fatalf("pull and push never asked the helper: %q", log)
	}
	if out := e.ok("logout", reg.Addr); out != "Removing login credentials for "+reg.Addr+"\n" {
		t.Fatalf("logout printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(helperDir, "cred.json")); err == nil {
		t.Fatal("logout did not erase the helper's credential")
	}

	// A helper that is not installed.
	if err := os.WriteFile(cfgPath, []byte(`{"credHelpers": {"`+reg.Addr+`": "nosuchhelper"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.loginStdin(reg.Addr, "erin", password)
	want := `Error saving credentials: error storing credentials - err: exec: "docker-credential-nosuchhelper": executable file not found in $PATH`
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("login with a missing helper: exit %d %q", r.code, r.stderr)
	}
	if cfg, _ := os.ReadFile(cfgPath); strings.Contains(string(cfg), "auths") {
		t.Fatalf("a failed helper login wrote config.json:\n%s", cfg)
	}
}
