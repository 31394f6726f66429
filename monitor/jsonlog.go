package monitor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
)

// A container log is written in Docker's json-file format: one JSON object
// per line, keys in this order,
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-30T13:17:22.123456789Z"}
//
// "log" is a piece of the container's output: a whole line with its "\n",
// or a piece of a line without one (a last line without newline, or output
// the program wrote in several goes); "stream" is "stdout" or "stderr";
// "time" is when the piece was written, UTC, in time.RFC3339Nano. Strings
// are escaped byte for byte as Docker's jsonlog escapes them: as
// encoding/json with HTML escaping (<, >, & as \u003c, \u003e, \u0026,
// U+2028/U+2029 escaped, invalid UTF-8 as \ufffd), except that control
// characters other than \n and \r are written as \u00XX (a tab is \u0009).
//
// Rotation follows Docker's json-file driver (--log-opt max-size, max-file),
// see LogRotation. ReadLog also reads the CRI "k8s-file" format that conmon
// writes (see logfile.go).

// LogRotation bounds a log file as Docker's json-file driver does. The zero
// value never rotates.
type LogRotation struct {
	// MaxSize is the size in bytes at which the file is rotated: before an
	// entry is written, if the file holds MaxSize bytes or more, it is
	// rotated. 0 for unbounded.
	MaxSize int64
	// MaxFiles is how many files the log keeps, the live one included
	// (0 counts as 1). With 1 PATH is removed; with N ≥ 2 PATH.(N-1) is
	// removed, PATH.i renamed to PATH.(i+1) for i = N-2 … 1 and PATH
	// renamed to PATH.1. Then a new PATH is started (never truncated in
	// place: a reader following the old file finishes it first).
	MaxFiles int
}

// LogWriter appends a container's output to a log in Docker's json-file
// format (see above). Safe for concurrent use by its streams; each Write of
// a stream is written with one write(2) per file it lands in.
type LogWriter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
	// carry holds, per stream, the start of a UTF-8 sequence that a Write
	// ended in the middle of; it is written with the stream's next Write.
	carry map[string][]byte

	// Set by OpenLogFile only.
	f    *os.File
	path string
	rot  LogRotation
	size int64 // bytes in f, as written through this writer
}

// NewLogWriter writes entries to w, without rotation. Close does not close w.
func NewLogWriter(w io.Writer) *LogWriter {
	return &LogWriter{w: w, now: time.Now}
}

// OpenLogFile opens (O_APPEND|O_CREATE, mode 0640, as Docker's) the log file at path and
// returns a writer that rotates it by rot. The file's present size counts
// toward rot.MaxSize; afterwards the writer counts what it writes (it
// assumes it is the file's only writer). A file whose last record was torn
// (a write cut short, by a full disk or a crash, leaves it without its
// final newline) first gets a newline, so that the torn record stays one
// malformed line, which ReadLog skips, rather than swallowing the next
// entry. A negative MaxSize or MaxFiles is errdefs.ErrInvalidArgument.
func OpenLogFile(path string, rot LogRotation) (*LogWriter, error) {
	if rot.MaxSize < 0 || rot.MaxFiles < 0 {
		return nil, fmt.Errorf("log rotation max-size %d, max-file %d: %w", rot.MaxSize, rot.MaxFiles, errdefs.ErrInvalidArgument)
	}
	rot.MaxFiles = max(rot.MaxFiles, 1)
	l := &LogWriter{now: time.Now, path: path, rot: rot}
	if err := l.openFile(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *LogWriter) openFile() error {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	size, err := endRecord(f)
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.w, l.size = f, f, size
	return nil
}

// endRecord writes a newline at the end of f when it is not empty and
// does not end in one; it returns f's size after.
func endRecord(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return 0, fmt.Errorf("reading container log's end: %w", err)
	}
	if last[0] == '\n' {
		return st.Size(), nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return 0, fmt.Errorf("ending container log's torn record: %w", err)
	}
	return st.Size() + 1, nil
}

// Close writes any held-back partial UTF-8 sequence and closes the file
// OpenLogFile opened. Closing twice returns nil.
func (l *LogWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for _, name := range slices.Sorted(maps.Keys(l.carry)) {
		err = errors.Join(err, l.writeLocked(name, nil, true))
	}
	if l.f != nil {
		err = errors.Join(err, l.f.Close())
		l.f, l.w = nil, io.Discard
	}
	return err
}

// Stream returns the writer for one stream ("stdout" or "stderr"). Each
// complete line of a Write becomes one entry ending in "\n"; a trailing
// piece without newline becomes an entry of its own (ReadLog joins it with
// what follows). A UTF-8 sequence cut at the end of a Write is held back
// and written with the stream's next Write (or by Close).
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
	if err := s.l.writeLocked(s.name, p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeLocked writes p (after the stream's held-back bytes) as entries;
// with final it holds nothing back.
func (l *LogWriter) writeLocked(stream string, p []byte, final bool) error {
	if c := l.carry[stream]; len(c) > 0 {
		delete(l.carry, stream)
		p = append(c, p...)
	}
	if !final {
		if n := cutRuneTail(p); n > 0 {
			if l.carry == nil {
				l.carry = map[string][]byte{}
			}
			l.carry[stream] = append([]byte(nil), p[len(p)-n:]...)
			p = p[:len(p)-n]
		}
	}
	if len(p) == 0 {
		return nil
	}
	ts := l.now().UTC()
	l.buf = l.buf[:0]
	for rest := p; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if l.rot.MaxSize > 0 && l.size+int64(len(l.buf)) >= l.rot.MaxSize {
			if err := l.flush(); err != nil {
				return err
			}
			if err := l.rotate(); err != nil {
				return err
			}
		}
		l.buf = appendJSONLogEntry(l.buf, line, stream, ts)
	}
	return l.flush()
}

// cutRuneTail returns how many bytes at the end of p are the start of a
// UTF-8 sequence that is valid so far but incomplete.
func cutRuneTail(p []byte) int {
	for n := 1; n <= utf8.UTFMax-1 && n <= len(p); n++ {
		b := p[len(p)-n]
		if b < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(b) {
			if utf8.FullRune(p[len(p)-n:]) {
				return 0
			}
			return n
		}
	}
	return 0
}

func (l *LogWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	n, err := l.w.Write(l.buf)
	l.size += int64(n)
	l.buf = l.buf[:0]
	if err != nil {
		return fmt.Errorf("writing container log: %w", err)
	}
	return nil
}

// rotate applies l.rot to the full file. On failure the writer keeps
// writing to the file it has open.
func (l *LogWriter) rotate() error {
	if l.f == nil {
		return nil
	}
	if n := l.rot.MaxFiles; n <= 1 {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotating container log: %w", err)
		}
	} else {
		if err := os.Remove(rotatedName(l.path, n-1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotating container log: %w", err)
		}
		for i := n - 2; i >= 1; i-- {
			if err := os.Rename(rotatedName(l.path, i), rotatedName(l.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotating container log: %w", err)
			}
		}
		if err := os.Rename(l.path, rotatedName(l.path, 1)); err != nil {
			return fmt.Errorf("rotating container log: %w", err)
		}
	}
	old := l.f
	if err := l.openFile(); err != nil {
		return fmt.Errorf("rotating container log: %w", err)
	}
	old.Close()
	return nil
}

func rotatedName(path string, n int) string {
	return path + "." + strconv.Itoa(n)
}

// rotatedLogs lists the rotated files of the log at path (PATH.N, N ≥ 1,
// decimal digits only), oldest (highest N) first.
func rotatedLogs(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type numbered struct {
		n    int
		name string
	}
	var found []numbered
	for _, e := range ents {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || suffix == "" || strings.TrimLeft(suffix, "0123456789") != "" {
			continue
		}
		if n, err := strconv.Atoi(suffix); err == nil && n >= 1 {
			found = append(found, numbered{n, filepath.Join(dir, e.Name())})
		}
	}
	slices.SortFunc(found, func(a, b numbered) int { return b.n - a.n })
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.name
	}
	return names, nil
}

// appendJSONLogEntry appends one json-file line (with its "\n").
func appendJSONLogEntry(b, log []byte, stream string, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, log)
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, []byte(stream))
	b = append(b, `,"time":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

// appendJSONString appends s as a JSON string, escaped as Docker's jsonlog
// does (see the package's format comment).
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
