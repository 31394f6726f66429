package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// These tests pin behaviours found to differ from a real dockerd when the
// same commands ran against both (issue #4); each expectation is what
// Docker does.

// TestParityInspectTmpfsCapsVolumes checks inspect's HostConfig.Tmpfs (the
// options the user wrote), Mounts (no --tmpfs entries; --mount tmpfs
// listed), CapAdd/CapDrop (CAP_ names), Config.Volumes (anonymous -v)
// and OomKillDisable (false, not null).
func TestParityInspectTmpfsCapsVolumes(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("create", "--network", "none", "--name", "p1",
		"--tmpfs", "/t1:size=1m,mode=1777", "--tmpfs", "/t2",
		"--mount", "type=tmpfs,dst=/m1,tmpfs-size=1m", "-v", "/anon",
		"--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", ref, "true")
	var got []struct {
		Config struct {
			Volumes map[string]struct{}
		}
		HostConfig struct {
			Tmpfs           map[string]string
			CapAdd, CapDrop []string
			OomKillDisable  *bool
		}
		Mounts []struct {
			Type, Destination string
		}
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", "p1")), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect: %v %d", err, len(got))
	}
	c := got[0]
	if len(c.HostConfig.Tmpfs) != 2 || c.HostConfig.Tmpfs["/t1"] != "size=1m,mode=1777" || c.HostConfig.Tmpfs["/t2"] != "" {
		t.Errorf("HostConfig.Tmpfs = %q, want only the --tmpfs options as given", c.HostConfig.Tmpfs)
	}
	var dsts []string
	for _, m := range c.Mounts {
		dsts = append(dsts, m.Type+":"+m.Destination)
	}
	slices.Sort(dsts)
	if want := []string{"tmpfs:/m1", "volume:/anon"}; !slices.Equal(dsts, want) {
		t.Errorf("Mounts = %v, want %v", dsts, want)
	}
	if !slices.Equal(c.HostConfig.CapAdd, []string{"CAP_NET_ADMIN"}) || !slices.Equal(c.HostConfig.CapDrop, []string{"CAP_CHOWN"}) {
		t.Errorf("CapAdd %v CapDrop %v, want CAP_NET_ADMIN / CAP_CHOWN", c.HostConfig.CapAdd, c.HostConfig.CapDrop)
	}
	if _, ok := c.Config.Volumes["/anon"]; !ok || len(c.Config.Volumes) != 1 {
		t.Errorf("Config.Volumes = %v, want /anon", c.Config.Volumes)
	}
	if c.HostConfig.OomKillDisable == nil || *c.HostConfig.OomKillDisable {
		t.Errorf("OomKillDisable = %v, want false", c.HostConfig.OomKillDisable)
	}
}

// TestParityExecStartFailureIs126 checks that an exec whose process
// cannot be started for a reason other than a missing command (here a
// missing -w directory) exits 126, as Docker's exec.
func TestParityExecStartFailureIs126(t *testing.T) {
	e, _, _ := runningBusybox(t, "px", "--network", "none")
	if r := e.berth("exec", "-w", "/no/such/dir", "px", "pwd"); r.code != 126 {
		t.Fatalf("exec -w missing dir: exit %d (want 126), stderr %q", r.code, r.stderr)
	}
	if out := e.ok("exec", "-w", "/tmp", "px", "pwd"); out != "/tmp\n" {
		t.Fatalf("exec -w /tmp: %q", out)
	}
}

// TestParityCpDirContentsToNewPath checks `cp DIR/. CONTAINER:NEW` (NEW
// absent: created with DIR's contents) and that no progress line is
// printed when stdout is not a terminal, as Docker's cp.
func TestParityCpDirContentsToNewPath(t *testing.T) {
	e, _, _ := runningBusybox(t, "pc", "--network", "none")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(src, "lnk")); err != nil {
		t.Fatal(err)
	}
	r := e.berth("cp", src+"/.", "pc:/newdir")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("cp DIR/. to a new path: %+v (want exit 0, no output)", r)
	}
	if out := e.ok("exec", "pc", "cat", "/newdir/f"); out != "hi\n" {
		t.Fatalf("/newdir/f = %q", out)
	}
	if out := strings.TrimSpace(e.ok("exec", "pc", "sh", "-c", "[ -L /newdir/lnk ] && cat /newdir/lnk")); out != "hi" {
		t.Fatalf("/newdir/lnk is not a link to f: %q", out)
	}
	if r := e.berth("cp", "-q=false", src+"/f", "pc:/f2"); r.code != 0 || !strings.HasPrefix(r.stderr, "Successfully copied ") {
		t.Fatalf("cp -q=false: %+v, want the progress line", r)
	}
}

// TestParityAttachFlags: Config.AttachStdin/Stdout/Stderr say which
// streams the creating client attached: create and a foreground run
// attach stdout and stderr (stdin too with -i), run -d none.
func TestParityAttachFlags(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("create", "--network", "none", "--name", "created", ref, "true")
	e.ok("run", "-d", "--network", "none", "--name", "detached", ref, "true")
	e.ok("run", "-i", "--network", "none", "--name", "foreground", ref, "true")
	for name, want := range map[string]string{
		"created":    "false true true",
		"detached":   "false false false",
		"foreground": "true true true",
	} {
		if got := strings.TrimSpace(e.ok("inspect", "-f", "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}", name)); got != want {
			t.Errorf("%s: Attach stdin/stdout/stderr %q, want %q", name, got, want)
		}
	}
}
