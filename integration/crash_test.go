package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCrashAnywhere kills berth with SIGKILL at each point of create,
// start and rm (the BERTH_TEST_CRASH_AT hook). Afterwards the state opens,
// `ps -a` is truthful, and removing the container leaves nothing: no mount,
// bundle, network namespace, veth, address, iptables rule, runtime state or
// container snapshot.
func TestCrashAnywhere(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "--rm", ref, "true") // makes the default network: its rules are the baseline
	baseSnaps := countDirs(t, filepath.Join(e.root, "snapshots", "overlay", "snapshots"))
	baseRules := countRules(e.chain)

	points := []struct {
		point, status string // the status ps -a must show afterwards
	}{
		{"create-recorded", "Created"},
		{"create-snapshot", "Created"},
		{"start-recorded", "Exited (255)"},
		{"start-mounted", "Exited (255)"},
		{"after-netns", "Exited (255)"},
		{"after-attach", "Exited (255)"},
		{"network:veth", "Exited (255)"},
		{"start-network", "Exited (255)"},
		{"start-spawned", ""}, // the runtime lives on and finishes the run
	}
	for _, p := range points {
		t.Run(p.point, func(t *testing.T) {
			e.berth("rm", "-f", "crash") // whatever an earlier failed subtest left
			r := e.berthEnv([]string{"BERTH_TEST_CRASH_AT=" + p.point}, "run", "--name", "crash", "-p", "80", ref, "true")
			if r.code != 137 {
				t.Fatalf("berth did not die at %s: exit %d, stderr %q", p.point, r.code, r.stderr)
			}
			ps := e.ok("ps", "-a")
			if !strings.Contains(ps, "crash") || (p.status != "" && !strings.Contains(ps, p.status)) {
				t.Fatalf("ps -a after a crash at %s, want %q:\n%s", p.point, p.status, ps)
			}
			e.ok("rm", "-f", "crash")
			assertNoLeaks(t, e, baseSnaps, baseRules)
		})
	}
	// Crashes inside rm: the next rm finishes the job.
	for _, point := range []string{"remove-marked", "remove-runtime", "remove-snapshot"} {
		t.Run(point, func(t *testing.T) {
			e.berth("rm", "-f", "crash")
			e.ok("run", "--name", "crash", "-p", "80", ref, "true")
			if r := e.berthEnv([]string{"BERTH_TEST_CRASH_AT=" + point}, "rm", "crash"); r.code != 137 {
				t.Fatalf("rm did not die at %s: exit %d %q", point, r.code, r.stderr)
			}
			if ps := e.ok("ps", "-a"); !strings.Contains(ps, "crash") {
				t.Fatalf("the half-removed container vanished from ps -a:\n%s", ps)
			}
			e.ok("rm", "-f", "crash")
			assertNoLeaks(t, e, baseSnaps, baseRules)
		})
	}
}

func assertNoLeaks(t *testing.T, e *env, baseSnaps, baseRules int) {
	t.Helper()
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("containers left: %q", ps)
	}
	if l := e.leftovers(); len(l) > 0 {
		t.Fatalf("leftovers: %v", l)
	}
	if n := countDirs(t, filepath.Join(e.root, "snapshots", "overlay", "snapshots")); n != baseSnaps {
		t.Fatalf("snapshots: %d, want the image's %d", n, baseSnaps)
	}
	if n := countDirs(t, filepath.Join(e.root, "containers")); n != 0 {
		t.Fatalf("%d container dirs left", n)
	}
	out, _ := exec.Command("ip", "-o", "link", "show", "master", e.bridge).Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Fatalf("veths left on %s:\n%s", e.bridge, out)
	}
	if n := countRules(e.chain); n != baseRules {
		t.Fatalf("iptables rules with %s: %d, want %d", e.chain, n, baseRules)
	}
	var eps map[string]json.RawMessage
	if data, err := os.ReadFile(filepath.Join(e.root, "network", "endpoints.json")); err == nil {
		json.Unmarshal(data, &eps)
	}
	if len(eps) != 0 {
		t.Fatalf("network endpoints left: %v", eps)
	}
	allocs, _ := filepath.Glob(filepath.Join(e.root, "network", "ipam", "*.json"))
	for _, f := range allocs {
		data, _ := os.ReadFile(f)
		var ipam struct {
			Allocations map[string]json.RawMessage `json:"allocations"`
		}
		json.Unmarshal(data, &ipam)
		if len(ipam.Allocations) != 0 {
			t.Fatalf("addresses still allocated in %s: %s", f, data)
		}
	}
}

// countRules counts iptables rules mentioning prefix (nat and filter).
func countRules(prefix string) int {
	n := 0
	for _, table := range []string{"nat", "filter"} {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "-A") && strings.Contains(line, prefix) {
				n++
			}
		}
	}
	return n
}
