package integration

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berthproject/berth/internal/hello"
)

// TestEmbedExample runs examples/embed: the engine used as a library, with
// no berth binary involved.
func TestEmbedExample(t *testing.T) {
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "embed")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/embed").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--root", e.root, "--runroot", e.runroot).Output()
	if err != nil {
		t.Fatalf("embed: %v", err)
	}
	if string(out) != hello.Greeting {
		t.Fatalf("got %q", out)
	}
	if ps := e.ok("ps", "-aq"); ps != "" {
		t.Fatalf("AutoRemove left %q", ps)
	}
}
