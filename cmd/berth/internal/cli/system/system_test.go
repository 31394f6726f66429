package system

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	systemtypes "github.com/moby/moby/api/types/system"
)

// fakeProgram writes an executable at dir/name that prints out for
// --version.
func fakeProgram(t *testing.T, dir, name, out string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat <<'EOF'\n"+out+"\nEOF\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProgramVersion(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, out, version, commit string
		ok                         bool
	}{
		{"runc", "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev", "1.1.5+ds1", "1.1.5+ds1-1+deb12u1", true},
		{"crun", "crun version 1.8.1\ncommit: f8a096be\nrundir: /run/crun", "1.8.1", "f8a096be", true},
		{"conmon", "conmon version 2.1.6\ncommit: unknown", "2.1.6", "", true},
		{"tini", "tini version 0.19.0 - git.de40ad0", "0.19.0", "de40ad0", true},
		{"tini-static", "tini version 0.19.0", "0.19.0", "", true},
		{"other", "usage: other [flags]", "", "", false},
	} {
		v, c, ok := convert.ProgramVersion(fakeProgram(t, dir, tc.name, tc.out))
		if v != tc.version || c != tc.commit || ok != tc.ok {
			t.Errorf("%s: got %q %q %v, want %q %q %v", tc.name, v, c, ok, tc.version, tc.commit, tc.ok)
		}
	}
	if _, _, ok := convert.ProgramVersion(filepath.Join(dir, "missing")); ok {
		t.Error("a missing program has a version")
	}
	// A bare name is looked up in $PATH; a changed binary is read again.
	t.Setenv("PATH", dir+":/usr/bin:/bin") // the fake programs run cat
	if v, _, ok := convert.ProgramVersion("crun"); !ok || v != "1.8.1" {
		t.Errorf("crun by name: %q %v", v, ok)
	}
	p := fakeProgram(t, dir, "crun", "crun version 1.9.0\ncommit: abc")
	if err := os.Chtimes(p, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if v, c, ok := convert.ProgramVersion("crun"); !ok || v != "1.9.0" || c != "abc" {
		t.Errorf("crun after an upgrade: %q %q %v", v, c, ok)
	}
}

func TestVersionText(t *testing.T) {
	dir := t.TempDir()
	rt := fakeProgram(t, dir, "runc", "runc version 9.8.7\ncommit: abc123")
	mon := fakeProgram(t, dir, "conmon", "conmon version 2.1.6\ncommit: unknown")
	v := newVersion("1.2.3", engine.Options{Runtime: rt, Monitor: mon})
	tmpl, err := versionTemplate("")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeVersion(&buf, tmpl, v); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"Client:\n Version:           1.2.3\n API version:       1.50\n",
		"\nServer: Berth\n Engine:\n  Version:          1.2.3\n  API version:      1.50 (minimum version 1.24)\n",
		"\n runc:\n  Version:          9.8.7\n  GitCommit:        abc123\n",
		"\n conmon:\n  Version:          2.1.6\n",
		" Context:           default\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("version text lacks %q:\n%s", want, out)
		}
	}
	// Unknown values leave their lines out rather than print blanks.
	if v.Client.GitCommit == "" && strings.Contains(out, "Git commit:") {
		t.Errorf("empty Git commit printed:\n%s", out)
	}
	if strings.Contains(out, "conmon:\n  Version:          2.1.6\n  GitCommit") {
		t.Errorf("conmon's unknown commit printed:\n%s", out)
	}
}

func TestVersionFormat(t *testing.T) {
	v := newVersion("1.2.3", engine.Options{Runtime: "/nonexistent/runc", Monitor: "/nonexistent/conmon"})
	for format, want := range map[string]string{
		"{{.Server.Version}}":                              "1.2.3\n",
		"{{.Client.APIVersion}}/{{.Server.MinAPIVersion}}": "1.50/1.24\n",
		"{{(index .Server.Components 0).Name}}":            "Engine\n",
	} {
		tmpl, err := versionTemplate(format)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := writeVersion(&buf, tmpl, v); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("%s: got %q, want %q", format, buf.String(), want)
		}
	}
	tmpl, _ := versionTemplate("json")
	var buf bytes.Buffer
	if err := writeVersion(&buf, tmpl, v); err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Client map[string]any
		Server map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	// docker's JSON keys
	if obj.Client["ApiVersion"] != "1.50" || obj.Client["Context"] != "default" || obj.Server["Version"] != "1.2.3" || obj.Server["ApiVersion"] != "1.50" {
		t.Errorf("json: %s", buf.String())
	}
}

func TestVersionBadFormat(t *testing.T) {
	cmd := NewVersionCmd(&cli.Globals{}, "1.2.3")
	var stdout, stderr bytes.Buffer
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"-f", "{{.Server.Version"})
	err := cmd.Execute()
	var ee cli.ExitError
	if !errors.As(err, &ee) || ee.Code != 64 || !strings.HasPrefix(stderr.String(), "template parsing error:") {
		t.Errorf("bad template: err %v, stderr %q; want exit 64 and docker's message", err, stderr.String())
	}
	cmd = NewVersionCmd(&cli.Globals{}, "1.2.3")
	stderr.Reset()
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"-f", "{{.Nope}}"})
	if err := cmd.Execute(); !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(stderr.String(), "can't evaluate field Nope") {
		t.Errorf("failing template: err %v, stderr %q", err, stderr.String())
	}
}

func testInfo() Info {
	return Info{
		Info: &systemtypes.Info{
			Containers: 3, ContainersRunning: 1, ContainersPaused: 1, ContainersStopped: 1, Images: 2,
			ServerVersion: "1.2.3", Driver: "overlay", LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: "2",
			Plugins:  systemtypes.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host"}, Log: []string{"json-file"}},
			Runtimes: map[string]systemtypes.RuntimeWithStatus{"runc": {}, "crun": {}}, DefaultRuntime: "crun",
			InitBinary: "/usr/bin/tini-static", RuncCommit: systemtypes.Commit{ID: "abc"},
			SecurityOptions: []string{"name=seccomp,profile=builtin", "name=cgroupns"},
			OSType:          "linux", NCPU: 4, MemTotal: 2 << 30, Name: "host", ID: "berth", DockerRootDir: "/var/lib/berth",
			Warnings: []string{"WARNING: something"},
		},
		ClientInfo: &ClientInfo{ClientVersion: newClientVersion("1.2.3")},
	}
}

func TestInfoText(t *testing.T) {
	var out, errw bytes.Buffer
	writeInfo(&out, &errw, testInfo())
	for _, want := range []string{
		"Client:\n Version:    1.2.3\n Context:    default\n Debug Mode: false\n\nServer:\n",
		" Containers: 3\n  Running: 1\n  Paused: 1\n  Stopped: 1\n Images: 2\n Server Version: 1.2.3\n Storage Driver: overlay\n",
		" Runtimes: crun runc\n Default Runtime: crun\n Init Binary: /usr/bin/tini-static\n containerd version: \n runc version: abc\n init version: \n",
		" Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n",
		" CPUs: 4\n Total Memory: 2GiB\n Name: host\n ID: berth\n Docker Root Dir: /var/lib/berth\n",
		" Live Restore Enabled: false\n\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("info text lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Kernel Version") {
		t.Errorf("empty Kernel Version printed:\n%s", out.String())
	}
	if errw.String() != "WARNING: something\n" {
		t.Errorf("warnings: %q", errw.String())
	}
}

func TestInfoFormat(t *testing.T) {
	in := testInfo()
	for format, want := range map[string]string{
		"{{.DefaultRuntime}}":                             "crun\n",
		"{{.Driver}} {{.Containers}}":                     "overlay 3\n",
		"{{.ClientInfo.Version}} {{.ClientInfo.Context}}": "1.2.3 default\n",
	} {
		tmpl, err := output.Parse(format)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := formatInfo(&buf, tmpl, in); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("%s: got %q, want %q", format, buf.String(), want)
		}
	}
	tmpl, _ := output.Parse("{{json .}}")
	var buf bytes.Buffer
	if err := formatInfo(&buf, tmpl, in); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(buf.Bytes(), &obj); err != nil {
		t.Fatal(err)
	}
	// docker's shape: the server's fields at the top, ClientInfo beside them.
	if obj["DefaultRuntime"] != "crun" || obj["ID"] != "berth" || obj["ClientInfo"].(map[string]any)["Context"] != "default" {
		t.Errorf("json: %s", buf.String())
	}
}

func TestSecurityOptions(t *testing.T) {
	got := securityOptions([]string{"name=seccomp,profile=default", "name=userns", "profile=x", "name=apparmor,other=1"})
	want := []securityOption{{"seccomp", "default"}, {"userns", ""}, {"apparmor", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %v, want %v", i, got[i], want[i])
		}
	}
}
