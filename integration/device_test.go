package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDevice checks `run --device`: the node appears in the container
// with the host's type and numbers, the cgroup rule enforces the
// permissions, inspect shows HostConfig.Devices, and bad mappings fail
// create with exit 125 leaving no container.
func TestDevice(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)

	out := e.ok("run", "--rm", "--device", "/dev/null:/dev/mynull", ref, "sh", "-c", "echo hi > /dev/mynull && ls -l /dev/mynull")
	if !regexp.MustCompile(`(?m)^c[rwx-]{9}\s.*\s1,\s+3\s.*/dev/mynull$`).MatchString(out) {
		t.Errorf("ls -l /dev/mynull: %q, want a character device 1, 3", out)
	}

	// /dev/zero is among Docker's default allowed devices (rwm), so as in
	// Docker an "r" mapping of it still reads (and writes): the user's
	// rule only adds to the defaults.
	if out := e.ok("run", "--rm", "--device", "/dev/zero:/dev/z:r", ref, "sh", "-c", "head -c 5 /dev/z | wc -c"); strings.TrimSpace(out) != "5" {
		t.Errorf("reading /dev/z: %q", out)
	}

	// The cgroup rule is what grants access: /dev/loop-control (10:237) is not among
	// the defaults, so with "r" it opens for reading but not for writing,
	// with "rw" for both. Opening it has no side effects.
	if _, err := os.Stat("/dev/loop-control"); err == nil {
		script := `if (exec 3</dev/t); then echo READ-OK; fi; if (exec 3>/dev/t); then echo WRITE-OK; else echo WRITE-DENIED; fi`
		r := e.berth("run", "--rm", "--device", "/dev/loop-control:/dev/t:r", ref, "sh", "-c", script)
		if r.code != 0 || r.stdout != "READ-OK\nWRITE-DENIED\n" || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("--device /dev/loop-control:/dev/t:r: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if out := e.ok("run", "--rm", "--device", "/dev/loop-control:/dev/t:rw", ref, "sh", "-c", script); out != "READ-OK\nWRITE-OK\n" {
			t.Errorf("--device /dev/loop-control:/dev/t:rw: %q", out)
		}
	}

	e.ok("create", "--name", "withdev", "--device", "/dev/null:/dev/mynull:rw", "--device", "/dev/zero", ref, "true")
	want := []deviceMapping{{"/dev/null", "/dev/mynull", "rw"}, {"/dev/zero", "/dev/zero", "rwm"}}
	if got := e.inspectDevices("withdev"); !slices.Equal(got, want) {
		t.Errorf("HostConfig.Devices = %+v, want %+v", got, want)
	}
	e.ok("rm", "withdev")

	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		device, msg string
		usage       bool // a flag error: Docker's usage hint follows the message
	}{
		{file + ":/dev/x", `error gathering device information while adding custom device "` + file + `": not a device node`, false},
		{"/dev/no-such-device-here", `error gathering device information while adding custom device "/dev/no-such-device-here": no such file or directory`, false},
		{"/dev/null:/dev/x:rwx", `invalid argument "/dev/null:/dev/x:rwx" for "--device" flag: bad mode specified: rwx`, true},
		{"/dev/null:dev/x", `dev/x is not an absolute path`, true},
		{":/dev/x", `bad format for path: :/dev/x`, true},
	} {
		for _, verb := range []string{"run", "create"} {
			r := e.berth(verb, "--device", tc.device, ref, "true")
			first, rest, _ := strings.Cut(strings.TrimSpace(r.stderr), "\n")
			if r.code != 125 || !strings.Contains(first, tc.msg) {
				t.Errorf("%s --device %s: exit %d, stderr %q; want 125 and %q", verb, tc.device, r.code, r.stderr, tc.msg)
			}
			if !tc.usage && rest != "" || tc.usage && !strings.Contains(rest, "--help") {
				t.Errorf("%s --device %s: stderr %q: want one line (plus the usage hint for a flag error)", verb, tc.device, r.stderr)
			}
		}
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Errorf("failed creates left containers: %q", ps)
	}
}

// TestDeviceAPI checks HostConfig.Devices on POST /containers/create: a
// good mapping is stored and shown by inspect, and bad ones get 400 with
// the same messages as the CLI and create nothing.
func TestDeviceAPI(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	svc := startService(t, e)
	c := svc.client()
	create := func(name, devices string) (int, string) {
		t.Helper()
		body := `{"Image": "` + ref + `", "Cmd": ["true"], "HostConfig": {"Devices": ` + devices + `}}`
		resp, err := c.Post("http://berth/v1.50/containers/create?name="+name, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := create("apidev", `[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "r"}]`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	if got, want := e.inspectDevices("apidev"), []deviceMapping{{"/dev/null", "/dev/mynull", "r"}}; !slices.Equal(got, want) {
		t.Errorf("HostConfig.Devices = %+v, want %+v", got, want)
	}
	out := e.ok("start", "-a", "apidev")
	if out != "" {
		t.Errorf("start -a apidev: %q", out)
	}
	e.ok("rm", "apidev")

	// The docker CLI sends --device as HostConfig.Devices.
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		r := svc.docker(t, t.TempDir(), "run", "--rm", "--device", "/dev/null:/dev/mynull:rw", ref, "ls", "-l", "/dev/mynull")
		if r.code != 0 || !regexp.MustCompile(`^c.*\s1,\s+3\s.*/dev/mynull\n$`).MatchString(r.stdout) {
			t.Errorf("docker run --device: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	}

	dir := t.TempDir()
	for _, tc := range []struct{ devices, msg string }{
		{`[{"PathOnHost": "` + dir + `", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]`, "not a device node"},
		{`[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwx"}]`, "bad mode specified: rwx"},
		{`[{"PathOnHost": "/dev/null", "PathInContainer": "x", "CgroupPermissions": "r"}]`, "x is not an absolute path"},
		{`[{"PathOnHost": "", "PathInContainer": "/dev/x", "CgroupPermissions": "r"}]`, "bad format for path"},
	} {
		if code, body := create("bad", tc.devices); code != http.StatusBadRequest || !strings.Contains(body, tc.msg) {
			t.Errorf("create with %s: %d %s; want 400 containing %q", tc.devices, code, body, tc.msg)
		}
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Errorf("failed creates left containers: %q", ps)
	}
}

// deviceMapping is one entry of inspect's HostConfig.Devices.
type deviceMapping struct{ PathOnHost, PathInContainer, CgroupPermissions string }

// inspectDevices returns HostConfig.Devices of container name as inspect
// shows it.
func (e *env) inspectDevices(name string) []deviceMapping {
	e.t.Helper()
	var hc struct{ Devices []deviceMapping }
	var out []struct{ HostConfig json.RawMessage }
	if err := json.Unmarshal([]byte(e.ok("inspect", name)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("inspect %s: %v", name, err)
	}
	if err := json.Unmarshal(out[0].HostConfig, &hc); err != nil {
		e.t.Fatal(err)
	}
	return hc.Devices
}
