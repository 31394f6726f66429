// Package events is Berth's event log: an append-only JSON-lines file
// under the engine root that any berth process (the CLI, the API service)
// appends to and that GET /events (`docker events`) reads and follows.
// With no daemon there is no in-memory bus: the file is the bus.
//
// Each line is one Event. Appends take an exclusive flock (on
// events.jsonl.lock), so lines from concurrent processes never
// interleave; readers take none (a line being written is only consumed
// once its newline is there). Once the log reaches MaxSize it is rotated
// to events.jsonl.1 (replacing the one before): the log stays bounded
// with no daemon to trim it, and Read covers both files.
package events

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/flock"
)

// Event is one thing that happened, in Docker's vocabulary: Type is
// "container", "image", "network" or "volume"; Action is Docker's verb
// ("create", "start", "die", "destroy", "pull", "tag", …); ID the object's
// ID or name; Attributes extra details (name, image, exitCode, a
// container's labels), never nil once appended or read.
type Event struct {
	Type       string            `json:"type"`
	Action     string            `json:"action"`
	ID         string            `json:"id"`
	Attributes map[string]string `json:"attributes"`
	// TimeNano is the time in nanoseconds since the Unix epoch; Append
	// fills it in when zero.
	TimeNano int64 `json:"timeNano"`
}

// Log is the event log file.
type Log struct {
	path string
}

// Open returns the log at ROOT/events.jsonl (the file is made on first
// Append).
func Open(root string) *Log {
	return &Log{path: filepath.Join(root, "events.jsonl")}
}

// Path is the log file's path.
func (l *Log) Path() string { return l.path }

// MaxSize is the size in bytes at which Append rotates the log.
const MaxSize = 8 << 20

// Append writes ev as one line, under an exclusive flock, rotating the
// log first when it has reached MaxSize. A nil Attributes is written as
// an empty object (Docker never sends null).
func (l *Log) Append(ev Event) error {
	if ev.TimeNano == 0 {
		ev.TimeNano = time.Now().UnixNano()
	}
	if ev.Attributes == nil {
		ev.Attributes = map[string]string{}
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	lock, err := flock.Acquire(context.Background(), l.path+".lock", true)
	if err != nil {
		return fmt.Errorf("event log: lock: %w", err)
	}
	defer lock.Unlock()
	if st, err := os.Stat(l.path); err == nil && st.Size() >= MaxSize {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("event log: rotate: %w", err)
		}
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer f.Close()
	_, err = f.Write(append(data, '\n'))
	return err
}

// ReadOptions select what Read delivers.
type ReadOptions struct {
	// Since and Until bound the events' times (zero: unbounded); Until
	// also ends a Follow.
	Since, Until time.Time
	// Follow keeps reading new events until ctx ends or Until passes.
	Follow bool
	// PollInterval is how often a Follow looks for new lines (default
	// 100 ms).
	PollInterval time.Duration
}

// Read calls fn for every event in the log within opts' bounds, oldest
// first; with Follow it keeps going. A missing log reads as empty. A
// malformed line (a torn write from a crash) is skipped. When the log was
// last written before Since, the lines already there are not read at all
// (a follow from "now" costs nothing however long the log is).
func (l *Log) Read(ctx context.Context, opts ReadOptions, fn func(Event) error) error {
	// The current log is opened before the rotated one: a rotation in
	// between makes them the same file, read once; one after is seen by
	// the follow of the current log.
	cur, err := os.Open(l.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	old, err := os.Open(l.path + ".1")
	if err == nil && cur != nil && sameOpenFile(old, cur) {
		old.Close()
		old = nil
	}
	if old != nil {
		err := l.read(ctx, "", old, ReadOptions{Since: opts.Since, Until: opts.Until}, fn)
		if err != nil || l.pastUntil(opts) {
			if cur != nil {
				cur.Close()
			}
			return err
		}
	}
	return l.read(ctx, l.path, cur, opts, fn)
}

// pastUntil reports whether the rotated file already held an event after
// opts.Until (then the current file has none within the bounds).
func (l *Log) pastUntil(opts ReadOptions) bool {
	if opts.Until.IsZero() {
		return false
	}
	st, err := os.Stat(l.path + ".1")
	return err == nil && st.ModTime().After(opts.Until.Add(time.Second))
}

// read is Read on the file at path, starting with first when not nil
// (already open; read closes it); following, it moves on to the new log
// when Append rotates the one it reads. An empty path reads first alone.
func (l *Log) read(ctx context.Context, path string, first *os.File, opts ReadOptions, fn func(Event) error) error {
	poll := opts.PollInterval
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	f := first
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var r *bufio.Reader
	if f != nil {
		skipOld(f, opts.Since)
		r = bufio.NewReader(f)
	}
	var partial []byte
	rotated := false
	drain := func() error {
		for r != nil {
			chunk, err := r.ReadBytes('\n')
			if len(chunk) > 0 && chunk[len(chunk)-1] == '\n' {
				line := append(partial, chunk...)
				partial = nil
				var ev Event
				if json.Unmarshal(line, &ev) == nil {
					if ev.Attributes == nil {
						ev.Attributes = map[string]string{}
					}
					t := time.Unix(0, ev.TimeNano)
					if !opts.Until.IsZero() && t.After(opts.Until) {
						return errUntil
					}
					if opts.Since.IsZero() || !t.Before(opts.Since) {
						if err := fn(ev); err != nil {
							return err
						}
					}
				}
			} else {
				partial = append(partial, chunk...)
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if f == nil && path != "" {
			var err error
			f, err = os.Open(path)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if f != nil {
				if !rotated {
					skipOld(f, opts.Since)
				}
				r = bufio.NewReader(f)
			}
		}
		if err := drain(); err != nil {
			if err == errUntil {
				return nil
			}
			return err
		}
		if !opts.Follow || (!opts.Until.IsZero() && time.Now().After(opts.Until)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		// Rotated: the file read is now events.jsonl.1, which no append
		// touches any more (the rename happens under the append lock).
		// Read what it got since, then go on with the new log.
		if f != nil && path != "" && !sameFile(f, path) {
			if err := drain(); err != nil {
				if err == errUntil {
					return nil
				}
				return err
			}
			f.Close()
			f, r, partial, rotated = nil, nil, nil, true
		}
	}
}

// errUntil ends a read at the first event after ReadOptions.Until.
var errUntil = errors.New("past until")

// sameOpenFile reports whether a and b are the same file.
func sameOpenFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// sameFile reports whether f is still the file at path.
func sameFile(f *os.File, path string) bool {
	cur, err := os.Stat(path)
	if err != nil {
		return true // no new file yet: keep reading f
	}
	st, err := f.Stat()
	return err != nil || os.SameFile(st, cur)
}

// skipOld moves f to its end when every complete line in it was written
// before since: an event's time is taken before its line is written, so
// none of them can be at or after since. A second of margin covers the
// coarse clock file times are taken from. A file that does not end with a
// newline (a line being written) is read from the start instead.
func skipOld(f *os.File, since time.Time) {
	if since.IsZero() {
		return
	}
	st, err := f.Stat()
	if err != nil || st.Size() == 0 || !st.ModTime().Before(since.Add(-time.Second)) {
		return
	}
	last := make([]byte, 1)
	if n, err := f.ReadAt(last, st.Size()-1); n != 1 || err != nil || last[0] != '\n' {
		return
	}
	f.Seek(st.Size(), io.SeekStart)
}
