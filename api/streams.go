package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/monitor"
)

// logs is GET /containers/{id}/logs: follow, stdout, stderr, since,
// until, timestamps, tail ("all" or N).
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	wantOut, wantErr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !wantOut && !wantErr {
		writeError(w, invalid("Bad parameters: you must choose at least one stream"))
		return
	}
	opts := engine.LogOptions{Follow: boolParam(r, "follow"), Timestamps: boolParam(r, "timestamps"), Tail: -1}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, invalid("invalid value for tail: "+t))
			return
		}
		if n >= 0 {
			opts.Tail = n
		}
	}
	var err error
	if opts.Since, err = convert.ParseTime(q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if opts.Until, err = convert.ParseTime(q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	c, err := s.b.Container(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", stream.ContentType(c.Run.Tty))
	w.WriteHeader(http.StatusOK)
	flush(w)
	fw := stream.NewMux(w, !c.Run.Tty, func() { flush(w) })
	stdout, stderr := io.Discard, io.Discard
	if wantOut {
		stdout = fw.Stream(stream.Stdout)
	}
	if wantErr {
		stderr = fw.Stream(stream.Stderr)
	}
	if err := s.b.Logs(r.Context(), c.ID, opts, stdout, stderr); err != nil && r.Context().Err() == nil {
		s.opts.Logf("api: logs of %s: %v", c.ID, err)
	}
}

// attach is POST /containers/{id}/attach (hijacked). Output comes from
// the container's log, which the monitor writes from the first byte of
// each run, so nothing is lost when the client attaches before the start
// (the CLI's `run` does create → attach → wait → start). stdin goes to the
// monitor's attach socket (<bundle>/attach) once the container runs.
//
// Limits (phase 1): output arrives line by line (a prompt without a
// newline shows once the line ends) with up to 100 ms delay. The client's
// EOF reaches the monitor as a half-close; the monitor closes the
// container's stdin on it only once the engine starts it without
// --leave-stdin-open for Docker's StdinOnce (not yet: an engine change).
func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c0, err := s.b.Container(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	wantIn, wantOut, wantErr := boolParam(r, "stdin"), boolParam(r, "stdout"), boolParam(r, "stderr")
	replay, follow := boolParam(r, "logs"), boolParam(r, "stream")
	conn, in, err := stream.Hijack(w, r, stream.ContentType(c0.Run.Tty), MaxVersion)
	if err != nil {
		s.opts.Logf("api: attach %s: hijack: %v", c0.ID, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	fw := stream.NewMux(conn, !c0.Run.Tty, nil)
	stdout, stderr := io.Discard, io.Discard
	if wantOut {
		stdout = fw.Stream(stream.Stdout)
	}
	if wantErr {
		stderr = fw.Stream(stream.Stderr)
	}
	if wantIn && c0.Run.OpenStdin {
		go s.copyStdin(ctx, c0.ID, in)
	} else {
		// The CLI half-closes when it sends no stdin: EOF is no hang-up.
		go io.Copy(io.Discard, in)
	}
	if replay {
		s.b.Logs(ctx, c0.ID, engine.LogOptions{Tail: -1}, stdout, stderr)
	}
	if !follow {
		return
	}
	// Wait for the run to begin: the container is running, or has run
	// since the request came in.
	since := time.Now()
	if c0.State.Status != engine.StatusRunning {
		for {
			c, err := s.b.Container(ctx, c0.ID)
			if err != nil {
				return
			}
			if c.State.Status == engine.StatusRunning || !c.State.StartedAt.Equal(c0.State.StartedAt) {
				since = c.State.StartedAt
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}
	if replay {
		since = time.Now()
	}
	// The run is marked before its monitor makes the log: wait for the
	// file, then follow it until the container stops.
	// The state is read rarely: every read takes the database's lock.
	for i := 1; ; i++ {
		if s.opts.Host.LogExists(c0.ID) {
			break
		}
		if i%20 == 0 {
			c, err := s.b.Container(ctx, c0.ID)
			if err != nil || c.State.Status != engine.StatusRunning {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
	err = s.opts.Host.FollowLog(ctx, c0.ID, since, func(le monitor.LogEntry) error {
		w := stdout
		if le.Stream == "stderr" {
			w = stderr
		}
		_, err := w.Write(le.Data)
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.opts.Logf("api: attach %s: %v", c0.ID, err)
	}
	stream.CloseWrite(conn)
}

// copyStdin forwards the client's stdin to the monitor's attach socket,
// waiting for the socket to appear (the container may start later). The
// client's EOF (the CLI half-closes when its stdin ends) is passed on as
// a half-close, which the monitor reads as the end of the container's
// stdin.
func (s *Server) copyStdin(ctx context.Context, id string, in io.Reader) {
	var conn net.Conn
	for conn == nil {
		var err error
		conn, err = s.opts.Host.DialAttach(ctx, id)
		if err != nil {
			conn = nil
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	defer conn.Close()
	// Drain what the monitor sends; output is read from the log.
	go io.Copy(io.Discard, conn)
	// Messages stay below the monitor's read size (SOCK_SEQPACKET
	// truncates a longer one), so no io.Copy with its own buffer size.
	buf := make([]byte, 8192)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			stream.CloseWrite(conn)
		}
		if err != nil {
			return
		}
	}
}
