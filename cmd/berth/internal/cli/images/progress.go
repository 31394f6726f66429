package images

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/berthproject/berth/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/jsonmessage"
	"github.com/moby/term"
)

// progressDisplay renders pull (and push) progress the way the docker CLI
// does: it turns events into Docker's JSON progress messages and hands
// them to the docker CLI's own renderer (moby's jsonmessage). On a
// terminal each layer has one line, updated in place with a progress bar;
// elsewhere each status is one plain line ("abc123def456: Pull complete")
// and byte counts are left out.
//
// It is an io.Writer too: text written to it (the engine's "Status: …"
// line) is shown as status lines. It implements image.ProgressReporter.
// Each message is on out when ReportProgress or Write returns; Close ends
// the renderer.
type progressDisplay struct {
	msgs  chan jsonstream.Message
	shown chan struct{} // a message was rendered: output stays in order
	done  chan error

	mu      sync.Mutex
	partial []byte
	closed  bool
}

// newProgressDisplay starts rendering to out.
func newProgressDisplay(out io.Writer) *progressDisplay {
	fd, isTerm := term.GetFdInfo(out)
	p := &progressDisplay{msgs: make(chan jsonstream.Message), shown: make(chan struct{}), done: make(chan error, 1)}
	seq := func(yield func(jsonstream.Message, error) bool) {
		ok := true
		for m := range p.msgs {
			ok = ok && yield(m, nil) // after a render error, only acknowledge
			p.shown <- struct{}{}
		}
	}
	go func() { p.done <- jsonmessage.DisplayJSONMessages(seq, out, fd, isTerm, nil) }()
	return p
}

// ReportProgress shows one event. Layer events carry a progress detail,
// as the Docker daemon's do, so that the terminal renderer keeps one line
// per layer.
func (p *progressDisplay) ReportProgress(ev image.ProgressEvent) {
	m := jsonstream.Message{ID: ev.ID, Status: ev.Status}
	if ev.ID != "" && !strings.HasPrefix(ev.Status, "Pulling from ") {
		m.Progress = &jsonstream.Progress{Current: ev.Current, Total: ev.Total}
	}
	p.send(m)
}

// Write shows each complete line of b as a status message.
func (p *progressDisplay) Write(b []byte) (int, error) {
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	var lines []string
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	p.mu.Unlock()
	for _, l := range lines {
		p.send(jsonstream.Message{Status: l})
	}
	return len(b), nil
}

func (p *progressDisplay) send(m jsonstream.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.msgs <- m
		<-p.shown
	}
}

// Close shows any unterminated text, stops the renderer and waits for it.
func (p *progressDisplay) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if len(p.partial) > 0 {
		p.msgs <- jsonstream.Message{Status: string(p.partial)}
		<-p.shown
		p.partial = nil
	}
	p.closed = true
	close(p.msgs)
	p.mu.Unlock()
	return <-p.done
}
