package volumes

import (
	"context"
	"slices"
	"testing"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func newManager(t *testing.T, cs ...record.Container) *Manager {
	st, err := volume.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &Manager{Store: st, Containers: func(context.Context) ([]record.Container, error) { return cs, nil }}
}

func TestResolve(t *testing.T) {
	m := newManager(t)
	bindM := specs.Mount{Type: "bind", Source: "/host", Destination: "/h"}
	r, err := m.Resolve([]specs.Mount{Mount("data", "/d", true, false), bindM, Mount("", "/anon", false, true)},
		map[string]struct{}{"/img": {}, "/d": {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Mounts) != 4 || r.Mounts[1].Source != "/host" {
		t.Fatalf("mounts %+v", r.Mounts)
	}
	if n, ok := m.Store.NameOf(r.Mounts[0].Source); !ok || n != "data" || !slices.Contains(r.Mounts[0].Options, "ro") {
		t.Fatalf("named %+v", r.Mounts[0])
	}
	// The image's /img gets an anonymous volume; its /d is covered.
	if r.Mounts[3].Destination != "/img" {
		t.Fatalf("image volume %+v", r.Mounts[3])
	}
	for _, i := range []int{2, 3} {
		n, _ := m.Store.NameOf(r.Mounts[i].Source)
		if v, err := m.Store.Get(n); err != nil || !v.Anonymous() {
			t.Fatalf("anonymous volume %d: %+v %v", i, v, err)
		}
	}
	// nocopy: /anon is not copied up.
	var targets []string
	for _, c := range r.Copies {
		targets = append(targets, c.Target)
	}
	if !slices.Equal(targets, []string{"/d", "/img"}) {
		t.Fatalf("copies %v", targets)
	}
	if len(r.Created) != 3 {
		t.Fatalf("created %v", r.Created)
	}
	m.Undo(r)
	if vs, _ := m.Store.List(); len(vs) != 0 {
		t.Fatalf("after Undo: %v", vs)
	}
}

func TestResolveRejectsBeforeCreating(t *testing.T) {
	for _, ms := range [][]specs.Mount{
		{Mount("ok", "/a", false, false), Mount("b@d", "/b", false, false)},
		{Mount("ok", "/a", false, false), Mount("ok2", "/a", false, false)},
		{Mount("ok", "rel", false, false)},
	} {
		m := newManager(t)
		if _, err := m.Resolve(ms, nil); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("%+v: %v", ms, err)
		}
		if vs, _ := m.Store.List(); len(vs) != 0 {
			t.Fatalf("%+v created %v", ms, vs)
		}
	}
}

func TestRemoveInUseAndAnonymous(t *testing.T) {
	m0 := newManager(t)
	r, err := m0.Resolve([]specs.Mount{Mount("named", "/n", false, false), Mount("", "/a", false, false)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := record.Container{ID: "c1", Run: runtime.RunOptions{Mounts: r.Mounts}}
	m := &Manager{Store: m0.Store, Containers: func(context.Context) ([]record.Container, error) { return []record.Container{c}, nil }}
	if err := m.Remove(context.Background(), "named", true); !errdefs.IsConflict(err) {
		t.Fatalf("remove in use: %v", err)
	}
	if names, _, _ := m.Prune(context.Background(), true, nil); len(names) != 0 {
		t.Fatalf("prune removed %v", names)
	}
	// Once the container is gone its anonymous volume goes, the named stays.
	m.Containers = func(context.Context) ([]record.Container, error) { return nil, nil }
	gone, err := m.RemoveAnonymous(context.Background(), c)
	if err != nil || len(gone) != 1 {
		t.Fatalf("RemoveAnonymous: %v %v", gone, err)
	}
	if vs, _ := m.Store.List(); len(vs) != 1 || vs[0].Name != "named" {
		t.Fatalf("left %v", vs)
	}
	if err := m.Remove(context.Background(), "nosuch", true); err != nil {
		t.Fatalf("rm -f of a missing volume: %v", err)
	}
}
