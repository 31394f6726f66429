package events

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, l *Log, opts ReadOptions) []Event {
	t.Helper()
	var got []Event
	if err := l.Read(context.Background(), opts, func(ev Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAppendNeverNullAttributes(t *testing.T) {
	l := Open(t.TempDir())
	if err := l.Append(Event{Type: "image", Action: "delete", ID: "sha256:1"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"attributes":{}`) {
		t.Errorf("line %s: want attributes {}", data)
	}
	// An old line without attributes reads as an empty map.
	os.WriteFile(l.Path(), []byte(`{"type":"volume","action":"destroy","id":"v","timeNano":5}`+"\n"), 0o600)
	got := readAll(t, l, ReadOptions{})
	if len(got) != 1 || got[0].Attributes == nil {
		t.Fatalf("read %+v: want one event with non-nil Attributes", got)
	}
}

func TestReadSinceSkipsHistory(t *testing.T) {
	l := Open(t.TempDir())
	old := time.Now().Add(-time.Hour)
	for i := range 3 {
		if err := l.Append(Event{Type: "container", Action: "start", ID: "old", TimeNano: old.Add(time.Duration(i) * time.Second).UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	// The file's time is old too: the read starts at its end.
	os.Chtimes(l.Path(), old, old.Add(3*time.Second))
	if got := readAll(t, l, ReadOptions{Since: time.Now()}); len(got) != 0 {
		t.Errorf("since now: %d old events", len(got))
	}
	if got := readAll(t, l, ReadOptions{Since: old.Add(time.Second)}); len(got) != 2 {
		t.Errorf("since old+1s: %d events, want 2", len(got))
	}
	// A follow from now delivers what comes next, and ends at until.
	since := time.Now()
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.Append(Event{Type: "container", Action: "die", ID: "new"})
	}()
	got := readAll(t, l, ReadOptions{Since: since, Until: since.Add(500 * time.Millisecond), Follow: true, PollInterval: 10 * time.Millisecond})
	if len(got) != 1 || got[0].ID != "new" {
		t.Errorf("follow from now: %+v, want the new event only", got)
	}
}
