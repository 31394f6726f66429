package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTwoEnginesByRootAlone: two engines that differ only in --root and
// --runroot (no network flags) both run containers on their default
// networks, each on its own bridge and subnet.
func TestTwoEnginesByRootAlone(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	var roots []string
	for _, name := range []string{"one", "two"} {
		dir := filepath.Join(t.TempDir(), name)
		root, run := filepath.Join(dir, "root"), filepath.Join(dir, "run")
		roots = append(roots, root)
		sum := sha256.Sum256([]byte(root))
		tag := hex.EncodeToString(sum[:3])
		t.Cleanup(func() {
			berthAt(root, run, "rm", "-f", "web")
			for _, m := range append(mountsUnder(run), mountsUnder(root)...) {
				exec.Command("umount", "-l", m).Run()
			}
			removeBridgeAndChains("berth"+tag, "BERTH"+strings.ToUpper(tag))
		})
		if out, err := berthAt(root, run, "pull", ref); err != nil {
			t.Fatalf("pull into %s: %v\n%s", name, err, out)
		}
		out, err := berthAt(root, run, "run", "--rm", ref, "sh", "-c", "hostname -i")
		if err != nil {
			t.Fatalf("engine %s: %v\n%s", name, err, out)
		}
		if !strings.HasPrefix(out, "10.78.") {
			t.Fatalf("engine %s: address %q is not from the pool 10.78.0.0/15", name, out)
		}
		if err := exec.Command("ip", "link", "show", "berth"+tag).Run(); err != nil {
			t.Fatalf("engine %s: no bridge berth%s", name, tag)
		}
	}
	_ = e
}

// berthAt runs berth with only --root and --runroot.
func berthAt(root, run string, args ...string) (string, error) {
	out, err := exec.Command(berthBin, append([]string{"--root", root, "--runroot", run}, args...)...).CombinedOutput()
	return string(out), err
}
