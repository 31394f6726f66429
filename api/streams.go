package api

import (
	"io"
	"net/http"
	"strconv"

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
	opts := engine.LogOptions{Follow: wire.Bool(r, "follow"), Timestamps: wire.Bool(r, "timestamps"), Tail: -1}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			wire.Error(w, wire.Invalid("invalid value for tail: "+t))
			return
		}
		if n >= 0 {
			opts.Tail = n
		}
	}
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
	w.WriteHeader(http.StatusOK)
	wire.Flush(w)
	fw := stream.NewMux(w, !c.Run.Tty, func() { wire.Flush(w) })
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
