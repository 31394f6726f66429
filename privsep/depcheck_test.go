package privsep

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// Neither the protocol package nor the helper imports HTTP, TLS or
// registry client code itself (DESIGN.md: "the privileged helper imports
// no HTTP or registry code"). The engine the helper drives does link them
// (pull's fetcher), which SPEC.md states.
func TestNoNetworkImports(t *testing.T) {
	for _, pkg := range []string{".", "./helper"} {
		checkImports(t, pkg)
	}
}

func checkImports(t *testing.T, pkg string) {
	out, err := exec.Command("go", "list", "-json", pkg).Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	var p struct{ Imports []string }
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Imports) == 0 {
		t.Fatalf("go list reported no imports of %s", pkg)
	}
	for _, imp := range p.Imports {
		if imp == "net/http" || strings.HasPrefix(imp, "net/http/") || imp == "crypto/tls" ||
			strings.HasPrefix(imp, "github.com/google/go-containerregistry") ||
			imp == "github.com/berthproject/berth/api" || strings.HasPrefix(imp, "github.com/berthproject/berth/api/") ||
			imp == "github.com/berthproject/berth/image/fetcher" {
			t.Errorf("package %s imports %s", pkg, imp)
		}
	}
}
