package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOverlayManyLayersLongPaths: an overlay whose lowerdir option is far
// longer than a page (200 layers under a long path) still mounts, and the
// merged view shows every layer with the nearest one winning.
func TestOverlayManyLayersLongPaths(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base := filepath.Join(t.TempDir(), strings.Repeat("a-rather-long-directory-name/", 4))
	const n = 200
	var lowers []string
	for i := 0; i < n; i++ {
		dir := filepath.Join(base, "snapshots", fmt.Sprint(i), "fs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(dir, "top"), []byte(fmt.Sprint(i)), 0o644)
		lowers = append([]string{dir}, lowers...) // nearest (highest) first
	}
	upper, work, target := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, target} {
		os.MkdirAll(d, 0o755)
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + upper, "workdir=" + work}}
	if l := len(strings.Join(m.Options, ",")); l < 2*os.Getpagesize() {
		t.Fatalf("options only %d bytes: the test needs more than a page", l)
	}
	if err := All([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	defer Unmount(target)
	entries, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n+1 {
		t.Fatalf("merged view has %d entries, want %d", len(entries), n+1)
	}
	if top, _ := os.ReadFile(filepath.Join(target, "top")); string(top) != fmt.Sprint(n-1) {
		t.Fatalf("top = %q, want the nearest layer's %d", top, n-1)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Fatalf("write did not reach the upper dir: %v", err)
	}
	// More than the kernel's limit is refused with a clear error.
	many := make([]string, MaxOverlayLayers+1)
	for i := range many {
		many[i] = lowers[i%n]
	}
	bad := Mount{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(many, ":")}}
	if err := bad.Mount(filepath.Join(base, "upper")); err == nil || !strings.Contains(err.Error(), "exceed the kernel's limit") {
		t.Fatalf("want a layer-limit error, got %v", err)
	}
}
