package stream

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/jsonstream"
)

// Progress is the body of a pull or push (POST /images/create, POST
// /images/{name}/push): it turns the engine's Docker-style progress lines
// ("ID: STATUS", one per line) into jsonmessage objects ({"status": …,
// "id": …}), one per line, flushed as they come. The 200 header goes out
// with the first one, so that a failure before any output can still be
// answered with its own status. Safe for concurrent use.
type Progress struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
	partial []byte // the last line's start, until its newline
}

// NewProgress returns a Progress writing to w.
func NewProgress(w http.ResponseWriter) *Progress { return &Progress{w: w} }

var progressID = regexp.MustCompile(`^([0-9a-f]{12}|[^ :]+:[^ ]+|latest): (.*)$`)

// Start sends the 200 header if nothing has been sent yet.
func (p *Progress) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start()
}

func (p *Progress) start() {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
	}
}

// Write sends every complete line of b as a jsonmessage (a line that
// starts with a layer ID or a reference as its "id").
func (p *Progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(p.partial[:i]), "\r")
		p.partial = p.partial[i+1:]
		if line == "" {
			continue
		}
		msg := jsonstream.Message{Status: line}
		if m := progressID.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "Digest:") && !strings.HasPrefix(line, "Status:") {
			msg.ID, msg.Status = m[1], m[2]
		}
		p.start()
		if err := json.NewEncoder(p.w).Encode(msg); err != nil {
			return 0, err
		}
		http.NewResponseController(p.w).Flush()
	}
	return len(b), nil
}

// Fail reports an error with the one-line text msg in the stream
// ({"error": …}) and returns true once the stream has started; it sends
// nothing and returns false before, for the caller to answer with the
// error's own status.
func (p *Progress) Fail(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return false
	}
	json.NewEncoder(p.w).Encode(jsonstream.Message{Error: &jsonstream.Error{Message: msg}})
	return true
}
