package events

import (
	"context"
	"fmt"
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

// TestRotation: the log is rotated once it reaches MaxSize, Read returns
// the events of both files in order, and a follower goes on with the new
// log after a rotation.
func TestRotation(t *testing.T) {
	l := Open(t.TempDir())
	big := strings.Repeat("x", 1<<20)
	for i := range 9 {
		if err := l.Append(Event{Type: "container", Action: "create", ID: fmt.Sprint(i), Attributes: map[string]string{"pad": big}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(l.Path() + ".1"); err != nil {
		t.Fatalf("no rotated log after %d MiB: %v", 9, err)
	}
	var ids []string
	if err := l.Read(context.Background(), ReadOptions{}, func(ev Event) error { ids = append(ids, ev.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "0,1,2,3,4,5,6,7,8" {
		t.Fatalf("read across rotation: %v", ids)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := make(chan string, 100)
	go l.Read(ctx, ReadOptions{Since: time.Now(), Follow: true, PollInterval: 10 * time.Millisecond}, func(ev Event) error {
		seen <- ev.ID
		return nil
	})
	time.Sleep(50 * time.Millisecond)
	for i := range 9 { // another rotation
		if err := l.Append(Event{Type: "container", Action: "create", ID: fmt.Sprint("b", i), Attributes: map[string]string{"pad": big}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Append(Event{Type: "container", Action: "start", ID: "marker"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		select {
		case id := <-seen:
			got = append(got, id)
			if id == "marker" {
				if len(got) != 10 {
					t.Errorf("follower saw %v, want b0…b8 then marker", got)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("follower never saw the event after the rotation; saw %v", got)
		}
	}
}
