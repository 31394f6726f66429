package convert

import (
	"context"
	"testing"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
	imagetypes "github.com/moby/moby/api/types/image"
)

// fakeLookup knows the containers and images (name → ID) it holds.
type fakeLookup struct {
	cs   []engine.Container
	imgs map[string]string
}

func (l fakeLookup) Container(_ context.Context, ref string) (engine.Container, error) {
	for _, c := range l.cs {
		if c.Name == ref || c.ID == ref {
			return c, nil
		}
	}
	return engine.Container{}, errdefs.ErrNotFound
}

func (l fakeLookup) InspectImage(_ context.Context, ref string) (imagetypes.InspectResponse, error) {
	if id, ok := l.imgs[ref]; ok {
		return imagetypes.InspectResponse{ID: id}, nil
	}
	return imagetypes.InspectResponse{}, errdefs.ErrNotFound
}

type fakeNets []network.Network

func (n fakeNets) List(context.Context) ([]network.Network, error) { return n, nil }

func TestContainerMatcher(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	old := engine.Container{ID: "11aa", Name: "old", Created: t0}
	c := engine.Container{
		ID: "3f2a9c", Name: "web", Image: "busybox", ImageID: "sha256:beef", Created: t0.Add(time.Minute),
		Labels: map[string]string{"tier": "front", "env": "prod"},
	}
	c.State.Status, c.State.ExitCode, c.State.StartedAt = engine.StatusExited, 3, t0
	c.Net.Mode = "appnet"
	c.Net.Ports = []network.PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}
	c.Run.Mounts = append(c.Run.Mounts, engine.VolumeMount("x", "/data", false, false))
	c.Run.Mounts[0].Type, c.Run.Mounts[0].Source = "bind", "/vols/data1/_data"
	newer := engine.Container{ID: "99ff", Name: "newer", Created: t0.Add(time.Hour)}
	look := fakeLookup{cs: []engine.Container{old, c, newer}, imgs: map[string]string{"bb:1": "sha256:beef"}}
	opts := ContainerFilterOptions{Lookup: look, VolumeDir: "/vols", Networks: fakeNets{{ID: "9a8b7c", Name: "appnet"}}}
	cases := []struct {
		filters string
		want    bool
	}{
		{``, true},
		{`{"name":["web"]}`, true},
		{`{"name":["/web"]}`, true},
		{`{"name":["we"]}`, true},
		{`{"name":["^eb"]}`, false},
		{`{"name":["db"]}`, false},
		{`{"id":["3f2"]}`, true},
		{`{"id":["^f2a"]}`, false},
		{`{"status":{"exited":true}}`, true},
		{`{"status":["running"]}`, false},
		{`{"label":["tier=front"]}`, true},
		{`{"label":["tier=front","env"]}`, true},
		{`{"label":["tier=front","env=dev"]}`, false},
		{`{"label":["tier=back"]}`, false},
		{`{"ancestor":["busybox"]}`, true},
		{`{"ancestor":["bb:1"]}`, true},
		{`{"ancestor":["alpine"]}`, false},
		{`{"exited":["3"]}`, true},
		{`{"exited":["0"]}`, false},
		{`{"before":["newer"]}`, true},
		{`{"before":["old"]}`, false},
		{`{"since":["old"]}`, true},
		{`{"since":["web"]}`, false},
		{`{"network":["appnet"]}`, true},
		{`{"network":["9a8"]}`, true},
		{`{"network":["bridge"]}`, false},
		{`{"volume":["data1"]}`, true},
		{`{"volume":["/data"]}`, true},
		{`{"volume":["other"]}`, false},
		{`{"publish":["8080"]}`, true},
		{`{"publish":["8000-8100/tcp"]}`, true},
		{`{"publish":["8080/udp"]}`, false},
		{`{"publish":["80"]}`, false},
		{`{"expose":["80"]}`, true},
		{`{"expose":["8080"]}`, false},
		{`{"health":["none"]}`, true},
		{`{"health":["healthy"]}`, false},
		{`{"is-task":["false"]}`, true},
		{`{"is-task":["true"]}`, false},
	}
	for _, k := range cases {
		m, err := NewContainerMatcher(context.Background(), mustFilters(t, k.filters), opts)
		if err != nil {
			t.Errorf("%s: %v", k.filters, err)
			continue
		}
		if got := m.Match(c); got != k.want {
			t.Errorf("%s: %v, want %v", k.filters, got, k.want)
		}
	}
	m, _ := NewContainerMatcher(context.Background(), mustFilters(t, `{"exited":["3"]}`), opts)
	c.State.Status = engine.StatusRunning
	if m.Match(c) {
		t.Error("exited filter matched a running container")
	}
	for filters, want := range map[string]string{
		`{"bogus":["x"]}`:        "invalid filter 'bogus'",
		`{"status":["bogus"]}`:   "invalid filter 'status=bogus'",
		`{"exited":["x"]}`:       "invalid filter 'exited=x'",
		`{"health":["maybe"]}`:   "Unrecognised filter value for health: maybe",
		`{"publish":["80/xyz"]}`: `invalid port specification: "80/xyz"`,
	} {
		_, err := NewContainerMatcher(context.Background(), mustFilters(t, filters), opts)
		if !errdefs.IsInvalidArgument(err) || err.Error() != want+": invalid argument" {
			t.Errorf("%s: error %v, want %q (invalid argument)", filters, err, want)
		}
	}
	if _, err := NewContainerMatcher(context.Background(), mustFilters(t, `{"before":["nope"]}`), opts); !errdefs.IsNotFound(err) {
		t.Errorf("before an unknown container: %v, want not found", err)
	}
}

func TestFilterArgs(t *testing.T) {
	f, err := FilterArgs([]string{"Name=web", "label=a=b", "label=c"})
	if err != nil || !f["name"]["web"] || !f["label"]["a=b"] || !f["label"]["c"] {
		t.Errorf("FilterArgs = %v, %v", f, err)
	}
	if _, err := FilterArgs([]string{"name"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no '=': %v", err)
	}
}
