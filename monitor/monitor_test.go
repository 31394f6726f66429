package monitor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

// TestNew: the default is berth-monitor when one is found, else conmon;
// a program named conmon is driven as conmon; a missing one is NotFound.
func TestNew(t *testing.T) {
	dir := t.TempDir()
	fake := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("PATH", dir)
	if _, err := New(""); !errdefs.IsNotFound(err) {
		t.Fatalf("no monitor anywhere: %v, want not found", err)
	}
	conmon := fake("conmon")
	if p, err := New(""); err != nil || p.Binary != conmon || !p.Conmon {
		t.Fatalf("only conmon: %+v, %v", p, err)
	}
	own := fake(BinaryName)
	if p, err := New(""); err != nil || p.Binary != own || p.Conmon {
		t.Fatalf("berth-monitor and conmon: %+v, %v; want berth-monitor", p, err)
	}
	if p, err := New("conmon"); err != nil || p.Binary != conmon || !p.Conmon {
		t.Fatalf(`New("conmon"): %+v, %v`, p, err)
	}
	if p, err := New(own); err != nil || p.Binary != own || p.Conmon {
		t.Fatalf("New(path): %+v, %v", p, err)
	}
	if err := (&Program{Binary: conmon, Conmon: true}).CheckLogFiles(2); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("conmon with max-file 2: %v, want invalid argument", err)
	}
	for _, p := range []*Program{{Binary: own}, {Binary: conmon, Conmon: true}} {
		if err := p.CheckLogFiles(1); err != nil {
			t.Fatalf("%s with one log file: %v", p.Binary, err)
		}
	}
	if err := (&Program{Binary: own}).CheckLogFiles(5); err != nil {
		t.Fatalf("berth-monitor with max-file 5: %v", err)
	}
	if _, err := New("no-such-monitor"); !errdefs.IsNotFound(err) {
		t.Fatalf("missing monitor: %v, want not found", err)
	}
}
