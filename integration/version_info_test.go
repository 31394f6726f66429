package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// infoValue is the value of the first line " LABEL: VALUE" in `info`
// text (leading spaces ignored), and whether there was one.
func infoValue(text, label string) (string, bool) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimLeft(l, " "), label+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// wantRuntime is the runtime an engine opened without --runtime uses:
// $BERTH_RUNTIME, else crun when installed, else runc.
func wantRuntime() string {
	if rt := os.Getenv("BERTH_RUNTIME"); rt != "" {
		return filepath.Base(rt)
	}
	if _, err := exec.LookPath("crun"); err == nil {
		return "crun"
	}
	return "runc"
}

func TestVersionInfo(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)

	info := e.ok("info")
	for label, want := range map[string]string{"Containers": "0", "Images": "0", "Storage Driver": "overlay", "Docker Root Dir": e.root, "OSType": "linux", "Default Runtime": wantRuntime()} {
		if got, _ := infoValue(info, label); got != want {
			t.Errorf("empty engine: %s: %q, want %q\n%s", label, got, want, info)
		}
	}

	e.ok("pull", ref)
	e.ok("create", "--name", "vi", ref, "true")
	info = e.ok("info")
	for label, want := range map[string]string{"Containers": "1", "Running": "0", "Paused": "0", "Stopped": "1", "Images": "1"} {
		if got, _ := infoValue(info, label); got != want {
			t.Errorf("one created container: %s: %q, want %q\n%s", label, got, want, info)
		}
	}
	if !strings.HasPrefix(info, "Client:\n Version:") || !strings.Contains(info, "\nServer:\n Containers: 1\n") {
		t.Errorf("info layout is not docker's:\n%s", info)
	}
	rts, _ := infoValue(info, "Runtimes")
	if !strings.Contains(" "+rts+" ", " "+wantRuntime()+" ") {
		t.Errorf("Runtimes %q lack the default %s", rts, wantRuntime())
	}
	if sys := e.ok("system", "info"); sys != info {
		t.Errorf("system info differs from info:\n%s\n---\n%s", sys, info)
	}
	if got := e.ok("info", "-f", "{{.DefaultRuntime}}"); got != wantRuntime()+"\n" {
		t.Errorf("info -f {{.DefaultRuntime}}: %q, want %s", got, wantRuntime())
	}
	if got := e.ok("info", "-f", "{{.Containers}} {{.ContainersStopped}} {{.Images}}"); got != "1 1 1\n" {
		t.Errorf("info -f counts: %q", got)
	}

	serverVersion := strings.TrimSpace(e.ok("version", "-f", "{{.Server.Version}}"))
	if serverVersion == "" {
		t.Fatal("version -f {{.Server.Version}} is empty")
	}
	if sv, _ := infoValue(info, "Server Version"); sv != serverVersion {
		t.Errorf("info's Server Version %q, version's %q", sv, serverVersion)
	}
	version := e.ok("version")
	for _, want := range []string{"Client:\n Version:           " + serverVersion + "\n", " API version:       1.50\n",
		"\nServer: Berth\n Engine:\n  Version:          " + serverVersion + "\n", "  API version:      1.50 (minimum version 1.24)\n",
		"\n " + wantRuntime() + ":\n  Version:          "} {
		if !strings.Contains(version, want) {
			t.Errorf("version lacks %q:\n%s", want, version)
		}
	}
	// The runtime's line carries what its --version says.
	out, err := exec.Command(wantRuntime(), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(strings.SplitN(string(out), "\n", 2)[0]); len(f) < 3 || !strings.Contains(version, "\n "+wantRuntime()+":\n  Version:          "+f[2]+"\n") {
		t.Errorf("version's %s component is not %q:\n%s", wantRuntime(), out, version)
	}

	if r := e.berth("version", "-f", "{{.Server.Version"); r.code != 64 || !strings.Contains(r.stderr, "template parsing error") {
		t.Errorf("bad template: exit %d, stderr %q; want 64", r.code, r.stderr)
	}
	e.ok("rm", "vi")
}
