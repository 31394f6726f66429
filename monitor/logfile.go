package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
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
	// Until keeps entries at or before it (zero: no bound): an entry
	// stamped exactly Until is kept, as Docker's json-file reader does.
	Until time.Time
	// Follow keeps reading as the log grows, across rotation and
	// truncation, until Done returns true (or ctx ends; Done nil: only ctx).
	Follow bool
	Done   func() bool
}

// followPoll is how often a followed log is checked for growth.
const followPoll = 100 * time.Millisecond

// ReadLog reads the log at path and calls fn for each line, oldest first:
// the rotated files PATH.N … PATH.1 (whatever numbers exist), then PATH.
// Entries come in file order. Consecutive pieces of a line of one stream
// are joined (json-file entries whose "log" lacks the trailing "\n",
// k8s-file P records); the joined line carries its first piece's time. A
// record of the other stream ends the join: the pieces so far come first
// as an entry of their own (without newline, with their own time), and the
// rest of the line, if any, starts a new entry. A last line without
// newline comes without one. Tail counts these entries. A missing log
// reads as empty.
//
// With Tail ≥ 0 the files are not read from their start: the newest ones
// are scanned backward from their end for a place holding enough records,
// and read forward from there (further back when pieces or Since/Until
// leave fewer than Tail entries), with the same result as a whole read.
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
// the read offset (truncated in place, as conmon does at its max-size),
// reading restarts at its start. When Done returns true, or once Until has
// passed, what is left is read and ReadLog returns. Errors are those of fn, ctx.Err(), or I/O errors.
func ReadLog(ctx context.Context, path string, opts LogOptions, fn func(LogEntry) error) error {
	lr := &logReader{opts: opts, fn: fn}
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
	olds = dropLive(olds, f)
	if opts.Tail == 0 && !opts.Follow {
		closeAll(olds)
		return nil
	}
	lf, err := lr.readStart(olds, f)
	closeAll(olds)
	if err != nil {
		return err
	}
	if lf == nil {
		return lr.finish()
	}
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
		// Following ends with the container, or once Until has passed:
		// whatever is written from then on is stamped after it (Docker's
		// follow ends there too).
		done := (opts.Done != nil && opts.Done()) || (!opts.Until.IsZero() && time.Now().After(opts.Until))
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
	pending *LogEntry // pieces of a line so far
	// midway: reading started after the log's start, so the line of the
	// first record read may have begun before it; that line is dropped
	// (pendingDrop while it is pending). Cleared once in step with a
	// whole read.
	midway      bool
	pendingDrop bool
	// buffering keeps the last Tail entries in tail until release; count
	// is how many were kept since reset.
	buffering bool
	tail      []LogEntry
	count     int
}

// reset readies lr for a read from the log's start, or from a record
// further on (midway).
func (lr *logReader) reset(midway bool) {
	lr.pending, lr.pendingDrop, lr.midway = nil, false, midway
	lr.buffering, lr.tail, lr.count = lr.opts.Tail >= 0, nil, 0
}

func (lr *logReader) line(line []byte) error {
	e, full, ok := parseLine(line)
	if !ok {
		return nil
	}
	drop := lr.midway
	lr.midway = false
	if p := lr.pending; p != nil && p.Stream != e.Stream {
		if err := lr.flushPending(); err != nil {
			return err
		}
	}
	if p := lr.pending; p != nil {
		p.Data = append(p.Data, e.Data...)
		e.Data, e.Time = p.Data, p.Time
		drop = lr.pendingDrop
	}
	if !full {
		cp := e
		lr.pending, lr.pendingDrop = &cp, drop
		return nil
	}
	lr.pending, lr.pendingDrop = nil, false
	if drop {
		return nil
	}
	return lr.emit(e)
}

// keep reports whether e passes Since and Until.
func (lr *logReader) keep(e LogEntry) bool {
	return (lr.opts.Since.IsZero() || !e.Time.Before(lr.opts.Since)) &&
		(lr.opts.Until.IsZero() || !e.Time.After(lr.opts.Until))
}

func (lr *logReader) emit(e LogEntry) error {
	if !lr.keep(e) {
		return nil
	}
	if !lr.buffering {
		return lr.fn(e)
	}
	lr.count++
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

// flushPending passes on the pending piece of a line as an entry. A whole
// read would be without a pending piece here too: lr is in step with it.
func (lr *logReader) flushPending() error {
	p, drop := lr.pending, lr.pendingDrop
	lr.pending, lr.pendingDrop, lr.midway = nil, false, false
	if p == nil || drop {
		return nil
	}
	return lr.emit(*p)
}

// enough reports whether the entries kept since reset, and the pending
// piece when it will be one, make Tail.
func (lr *logReader) enough() bool {
	n := lr.count
	if p := lr.pending; p != nil && !lr.pendingDrop && lr.keep(*p) {
		n++
	}
	return n >= lr.opts.Tail
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

// dropLive returns olds without the one that is live (nil: none; rotated
// since it was opened), which it closes.
func dropLive(olds []*os.File, live *os.File) []*os.File {
	if live == nil {
		return olds
	}
	cur, err := live.Stat()
	if err != nil {
		return olds
	}
	return slices.DeleteFunc(olds, func(f *os.File) bool {
		st, err := f.Stat()
		if err == nil && os.SameFile(st, cur) {
			f.Close()
			return true
		}
		return false
	})
}

// readFiles reads the whole of each rotated file, but the one that is
// live, and closes them.
func (lr *logReader) readFiles(olds []*os.File, live *os.File) error {
	olds = dropLive(olds, live)
	defer closeAll(olds)
	for _, f := range olds {
		if err := newLogFile(f).readLines(lr); err != nil {
			return err
		}
	}
	return nil
}

// readStart does the first read of the log: the rotated files olds and
// the live file (nil: none) to its present end, all of them or, with
// Tail ≥ 0, from a place late enough to hold the last Tail entries. It
// returns the live file's reader (nil without one). It leaves olds open.
func (lr *logReader) readStart(olds []*os.File, live *os.File) (*logFile, error) {
	files := olds[:len(olds):len(olds)]
	if live != nil {
		files = append(files, live)
	}
	// Each entry takes a record or more; one more for a line begun
	// before the start.
	need := min(lr.opts.Tail, 1<<40) + 1
	for {
		var start logPos
		if lr.opts.Tail >= 0 {
			var err error
			if start, err = findStart(files, need); err != nil {
				return nil, err
			}
		}
		lr.reset(start != logPos{})
		var lf *logFile
		for i := start.file; i < len(files); i++ {
			off := int64(0)
			if i == start.file {
				off = start.off
			}
			if _, err := files[i].Seek(off, io.SeekStart); err != nil {
				return nil, err
			}
			lf = newLogFile(files[i])
			lf.off = off
			if err := lf.readLines(lr); err != nil {
				return nil, err
			}
		}
		if start == (logPos{}) || lr.enough() {
			if live == nil {
				lf = nil
			}
			return lf, nil
		}
		need *= 2
	}
}

// logPos is a place in a log's files: byte off of the file'th, oldest
// first.
type logPos struct {
	file int
	off  int64
}

// findStart scans files backward from their present ends for the start
// of the need'th last complete record (a torn record at a file's end does
// not count); the zero logPos when there are fewer, or when a file shrank
// under the scan.
func findStart(files []*os.File, need int) (logPos, error) {
	buf := make([]byte, 64<<10)
	found := 0
	for i := len(files) - 1; i >= 0; i-- {
		st, err := files[i].Stat()
		if err != nil {
			return logPos{}, err
		}
		// ends: a record ends after the bytes scanned so far, in this file.
		ends := false
		for end := st.Size(); end > 0; {
			b := buf[:min(end, int64(len(buf)))]
			end -= int64(len(b))
			if _, err := files[i].ReadAt(b, end); errors.Is(err, io.EOF) {
				return logPos{}, nil
			} else if err != nil {
				return logPos{}, err
			}
			for j := len(b); ; {
				if j = bytes.LastIndexByte(b[:j], '\n'); j < 0 {
					break
				}
				if ends {
					if found++; found == need {
						return logPos{i, end + int64(j) + 1}, nil
					}
				}
				ends = true
			}
		}
		if ends {
			if found++; found == need {
				return logPos{i, 0}, nil
			}
		}
	}
	return logPos{}, nil
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
