package helper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestBindConfinementResolves: bind sources are checked with their
// symbolic links resolved, and a source containing berth's state is
// refused as well as one inside it.
func TestBindConfinementResolves(t *testing.T) {
	x := t.TempDir()
	root, run := filepath.Join(x, "root"), filepath.Join(x, "run")
	data := filepath.Join(root, "volumes", "v", "_data")
	for _, d := range []string{data, run, filepath.Join(x, "free")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target string) string {
		p := filepath.Join(x, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := Confinement{Root: root, RunRoot: run}
	refused := []struct{ src, msg string }{
		{x, "contains berth's state directory"},
		{"/", "contains berth's state directory"},
		{link("toroot", root), "is inside berth's state"},
		{link("torootrel", "root"), "is inside berth's state"},
		{link("toparent", x), "contains berth's state directory"},
		{link("torun", run) + "/sub", "is inside berth's state"},
		{link("tovolumes", filepath.Join(root, "volumes")), "is inside berth's state"},
		{link("dangling", filepath.Join(root, "newdir")), "cannot be resolved"},
		{x + "/free/../root", "absolute and clean"},
	}
	for _, tc := range refused {
		err := checkBindSources([]specs.Mount{{Type: "bind", Source: tc.src, Destination: "/h"}}, c)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), `invalid mount config for type "bind"`) {
			t.Errorf("bind of %s: %v, want invalid argument with %q", tc.src, err, tc.msg)
		}
	}
	allowed := []string{
		filepath.Join(x, "free"),
		filepath.Join(x, "free", "missing", "dir"),
		data,
		link("todata", data),
		link("tofree", filepath.Join(x, "free")) + "/new",
	}
	for _, src := range allowed {
		if err := checkBindSources([]specs.Mount{{Source: src, Destination: "/h"}}, c); err != nil {
			t.Errorf("bind of %s refused: %v", src, err)
		}
	}
	// A root that is itself reached through a symbolic link is resolved.
	alias := link("rootalias", root)
	if err := checkHostPath(data, Confinement{Root: alias}); err != nil {
		t.Errorf("volume data under an aliased root: %v", err)
	}
	if err := checkHostPath(filepath.Join(root, "berth.db"), Confinement{Root: alias}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("state under an aliased root accepted: %v", err)
	}
}
