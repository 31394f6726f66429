package convert

import (
	"testing"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	networktypes "github.com/moby/moby/api/types/network"
)

func mustFilters(t *testing.T, v string) Filters {
	t.Helper()
	f, err := ParseFilters(v)
	if err != nil {
		t.Fatalf("ParseFilters(%s): %v", v, err)
	}
	return f
}

func TestMatchContainer(t *testing.T) {
	c := engine.Container{ID: "3f2a9c", Name: "web", Image: "busybox", Labels: map[string]string{"tier": "front"}}
	c.State.Status, c.State.ExitCode = engine.StatusExited, 3
	cases := []struct {
		filters string
		want    bool
	}{
		{``, true},
		{`{"name":["web"]}`, true},
		{`{"name":["/web"]}`, true},
		{`{"name":["db"]}`, false},
		{`{"id":["3f2"]}`, true},
		{`{"id":["f2a"]}`, false},
		{`{"status":{"exited":true}}`, true},
		{`{"status":["running"]}`, false},
		{`{"label":["tier=front"]}`, true},
		{`{"label":["tier=back"]}`, false},
		{`{"ancestor":["busybox"]}`, true},
		{`{"ancestor":["alpine"]}`, false},
		{`{"exited":["3"]}`, true},
		{`{"exited":["0"]}`, false},
	}
	for _, k := range cases {
		if got := mustFilters(t, k.filters).MatchContainer(c); got != k.want {
			t.Errorf("%s: %v, want %v", k.filters, got, k.want)
		}
	}
	c.State.Status = engine.StatusRunning
	if mustFilters(t, `{"exited":["3"]}`).MatchContainer(c) {
		t.Error("exited filter matched a running container")
	}
}

func TestMatchNetwork(t *testing.T) {
	n := networktypes.Inspect{Network: networktypes.Network{Name: "appnet", ID: "9a8b7c", Driver: "bridge", Labels: map[string]string{"a": "b"}}}
	for filters, want := range map[string]bool{
		``: true, `{"name":["appnet"]}`: true, `{"id":["9a8"]}`: true, `{"id":["a8b"]}`: false,
		`{"driver":["host"]}`: false, `{"label":["a=b"]}`: true, `{"label":["c"]}`: false,
	} {
		if got := mustFilters(t, filters).MatchNetwork(n); got != want {
			t.Errorf("%s: %v, want %v", filters, got, want)
		}
	}
}

func TestEvents(t *testing.T) {
	ev := events.Event{Type: "container", Action: "start", ID: "abc", Attributes: map[string]string{"name": "web"}, TimeNano: 1_700_000_000_500_000_000}
	for filters, want := range map[string]bool{
		``: true, `{"type":["container"]}`: true, `{"type":["image"]}`: false,
		`{"event":["start"]}`: true, `{"action":["stop"]}`: false,
		`{"container":["web"]}`: true, `{"container":["abc"]}`: true, `{"container":["db"]}`: false,
		`{"image":["busybox"]}`: true, // filters of another type do not apply
	} {
		if got := mustFilters(t, filters).MatchEvent(ev); got != want {
			t.Errorf("%s: %v, want %v", filters, got, want)
		}
	}
	m := Event(ev)
	if m.Time != 1_700_000_000 || m.TimeNano != ev.TimeNano || m.Actor.ID != "abc" || m.Actor.Attributes["name"] != "web" || m.Scope != "local" {
		t.Errorf("Event = %+v", m)
	}
	if got := time.Unix(0, m.TimeNano); !got.Equal(time.Unix(1_700_000_000, 500_000_000)) {
		t.Errorf("time %v", got)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.45", "1.45", 0}, {"1.44", "1.45", -1}, {"1.50", "1.9", 1}, {"2.0", "1.50", 1}} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
