package monitor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The container log format is the CRI logging format that conmon writes
// ("k8s-file"), one record per line:
//
//	2026-11-30T05:09:41.123456789Z stdout F a whole line
//	2026-11-30T05:09:41.123456789Z stderr P part of a line, more follows
//
// F closes a line (the newline is implied), P carries a piece of a longer
// line or a last line without newline. Reading it back reproduces the
// container's output byte for byte per stream.

// LogWriter appends a container's output to a log file in that format.
// Safe for concurrent use by its streams.
type LogWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewLogWriter writes records to w.
func NewLogWriter(w io.Writer) *LogWriter {
	return &LogWriter{w: w, now: time.Now}
}

// Stream returns the writer for one stream ("stdout" or "stderr"). Each
// Write becomes one record per line; a trailing piece without newline
// becomes a P record.
func (l *LogWriter) Stream(name string) io.Writer {
	return streamWriter{l, name}
}

type streamWriter struct {
	l    *LogWriter
	name string
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	ts := s.l.now().UTC().Format(time.RFC3339Nano)
	var buf bytes.Buffer
	for rest := p; len(rest) > 0; {
		line, tail, full := bytes.Cut(rest, []byte{'\n'})
		tag := "P"
		if full {
			tag = "F"
		}
		buf.WriteString(ts + " " + s.name + " " + tag + " ")
		buf.Write(line)
		buf.WriteByte('\n')
		rest = tail
	}
	if _, err := s.l.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// LogEntry is one piece of output read back from a log.
type LogEntry struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Data   []byte // with its trailing newline when the line was complete
}

// LogOptions select what ReadLog returns, as `docker logs` flags do.
type LogOptions struct {
	Tail  int       // last N lines per log; < 0 for all
	Since time.Time // entries at or after (zero: no bound)
	Until time.Time // entries before (zero: no bound)
	// Follow keeps reading as the log grows until Done returns true.
	Follow bool
	Done   func() bool
}

// parseRecord splits one record line (without its newline).
func parseRecord(line []byte) (LogEntry, bool, error) {
	f := bytes.SplitN(line, []byte{' '}, 4)
	if len(f) < 3 {
		return LogEntry{}, false, fmt.Errorf("malformed log record %q", line)
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return LogEntry{}, false, fmt.Errorf("malformed log time %q", f[0])
	}
	e := LogEntry{Time: t, Stream: string(f[1])}
	if len(f) == 4 {
		e.Data = append(e.Data, f[3]...)
	}
	full := string(f[2]) == "F" || bytes.HasPrefix(f[2], []byte("F"))
	if full {
		e.Data = append(e.Data, '\n')
	}
	return e, full, nil
}

// ReadLog reads the log at path and calls fn for each line (pieces of a
// long line are joined; a last line without newline comes without one).
// A missing log reads as empty.
func ReadLog(ctx context.Context, path string, opts LogOptions, fn func(LogEntry) error) error {
	f, err := os.Open(path)
	for opts.Follow && opts.Done != nil && errors.Is(err, os.ErrNotExist) && !opts.Done() {
		// Following a container whose monitor has not made its log yet.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		f, err = os.Open(path)
	}
	if opts.Follow && errors.Is(err, os.ErrNotExist) {
		f, err = os.Open(path) // made just before the container ended
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var lines []LogEntry
	pending := map[string]*LogEntry{} // partial lines per stream
	emit := func(e LogEntry) error {
		if !opts.Since.IsZero() && e.Time.Before(opts.Since) {
			return nil
		}
		if !opts.Until.IsZero() && !e.Time.Before(opts.Until) {
			return nil
		}
		if opts.Tail >= 0 && !opts.Follow {
			lines = append(lines, e)
			return nil
		}
		return fn(e)
	}
	flushPending := func() error {
		for k, p := range pending {
			delete(pending, k)
			if err := emit(*p); err != nil {
				return err
			}
		}
		return nil
	}
	tailDone := false
	var partial []byte
	for {
		chunk, err := r.ReadBytes('\n')
		if len(chunk) > 0 && chunk[len(chunk)-1] != '\n' {
			partial = append(partial, chunk...) // a record still being written
		} else if len(chunk) > 0 {
			line := append(partial, chunk[:len(chunk)-1]...)
			partial = nil
			e, full, perr := parseRecord(line)
			if perr != nil {
				return perr
			}
			if p := pending[e.Stream]; p != nil {
				p.Data = append(p.Data, e.Data...)
				e.Data, e.Time = p.Data, p.Time
			}
			if full {
				delete(pending, e.Stream)
				if err := emit(e); err != nil {
					return err
				}
			} else {
				cp := e
				pending[e.Stream] = &cp
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		if opts.Follow && opts.Tail >= 0 && !tailDone {
			tailDone = true // Tail with Follow: handled by the caller's first pass
		}
		if opts.Follow && partial == nil {
			// Caught up: a line still being written shows now, as in
			// Docker's json-file, rather than when its newline comes
			// (which may be never); the rest follows as its own entry.
			if err := flushPending(); err != nil {
				return err
			}
		}
		if !opts.Follow || (opts.Done != nil && opts.Done()) {
			// Drain what was written before the container ended.
			if opts.Follow {
				if more, _ := r.Peek(1); len(more) > 0 {
					continue
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := flushPending(); err != nil {
		return err
	}
	if opts.Tail >= 0 && !opts.Follow {
		start := max(0, len(lines)-opts.Tail)
		for _, e := range lines[start:] {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	return nil
}
