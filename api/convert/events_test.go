package convert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/events"
)

func TestMatchEvent(t *testing.T) {
	ctr := events.Event{Type: "container", Action: "start", ID: "abc123", TimeNano: 1_700_000_000_500_000_000,
		Attributes: map[string]string{"name": "web", "image": "127.0.0.1:5000/busybox:latest", "tier": "front"}}
	img := events.Event{Type: "image", Action: "pull", ID: "127.0.0.1:5000/busybox:latest", Attributes: map[string]string{"name": "127.0.0.1:5000/busybox:latest"}}
	vol := events.Event{Type: "volume", Action: "create", ID: "data", Attributes: map[string]string{"driver": "local"}}
	exec := events.Event{Type: "container", Action: "exec_start: sh -c true", ID: "abc123", Attributes: map[string]string{"name": "web"}}
	for _, c := range []struct {
		filters string
		ev      events.Event
		want    bool
	}{
		{``, ctr, true},
		{`{"type":["container"]}`, ctr, true},
		{`{"type":["image"]}`, ctr, false},
		{`{"type":["image","container"]}`, ctr, true}, // one key's values OR
		{`{"event":["start"]}`, ctr, true},
		{`{"event":["stop"]}`, ctr, false},
		{`{"event":["star"]}`, ctr, false}, // exact
		{`{"action":["stop"]}`, ctr, false},
		{`{"event":["exec_start"]}`, exec, true}, // prefix for exec_*
		{`{"event":["exec_create"]}`, exec, false},
		{`{"container":["web"]}`, ctr, true},
		{`{"container":["abc"]}`, ctr, true}, // ID prefix
		{`{"container":["db"]}`, ctr, false},
		{`{"container":["web"]}`, img, false}, // only that container's events
		{`{"container":["web"]}`, vol, false},
		{`{"container":["web"],"type":["container"]}`, ctr, true},
		{`{"container":["web"],"event":["die"]}`, ctr, false}, // keys AND
		{`{"image":["127.0.0.1:5000/busybox"]}`, ctr, true},   // tag stripped
		{`{"image":["127.0.0.1:5000/busybox:latest"]}`, img, true},
		{`{"image":["busybox"]}`, ctr, false},
		{`{"image":["127.0.0.1:5000/busybox"]}`, vol, false},
		{`{"volume":["data"]}`, vol, true},
		{`{"volume":["data"]}`, ctr, false},
		{`{"network":["data"]}`, vol, true}, // Docker: the actor's ID, whatever the event's type
		{`{"network":["other"]}`, vol, false},
		{`{"label":["tier"]}`, ctr, true},
		{`{"label":["tier=front"]}`, ctr, true},
		{`{"label":["tier=back"]}`, ctr, false},
		{`{"label":["tier=front","x"]}`, ctr, false}, // every label must match
		{`{"label":["tier"]}`, img, false},
		{`{"scope":["local"]}`, ctr, true},
		{`{"scope":["swarm"]}`, ctr, false},
		{`{"daemon":["abc"]}`, ctr, true}, // Docker: a fuzzy match on the actor too
		{`{"daemon":["other"]}`, ctr, false},
		{`{"service":["web"]}`, vol, false},
	} {
		if got := mustFilters(t, c.filters).MatchEvent(c.ev); got != c.want {
			t.Errorf("%s on %s %s: %v, want %v", c.filters, c.ev.Type, c.ev.Action, got, c.want)
		}
	}
}

func TestEventMessage(t *testing.T) {
	ev := events.Event{Type: "container", Action: "start", ID: "abc", Attributes: map[string]string{"name": "web"}, TimeNano: 1_700_000_000_500_000_000}
	m := Event(ev)
	if m.Time != 1_700_000_000 || m.TimeNano != ev.TimeNano || m.Actor.ID != "abc" || m.Actor.Attributes["name"] != "web" || m.Scope != "local" {
		t.Errorf("Event = %+v", m)
	}
	if got := time.Unix(0, m.TimeNano); !got.Equal(time.Unix(1_700_000_000, 500_000_000)) {
		t.Errorf("time %v", got)
	}
	// No attributes (an old log line, an image delete): {} not null.
	data, err := json.Marshal(Event(events.Event{Type: "image", Action: "delete", ID: "sha256:1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"Attributes":{}`) {
		t.Errorf("message %s: want Attributes {}", data)
	}
}
