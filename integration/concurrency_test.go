package integration

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentDetached: 50 `run -d` from separate processes at once, with
// `ps` and `rm -f` running concurrently: every run succeeds, names stay
// unique, the store stays readable, and what was removed is gone whole.
func TestConcurrentDetached(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	const n = 50
	var wg sync.WaitGroup
	runs := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = e.berth("run", "-d", "--name", fmt.Sprintf("ctr-%02d", i), "--network", "none", ref, "sleep", "60")
		}()
	}
	// Readers and removers race with the runs.
	var side sync.WaitGroup
	psErrs := make(chan string, 100)
	for range 5 {
		side.Add(1)
		go func() {
			defer side.Done()
			for range 4 {
				if r := e.berth("ps", "-a"); r.code != 0 {
					psErrs <- r.stderr
				}
			}
		}()
	}
	removed := map[int]bool{}
	for i := 0; i < n; i += 10 {
		removed[i] = true
		side.Add(1)
		go func() {
			defer side.Done()
			// The container may not exist yet: retry until the rm finds it.
			// (Names are not hex, so that a name not yet recorded can never
			// match another container's ID prefix, as Docker's lookup would.)
			for range 50 {
				// rm -f of a missing container succeeds silently (as
				// Docker's); it removed ours when it prints the name.
				name := fmt.Sprintf("ctr-%02d", i)
				if r := e.berth("rm", "-f", name); r.code == 0 && strings.TrimSpace(r.stdout) == name {
					return
				}
			}
		}()
	}
	wg.Wait()
	side.Wait()
	close(psErrs)
	for s := range psErrs {
		t.Errorf("concurrent ps failed: %s", s)
	}
	for i, r := range runs {
		// A run whose container an rm -f removed mid-start may fail, with
		// one line; every other run succeeds.
		if removed[i] && r.code != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") == 0 {
			continue
		}
		if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 64 {
			t.Errorf("run %d: exit %d stdout %q stderr %q", i, r.code, r.stdout, r.stderr)
		}
	}
	rows := strings.Split(strings.TrimSpace(e.ok("ps", "-a", "--format", "{{.Names}}")), "\n")
	names := map[string]bool{}
	for _, name := range rows {
		if names[name] {
			t.Errorf("name %s listed twice", name)
		}
		names[name] = true
	}
	for i := range n {
		name := fmt.Sprintf("ctr-%02d", i)
		if removed[i] == names[name] {
			t.Errorf("container %s: removed=%v but listed=%v", name, removed[i], names[name])
		}
	}
	if running := strings.Fields(e.ok("ps", "-q")); len(running) != n-len(removed) {
		t.Errorf("%d running, want %d", len(running), n-len(removed))
	}
	e.ok(append([]string{"rm", "-f"}, strings.Fields(e.ok("ps", "-aq"))...)...)
	if l := e.leftovers(); len(l) > 0 {
		t.Fatalf("leftovers: %v", l)
	}
}

// TestConcurrentPulls: several berth processes pulling (and running) the
// same image into one empty store at once all succeed.
func TestConcurrentPulls(t *testing.T) {
	_, ref := busybox(t)
	for round := range 3 {
		e := newEnv(t)
		var wg sync.WaitGroup
		res := make([]result, 4)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					res[i] = e.berth("pull", "-q", ref)
				} else {
					res[i] = e.berth("run", "--rm", "--network", "none", ref, "true")
				}
			}()
		}
		wg.Wait()
		for i, r := range res {
			if r.code != 0 {
				t.Fatalf("round %d, process %d: exit %d: %s", round, i, r.code, r.stderr)
			}
		}
	}
}
