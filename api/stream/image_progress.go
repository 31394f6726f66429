package stream

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// PullHold passes a pull's progress to a stream.Progress, holding
// back the lines that come before anything was resolved ("TAG: Pulling
// from REPO"), so that a pull that fails before it has found the
// manifest is answered with its own status (404 for a missing tag) and
// not with 200 and an error inside the stream, as dockerd.
type PullHold struct {
	mu       sync.Mutex
	p        *Progress
	held     []byte
	released bool
}

// HoldPull returns a PullHold writing to p.
func HoldPull(p *Progress) *PullHold { return &PullHold{p: p} }

// Write passes b on once a line other than "Pulling from" has come.
func (h *PullHold) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return h.p.Write(p)
	}
	h.held = append(h.held, p...)
	for _, line := range bytes.SplitAfter(h.held, []byte("\n")) {
		if len(line) > 0 && line[len(line)-1] == '\n' && !bytes.Contains(line, []byte(": Pulling from ")) {
			h.released = true
			held := h.held
			h.held = nil
			if _, err := h.p.Write(held); err != nil {
				return 0, err
			}
			break
		}
	}
	return len(p), nil
}

// Flush sends what is still held (the pull succeeded without other
// progress, or failed after the stream started).
func (h *PullHold) Flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.held) > 0 {
		h.p.Write(h.held)
		h.held = nil
	}
	h.released = true
}

// PushOutput passes a push's progress to a stream.Progress, turning its
// final "TAG: digest: D size: N" line into Docker's: that status line as
// it is, then the aux message {"Tag","Digest","Size"} (Finish sends the
// aux from the push's result).
type PushOutput struct {
	mu      sync.Mutex
	pw      *Progress
	partial []byte
	sawLine bool
}

// NewPushOutput returns a PushOutput writing to pw.
func NewPushOutput(pw *Progress) *PushOutput { return &PushOutput{pw: pw} }

// Write passes b's complete lines on, the digest line unparsed.
func (p *PushOutput) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.partial[:i+1]
		p.partial = p.partial[i+1:]
		if bytes.Contains(line, []byte(": digest: sha256:")) {
			p.sawLine = true
			p.pw.Send(jsonstream.Message{Status: strings.TrimSpace(string(line))})
			continue
		}
		if _, err := p.pw.Write(line); err != nil {
			return 0, err
		}
	}
}

// Finish sends the digest line (when the push did not print one) and
// the aux message for the pushed manifest: tag, digest and size in bytes.
func (p *PushOutput) Finish(tag, digest string, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.partial) > 0 {
		p.pw.Write(append(p.partial, '\n'))
	}
	if !p.sawLine {
		p.pw.Send(jsonstream.Message{Status: tag + ": digest: " + digest + " size: " + strconv.FormatInt(size, 10)})
	}
	aux, _ := json.Marshal(map[string]any{"Tag": tag, "Digest": digest, "Size": size})
	raw := json.RawMessage(aux)
	p.pw.Send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &raw})
}
