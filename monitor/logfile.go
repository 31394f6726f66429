package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"time"
)

// ReadLog reads both log formats a container may have, deciding per line:
// Docker's json-file (a line starting with "{", see jsonlog.go), which
// Berth's monitor and LogWriter write, and the CRI "k8s-file" format that
// conmon writes, one record per line:
//
//	2026-11-30T05:09:41.123456789Z stdout F a whole line
//	2026-11-30T05:09:41.123456789Z stderr P part of a line, more follows
//
// F closes a line (the newline is implied), P carries a piece of a longer
// line or a last line without newline. A file may hold both formats when a
// container ran under different monitors.

// LogEntry is one line of output read back from a log.
type LogEntry struct {
	// Time is when the line's first piece was written.
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Data   []byte // with its trailing newline when the line was complete
}

// LogOptions select what ReadLog returns, as `docker logs` flags do.
type LogOptions struct {
	// Tail is the number of last lines (joined, counted across the
	// rotated files) to return; < 0 for all. With Follow, the last Tail
	// lines written so far come first, then everything written later.
	Tail  int
	Since time.Time // entries at or after (zero: no bound)
	Until time.Time // entries before (zero: no bound)
	// Follow keeps reading as the log grows, across rotation and
	// truncation, until Done returns true (or ctx ends; Done nil: only ctx).
	Follow bool
	Done   func() bool
}

// followPoll is how often a followed log is checked for growth.
const followPoll = 100 * time.Millisecond

// ReadLog reads the log at path and calls fn for each line, oldest first:
// the rotated files PATH.N … PATH.1 (whatever numbers exist), then PATH.
// Pieces of a line are joined per stream (json-file entries whose "log"
// lacks the trailing "\n", k8s-file P records); the joined line carries its
// first piece's time, and a last line without newline comes without one.
// A missing log reads as empty.
//
// A line that is neither a valid json-file entry nor a k8s-file record (a
// record torn by a crash or by a truncation while following) is skipped,
// where Docker would end the read with an error: one damaged record does
// not hide the rest of the log. A record at the end of a file without its
// newline is still being written and is not read (when following, it is
// read once its newline comes).
//
// With Follow, reading goes on at EOF: once caught up, a pending piece of
// a line is passed on at once (the rest comes as its own entry later), as
// `docker logs -f` does. When the file at PATH is replaced by a rotation
// (another inode), the old file is read to its end, then any files rotated
// in between, then the new PATH from its start; when PATH shrinks below
// the read offset (truncated, as rotation with one file does), reading
// restarts at its start. When Done returns true, what is left is read and
// ReadLog returns. Errors are those of fn, ctx.Err(), or I/O errors.
func ReadLog(ctx context.Context, path string, opts LogOptions, fn func(LogEntry) error) error {
	lr := &logReader{opts: opts, fn: fn, pending: map[string]*LogEntry{}, buffering: opts.Tail >= 0}
	f, err := openLive(ctx, path, opts)
	if err != nil {
		return err
	}
	olds, f, err := openLog(path, f)
	if f != nil {
		defer func() { f.Close() }()
	}
	if err != nil {
		return err
	}
	if err := lr.readFiles(olds, f); err != nil {
		return err
	}
	if f == nil {
		return lr.finish()
	}
	lf := newLogFile(f)
	for {
		if err := lf.readLines(lr); err != nil {
			return err
		}
		if !opts.Follow {
			break
		}
		if lf.partial == nil {
			// Caught up: a line still being written shows now, as in
			// Docker's json-file, rather than when its newline comes
			// (which may be never).
			if err := lr.flushPending(); err != nil {
				return err
			}
			if err := lr.release(); err != nil {
				return err
			}
		}
		done := opts.Done != nil && opts.Done()
		moved, err := lf.follow(path, lr)
		if err != nil {
			return err
		}
		f = lf.f
		if moved {
			continue
		}
		if done {
			// Drain what was written before the container ended.
			if more, _ := lf.r.Peek(1); len(more) > 0 {
				continue
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(followPoll):
		}
	}
	return lr.finish()
}

// openLive opens the log at path; nil when it does not exist. Following a
// container whose monitor has not made its log yet waits for it until Done.
func openLive(ctx context.Context, path string, opts LogOptions) (*os.File, error) {
	f, err := os.Open(path)
	for opts.Follow && opts.Done != nil && errors.Is(err, os.ErrNotExist) && !opts.Done() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		f, err = os.Open(path)
	}
	if opts.Follow && errors.Is(err, os.ErrNotExist) {
		f, err = os.Open(path) // made just before the container ended
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// logReader turns record lines into joined, filtered entries.
type logReader struct {
	opts    LogOptions
	fn      func(LogEntry) error
	pending map[string]*LogEntry // pieces of a line, per stream
	// buffering keeps the last Tail entries in tail until release.
	buffering bool
	tail      []LogEntry
}

func (lr *logReader) line(line []byte) error {
	e, full, ok := parseLine(line)
	if !ok {
		return nil
	}
	if p := lr.pending[e.Stream]; p != nil {
		p.Data = append(p.Data, e.Data...)
		e.Data, e.Time = p.Data, p.Time
	}
	if !full {
		cp := e
		lr.pending[e.Stream] = &cp
		return nil
	}
	delete(lr.pending, e.Stream)
	return lr.emit(e)
}

func (lr *logReader) emit(e LogEntry) error {
	if !lr.opts.Since.IsZero() && e.Time.Before(lr.opts.Since) {
		return nil
	}
	if !lr.opts.Until.IsZero() && !e.Time.Before(lr.opts.Until) {
		return nil
	}
	if !lr.buffering {
		return lr.fn(e)
	}
	lr.tail = append(lr.tail, e)
	if n := lr.opts.Tail; len(lr.tail) > 2*n+64 {
		lr.tail = append(lr.tail[:0], lr.tail[len(lr.tail)-n:]...)
	}
	return nil
}

// release passes on the last Tail buffered entries; from then on entries
// go straight to fn.
func (lr *logReader) release() error {
	if !lr.buffering {
		return nil
	}
	lr.buffering = false
	tail := lr.tail[max(0, len(lr.tail)-lr.opts.Tail):]
	lr.tail = nil
	for _, e := range tail {
		if err := lr.fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (lr *logReader) flushPending() error {
	// Oldest first, so that the order between streams is kept.
	for len(lr.pending) > 0 {
		var first *LogEntry
		for _, p := range lr.pending {
			if first == nil || p.Time.Before(first.Time) || (p.Time.Equal(first.Time) && p.Stream < first.Stream) {
				first = p
			}
		}
		delete(lr.pending, first.Stream)
		if err := lr.emit(*first); err != nil {
			return err
		}
	}
	return nil
}

func (lr *logReader) finish() error {
	if err := lr.flushPending(); err != nil {
		return err
	}
	return lr.release()
}

// openLog opens the log's files as they are at one moment: the rotated
// files oldest first and the live one (nil when PATH does not exist; live,
// when given, is tried first). The moment is one with no rotation during
// the listing (PATH was the same file before and after it), so that each
// name held the file it names; after a few tries at a log rotating faster
// than that, the last listing is taken.
func openLog(path string, live *os.File) (olds []*os.File, cur *os.File, err error) {
	for try := 0; ; try++ {
		if live == nil {
			if live, err = os.Open(path); errors.Is(err, os.ErrNotExist) {
				live = nil
			} else if err != nil {
				return nil, nil, err
			}
		}
		names, err := rotatedLogs(path)
		if err != nil {
			return nil, live, err
		}
		olds = olds[:0]
		for _, name := range names {
			f, err := os.Open(name)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				closeAll(olds)
				return nil, live, err
			}
			olds = append(olds, f)
		}
		if try == 9 || stillLive(path, live) {
			return olds, live, nil
		}
		closeAll(olds)
		if live != nil {
			live.Close()
			live = nil
		}
	}
}

// stillLive reports whether live (nil: none) is the file at path.
func stillLive(path string, live *os.File) bool {
	st, err := os.Stat(path)
	if live == nil {
		return errors.Is(err, os.ErrNotExist)
	}
	cur, ferr := live.Stat()
	return err == nil && ferr == nil && os.SameFile(st, cur)
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// readFiles reads the whole of each rotated file, but the one that is
// live (nil: none; rotated since it was opened), and closes them.
func (lr *logReader) readFiles(olds []*os.File, live *os.File) error {
	defer closeAll(olds)
	var skip os.FileInfo
	if live != nil {
		var err error
		if skip, err = live.Stat(); err != nil {
			return err
		}
	}
	for _, f := range olds {
		if skip != nil {
			if st, err := f.Stat(); err == nil && os.SameFile(st, skip) {
				continue
			}
		}
		if err := newLogFile(f).readLines(lr); err != nil {
			return err
		}
	}
	return nil
}

// logFile reads record lines from one open file.
type logFile struct {
	f       *os.File
	r       *bufio.Reader
	off     int64  // bytes of f consumed
	partial []byte // a record whose newline has not come yet
}

func newLogFile(f *os.File) *logFile {
	return &logFile{f: f, r: bufio.NewReaderSize(f, 64<<10)}
}

// readLines passes every complete line up to EOF to lr.
func (lf *logFile) readLines(lr *logReader) error {
	for {
		chunk, err := lf.r.ReadBytes('\n')
		lf.off += int64(len(chunk))
		if len(chunk) > 0 && chunk[len(chunk)-1] != '\n' {
			lf.partial = append(lf.partial, chunk...)
		} else if len(chunk) > 0 {
			line := chunk[:len(chunk)-1]
			if lf.partial != nil {
				line = append(lf.partial, line...)
				lf.partial = nil
			}
			if err := lr.line(line); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// follow notices a rotation or truncation of the log at path after lf has
// read to EOF, and moves lf to where reading goes on; moved reports that
// there may be more to read at once.
func (lf *logFile) follow(path string, lr *logReader) (moved bool, err error) {
	cur, err := lf.f.Stat()
	if err != nil {
		return false, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // removed, or renamed by a rotation not yet done
	}
	if err != nil {
		return false, err
	}
	if os.SameFile(st, cur) {
		if cur.Size() >= lf.off {
			return false, nil
		}
		if _, err := lf.f.Seek(0, io.SeekStart); err != nil {
			return false, err
		}
		lf.r.Reset(lf.f)
		lf.off, lf.partial = 0, nil
		return true, nil
	}
	olds, nf, err := openLog(path, nil)
	if err != nil || nf == nil {
		closeAll(olds)
		if nf != nil {
			nf.Close()
		}
		return false, err
	}
	// The old file first: written to until the rotation.
	if err := lf.readLines(lr); err != nil {
		closeAll(olds)
		nf.Close()
		return false, err
	}
	// Then the files rotated after it (when PATH rotated more than once
	// since the last look): the old file is now some PATH.k, and PATH.(k-1)
	// … PATH.1 follow it. When it is gone (past max-file), all of them do.
	after := 0
	for i, f := range olds {
		if fi, err := f.Stat(); err == nil && os.SameFile(fi, cur) {
			after = i + 1
		}
	}
	closeAll(olds[:after])
	if err := lr.readFiles(olds[after:], nf); err != nil {
		nf.Close()
		return false, err
	}
	lf.f.Close()
	*lf = *newLogFile(nf)
	return true, nil
}

// parseLine parses one record line (without its newline) of either
// format; full reports that the record ends a line.
func parseLine(line []byte) (e LogEntry, full, ok bool) {
	if len(line) > 0 && line[0] == '{' {
		return parseJSONLine(line)
	}
	return parseCRILine(line)
}

// jsonLogLine is the decoded shape of a json-file entry.
type jsonLogLine struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

func parseJSONLine(line []byte) (LogEntry, bool, bool) {
	var j jsonLogLine
	if err := json.Unmarshal(line, &j); err != nil || j.Stream == "" {
		return LogEntry{}, false, false
	}
	return LogEntry{Time: j.Time, Stream: j.Stream, Data: []byte(j.Log)}, strings.HasSuffix(j.Log, "\n"), true
}

func parseCRILine(line []byte) (LogEntry, bool, bool) {
	f := bytes.SplitN(line, []byte{' '}, 4)
	if len(f) < 3 {
		return LogEntry{}, false, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(f[0]))
	if err != nil {
		return LogEntry{}, false, false
	}
	e := LogEntry{Time: t, Stream: string(f[1])}
	if len(f) == 4 {
		e.Data = append(e.Data, f[3]...)
	}
	// The tag is P or F, possibly followed by more tags (":..."); F ends
	// the line, whose newline is implied.
	full := bytes.HasPrefix(f[2], []byte("F"))
	if full {
		e.Data = append(e.Data, '\n')
	}
	return e, full, true
}
