package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/events"
	"github.com/containerd/errdefs"
)

const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// at is 2023-11-14T22:13:20Z plus ns nanoseconds.
func at(ns int64) int64 { return 1_700_000_000*int64(time.Second) + ns }

func TestPrintDefault(t *testing.T) {
	defer func(l *time.Location) { time.Local = l }(time.Local)
	time.Local = time.UTC
	for _, c := range []struct {
		ev   events.Event
		want string
	}{
		{events.Event{Type: "container", Action: "start", ID: id, TimeNano: at(5),
			Attributes: map[string]string{"name": "foo", "image": "busybox", "com.example": "x"}},
			"2023-11-14T22:13:20.000000005Z container start " + id + " (com.example=x, image=busybox, name=foo)\n"},
		{events.Event{Type: "volume", Action: "create", ID: "data", TimeNano: at(123456789)},
			"2023-11-14T22:13:20.123456789Z volume create data\n"},
		{events.Event{Type: "image", Action: "pull", ID: "busybox:latest", Attributes: map[string]string{"name": "busybox"}},
			"image pull busybox:latest (name=busybox)\n"}, // no time: none printed
	} {
		var b bytes.Buffer
		if err := Print(&b, convert.Event(c.ev), nil); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("got  %q\nwant %q", b.String(), c.want)
		}
	}
	time.Local = time.FixedZone("X", 3600)
	var b bytes.Buffer
	Print(&b, convert.Event(events.Event{Type: "network", Action: "create", ID: "n", TimeNano: at(0)}), nil)
	if want := "2023-11-14T23:13:20.000000000+01:00 network create n\n"; b.String() != want {
		t.Errorf("got %q, want %q (local time, as the docker CLI)", b.String(), want)
	}
}

func TestPrintTemplate(t *testing.T) {
	ev := convert.Event(events.Event{Type: "container", Action: "die", ID: id, TimeNano: at(7),
		Attributes: map[string]string{"name": "foo", "image": "busybox", "exitCode": "3"}})
	for format, want := range map[string]string{
		"{{.Action}}": "die\n",
		"{{.Type}} {{.Actor.Attributes.exitCode}} {{.Time}} {{.TimeNano}} {{.Scope}}": "container 3 1700000000 1700000000000000007 local\n",
		"{{.Status}} {{.From}}": "die busybox\n", // the deprecated fields Docker 28 still has
		"{{upper .Scope}}":      "LOCAL\n",
	} {
		tmpl, err := Template(format)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		var b bytes.Buffer
		if err := Print(&b, ev, tmpl); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("%s: got %q, want %q", format, b.String(), want)
		}
	}
	tmpl, err := Template("json")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Print(&b, ev, tmpl)
	if strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("json: want one line, got %q", b.String())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	actor, _ := m["Actor"].(map[string]any)
	if m["Type"] != "container" || m["Action"] != "die" || m["scope"] != "local" || m["timeNano"] != float64(at(7)) ||
		actor["ID"] != id || m["status"] != "die" || m["from"] != "busybox" {
		t.Errorf("json: %s", b.String())
	}
	for _, bad := range []string{"{{.Bogus}}", "{{", "{{.Action"} {
		if _, err := Template(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if tmpl, err := Template(""); tmpl != nil || err != nil {
		t.Errorf("empty format: %v, %v; want the default line", tmpl, err)
	}
}

// testLog is a log with a container's lifecycle 10 s ago, one event a
// millisecond, and a volume's creation.
func testLog(t *testing.T) (*events.Log, time.Time) {
	log := events.Open(t.TempDir())
	base := time.Now().Add(-10 * time.Second)
	for i, a := range []string{"create", "start", "die", "destroy"} {
		attrs := map[string]string{"name": "foo", "image": "busybox", "tier": "front"}
		if err := log.Append(events.Event{Type: "container", Action: a, ID: id, Attributes: attrs,
			TimeNano: base.Add(time.Duration(i) * time.Millisecond).UnixNano()}); err != nil {
			t.Fatal(err)
		}
	}
	log.Append(events.Event{Type: "volume", Action: "create", ID: "data", Attributes: map[string]string{"driver": "local"},
		TimeNano: base.Add(5 * time.Millisecond).UnixNano()})
	return log, base
}

func TestRunHistory(t *testing.T) {
	log, base := testLog(t)
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Since: "1m", Until: "0s"}, "create start die destroy create"},
		{Options{Since: "1m", Until: "0s", Filters: []string{"event=start"}}, "start"},
		{Options{Since: "1m", Until: "0s", Filters: []string{"event=start", "event=die"}}, "start die"},
		{Options{Since: "1m", Until: "0s", Filters: []string{"type=volume"}}, "create"},
		{Options{Since: "1m", Until: "0s", Filters: []string{"container=foo", "event=destroy"}}, "destroy"},
		{Options{Since: "1m", Until: "0s", Filters: []string{"label=tier=back"}}, ""},
		{Options{Since: "1m", Until: "0s", Filters: []string{"image=busybox"}}, "create start die destroy"},
		// RFC 3339 and Unix seconds with a fraction bound the window.
		{Options{Since: base.Add(time.Millisecond).Format(time.RFC3339Nano), Until: "0s"}, "start die destroy create"},
		{Options{Since: "1m", Until: unixText(base.Add(1500 * time.Microsecond))}, "create start"},
	} {
		c.o.Format = "{{.Action}}"
		var out bytes.Buffer
		if err := Run(context.Background(), log, c.o, &out, &out); err != nil {
			t.Fatalf("%+v: %v", c.o, err)
		}
		if got := strings.Join(strings.Fields(out.String()), " "); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.o, got, c.want)
		}
	}
}

// unixText is t as Docker's "seconds.nanoseconds".
func unixText(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

func TestRunErrors(t *testing.T) {
	log, _ := testLog(t)
	for _, o := range []Options{
		{Since: "xyz"},
		{Until: "soon"},
		{Since: "1s", Until: "1m"}, // until before since
	} {
		err := Run(context.Background(), log, o, &bytes.Buffer{}, &bytes.Buffer{})
		if !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: %v, want an invalid-argument error", o, err)
		}
	}
	var errOut bytes.Buffer
	err := Run(context.Background(), log, Options{Format: "{{.Nope}}"}, &bytes.Buffer{}, &errOut)
	var ee cli.ExitError
	if !errors.As(err, &ee) || ee.Code != 64 || !strings.HasPrefix(errOut.String(), "Error parsing format: ") {
		t.Errorf("bad template: %v, %q; want status 64 and Docker's message", err, errOut.String())
	}
	if err := (filterValue{new([]string)}).Set("noequals"); err == nil || strings.Contains(err.Error(), "invalid argument") {
		t.Errorf("filter without '=': %v, want Docker's message alone", err)
	}
}

// syncBuffer hands each write to a reader goroutine.
type syncBuffer struct{ ch chan string }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.ch <- string(p)
	return len(p), nil
}

func TestRunFollow(t *testing.T) {
	log, _ := testLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{ch: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, log, Options{Filters: []string{"event=create"}, Format: "{{.Actor.ID}}"}, out, out)
	}()
	// Without --since only new events show: none of the history.
	time.Sleep(300 * time.Millisecond)
	for _, a := range []string{"start", "create"} {
		if err := log.Append(events.Event{Type: "volume", Action: a, ID: "new-" + a}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case line := <-out.ch:
		if line != "new-create\n" {
			t.Errorf("followed %q, want new-create", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event followed within 5s")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("cancelled follow: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not stop when cancelled")
	}
	if len(out.ch) != 0 {
		t.Errorf("more output: %q", <-out.ch)
	}
}
