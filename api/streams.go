package api

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
)

// logs is GET /containers/{id}/logs: follow, stdout, stderr, since,
// until, timestamps, tail ("all" or N).
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wantOut, wantErr := wire.Bool(r, "stdout"), wire.Bool(r, "stderr")
	if !wantOut && !wantErr {
		wire.Error(w, wire.Invalid("Bad parameters: you must choose at least one stream"))
		return
	}
	opts := engine.LogOptions{Follow: wire.Bool(r, "follow"), Timestamps: wire.Bool(r, "timestamps"), Tail: engine.ParseLogTail(q.Get("tail"))}
	var err error
	if opts.Since, err = convert.ParseTime(q.Get("since")); err != nil {
		wire.Error(w, err)
		return
	}
	if opts.Until, err = convert.ParseTime(q.Get("until")); err != nil {
		wire.Error(w, err)
		return
	}
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", stream.ContentType(c.Run.Tty))
	// The 200 goes out with the first output, or after logsHeaderDelay:
	// by then the engine has the log open, so a client that goes on at
	// the header to wait for and remove the container (docker-py's
	// containers.run) still gets every byte; a failure before any output
	// gets its own status.
	lw := &lazyHeader{w: w}
	timer := time.AfterFunc(logsHeaderDelay, lw.start)
	fw := stream.NewMux(lw, !c.Run.Tty, lw.flush)
	stdout, stderr := io.Discard, io.Discard
	if wantOut {
		stdout = fw.Stream(stream.Stdout)
	}
	if wantErr {
		stderr = fw.Stream(stream.Stderr)
	}
	err = s.b.Logs(r.Context(), c.ID, opts, stdout, stderr)
	timer.Stop()
	if err != nil && r.Context().Err() == nil {
		if lw.unstarted() {
			wire.Error(w, err)
			return
		}
		s.opts.Logf("api: logs of %s: %v", c.ID, err)
	}
	lw.start()
}

// logsHeaderDelay bounds how long a log stream without output waits for
// its response header (docker logs -f of a silent container).
const logsHeaderDelay = 200 * time.Millisecond

// lazyHeader sends a 200 response's header on the first Write or start,
// once; safe for concurrent use.
type lazyHeader struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
}

func (l *lazyHeader) startLocked() {
	if !l.started {
		l.started = true
		l.w.WriteHeader(http.StatusOK)
		wire.Flush(l.w)
	}
}

func (l *lazyHeader) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLocked()
}

// unstarted reports whether nothing was sent yet, and if so keeps it so:
// the caller answers with an error instead.
func (l *lazyHeader) unstarted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return false
	}
	l.started = true // the caller's error response is the header
	return true
}

func (l *lazyHeader) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.startLocked()
	return l.w.Write(p)
}

func (l *lazyHeader) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		wire.Flush(l.w)
	}
}

// attach is POST /containers/{id}/attach (hijacked): stream.Attach with
// the request's stdin, stdout, stderr, logs and stream flags.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	c0, ok := s.container(w, r)
	if !ok {
		return
	}
	o := stream.AttachOptions{
		Stdin: wire.Bool(r, "stdin"), Stdout: wire.Bool(r, "stdout"), Stderr: wire.Bool(r, "stderr"),
		Logs: wire.Bool(r, "logs"), Stream: wire.Bool(r, "stream"),
	}
	conn, in, err := stream.Hijack(w, r, stream.ContentType(c0.Run.Tty), MaxVersion)
	if err != nil {
		s.opts.Logf("api: attach %s: hijack: %v", c0.ID, err)
		return
	}
	defer conn.Close()
	s.recordContainer(c0, "attach", nil)
	if err := stream.Attach(r.Context(), s.b, s.opts.Host, c0, conn, in, o); err != nil {
		s.opts.Logf("api: attach %s: %v", c0.ID, err)
	}
}
