package images

import (
	"bytes"
	"testing"

	"github.com/berthproject/berth/image"
)

// TestProgressDisplayPlain: not on a terminal, statuses are plain lines in
// order, byte progress is left out, and written text shows as lines.
func TestProgressDisplayPlain(t *testing.T) {
	var out bytes.Buffer
	d := newProgressDisplay(&out)
	d.ReportProgress(image.ProgressEvent{ID: "latest", Status: "Pulling from library/x"})
	d.ReportProgress(image.ProgressEvent{ID: "abc123def456", Status: "Pulling fs layer"})
	d.ReportProgress(image.ProgressEvent{ID: "abc123def456", Status: "Downloading", Current: 10, Total: 100})
	d.ReportProgress(image.ProgressEvent{ID: "abc123def456", Status: "Pull complete"})
	d.Write([]byte("Status: Downloaded newer image for x\npartial"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	want := "latest: Pulling from library/x\nabc123def456: Pulling fs layer\nabc123def456: Pull complete\nStatus: Downloaded newer image for x\npartial\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
	d.ReportProgress(image.ProgressEvent{ID: "late", Status: "ignored"}) // after Close: dropped, no panic
}
