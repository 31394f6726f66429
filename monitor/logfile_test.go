package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
)

// dockerEscapes rewrites the short escapes \b \f \t of encoding/json's
// output as the \u00XX forms Docker's jsonlog writes; the rest is kept.
func dockerEscapes(marshaled []byte) []byte {
	var out []byte
	for i := 0; i < len(marshaled); i++ {
		c := marshaled[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch marshaled[i] {
		case 'b':
			out = append(out, `\u0008`...)
		case 'f':
			out = append(out, `\u000c`...)
		case 't':
			out = append(out, `\u0009`...)
		default:
			out = append(out, '\\', marshaled[i])
		}
	}
	return out
}

func checkJSONString(t *testing.T, s []byte) {
	t.Helper()
	got := appendJSONString(nil, s)
	want, err := json.Marshal(string(s))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dockerEscapes(want)) {
		t.Fatalf("escaping %q:\n got %s\nwant %s", s, got, dockerEscapes(want))
	}
	var back string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s does not decode: %v", got, err)
	}
	if utf8.Valid(s) && back != string(s) {
		t.Fatalf("%q decodes as %q", s, back)
	}
}

func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", "a\nb\r\n", "\t\b\f\x00\x1f\x7f", `"quoted" \back\slash\ `, "<b>&amp;</b>",
		"\u2028\u2029", "é漢字🙂", "\xff\xfe", "a\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	} {
		checkJSONString(t, []byte(s))
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	pieces := []string{"a", "\n", "\r", "\t", "<", ">", "&", `"`, `\`, "\u2028", "\u2029", "é", "🙂", "\xff", "\xc3", "\xe2\x82", "\x00", "\x1b[31m"}
	for range 5000 {
		var b []byte
		for range rng.IntN(20) {
			if rng.IntN(3) == 0 {
				b = append(b, byte(rng.IntN(256)))
			} else {
				b = append(b, pieces[rng.IntN(len(pieces))]...)
			}
		}
		checkJSONString(t, b)
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"a\n", "<>&", "\u2028", "\xff", "\t\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) { checkJSONString(t, s) })
}

func TestJSONLogLineMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 30, 13, 17, 22, 123456789, time.FixedZone("x", 3600))
	var buf bytes.Buffer
	l := NewLogWriter(&buf)
	l.now = func() time.Time { return ts }
	fmt.Fprint(l.Stream("stdout"), "one <&>\ntwo")
	want := ""
	for _, log := range []string{"one <&>\n", "two"} {
		b, err := json.Marshal(struct {
			Log    string    `json:"log"`
			Stream string    `json:"stream"`
			Time   time.Time `json:"time"`
		}{log, "stdout", ts.UTC()})
		if err != nil {
			t.Fatal(err)
		}
		want += string(b) + "\n"
	}
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	if !strings.Contains(want, `"time":"2026-11-30T12:17:22.123456789Z"`) {
		t.Fatalf("time not UTC RFC3339Nano: %s", want)
	}
}

// readAll returns what ReadLog gives, per stream concatenated, and the entries.
func readAll(t *testing.T, path string, opts LogOptions) (map[string]string, []LogEntry) {
	t.Helper()
	out := map[string]string{}
	var entries []LogEntry
	err := ReadLog(context.Background(), path, opts, func(e LogEntry) error {
		out[e.Stream] += string(e.Data)
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, entries
}

func TestLogRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cases := map[string][]string{
		"last line without newline": {"a\nb\n", "c"},
		"pieces":                    {"ab", "c\nd", "e\n"},
		"CR":                        {"progress 10%\rprogress 20%\r\n", "\r\n"},
		"utf8 and html":             {"é漢字🙂 <b>&</b> \u2028\u2029 \t\x00\x1b[0m \"q\" \\\n"},
		"utf8 cut between writes":   {"ab\xe6\xbc", "", "\xa2c\xf0\x9f", "", "\x99\x82\n"},
		"1 MiB line in one write":   {string(big) + "\n"},
		"1 MiB line in pieces":      chunks(append(append([]byte(nil), big...), '\n'), 32<<10),
		"empty writes":              {"", "x\n", ""},
	}
	for name, writes := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			l, err := OpenLogFile(path, LogRotation{})
			if err != nil {
				t.Fatal(err)
			}
			var want [2]string
			for i, w := range writes {
				s := []string{"stdout", "stderr"}[i%2]
				if n, err := l.Stream(s).Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("write: %d, %v", n, err)
				}
				want[i%2] += w
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ := readAll(t, path, LogOptions{Tail: -1})
			if got["stdout"] != want[0] || got["stderr"] != want[1] {
				t.Fatalf("read back\nstdout %.200q\nstderr %.200q\nwant\nstdout %.200q\nstderr %.200q", got["stdout"], got["stderr"], want[0], want[1])
			}
			raw, _ := os.ReadFile(path)
			for _, line := range strings.SplitAfter(string(raw), "\n") {
				if line != "" && (!strings.HasPrefix(line, `{"log":`) || !strings.HasSuffix(line, "\"}\n")) {
					t.Fatalf("not a json-file line: %.200q", line)
				}
			}
		})
	}
}

func chunks(b []byte, n int) []string {
	var out []string
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, string(b[:k]), "") // alternate streams: "" writes nothing
		b = b[k:]
	}
	return out
}

func TestLogWriterEntries(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogWriter(&buf)
	fmt.Fprint(l.Stream("stdout"), "a\nb\nc")
	fmt.Fprint(l.Stream("stderr"), "\xffz\n")
	var logs []string
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var j jsonLogLine
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatal(err)
		}
		logs = append(logs, j.Stream+":"+j.Log)
	}
	want := []string{"stdout:a\n", "stdout:b\n", "stdout:c", "stderr:\ufffdz\n"}
	if fmt.Sprint(logs) != fmt.Sprint(want) {
		t.Fatalf("entries %q, want %q", logs, want)
	}
}

// writeLines writes "line N\n" for N in [from, to) to stdout.
func writeLines(t *testing.T, l *LogWriter, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := fmt.Fprintf(l.Stream("stdout"), "line %d\n", i); err != nil {
			t.Error(err)
			return
		}
	}
}

func lineNumbers(t *testing.T, entries []LogEntry) []int {
	t.Helper()
	var ns []int
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(string(e.Data), "line %d\n", &n); err != nil {
			t.Fatalf("entry %q: %v", e.Data, err)
		}
		ns = append(ns, n)
	}
	return ns
}

func TestLogRotation(t *testing.T) {
	const maxSize = 2000
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{MaxSize: maxSize, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	entry := int64(len(appendJSONLogEntry(nil, []byte("line 100\n"), "stdout", time.Now().UTC())))
	// A multi-line write is rotated between its entries too.
	var multi strings.Builder
	for i := range 60 {
		fmt.Fprintf(&multi, "line %d\n", i)
	}
	fmt.Fprint(l.Stream("stdout"), multi.String())
	writeLines(t, l, 60, 200)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[ctr.log ctr.log.1 ctr.log.2]" {
		t.Fatalf("files %v, want ctr.log ctr.log.1 ctr.log.2", names)
	}
	for _, n := range []string{path + ".2", path + ".1"} {
		st, _ := os.Stat(n)
		if st.Size() < maxSize || st.Size() >= maxSize+entry {
			t.Errorf("%s: %d bytes, want [%d, %d)", n, st.Size(), maxSize, maxSize+entry)
		}
		if st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v", n, st.Mode())
		}
	}
	_, all := readAll(t, path, LogOptions{Tail: -1})
	ns := lineNumbers(t, all)
	if len(ns) < 2*maxSize/int(entry) || ns[len(ns)-1] != 199 || ns[0] == 0 {
		t.Fatalf("read %d lines: %v (the oldest file should be gone)", len(ns), ns)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			t.Fatalf("lines out of order at %d: %v", i, ns)
		}
	}
	// Tail counts across the files: more than the live file holds.
	if live, _ := os.Stat(path); live.Size() >= 40*entry {
		t.Fatalf("live file holds %d bytes, the tail would not cross files", live.Size())
	}
	_, tail := readAll(t, path, LogOptions{Tail: 40})
	if len(tail) != 40 || fmt.Sprint(lineNumbers(t, tail)) != fmt.Sprint(ns[len(ns)-40:]) {
		t.Fatalf("tail 40: %v", lineNumbers(t, tail))
	}
	if _, tail := readAll(t, path, LogOptions{Tail: 0}); len(tail) != 0 {
		t.Fatalf("tail 0 gave %d lines", len(tail))
	}

	// Reopening counts the file's present size.
	before, _ := os.ReadFile(path + ".1")
	l, err = OpenLogFile(path, LogRotation{MaxSize: maxSize, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l, 200, 200+maxSize/int(entry)+2)
	l.Close()
	if after, _ := os.ReadFile(path + ".2"); !bytes.Equal(after, before) {
		t.Fatalf("reopened writer did not rotate by the file's size")
	}
}

func TestLogRotationOneFile(t *testing.T) {
	const maxSize = 300
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{MaxSize: maxSize, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l, 0, 50)
	l.Close()
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("%d files, want the log alone", len(ents))
	}
	_, all := readAll(t, path, LogOptions{Tail: -1})
	ns := lineNumbers(t, all)
	if len(ns) == 0 || len(ns) > maxSize/20 || ns[len(ns)-1] != 49 || ns[0] != 50-len(ns) {
		t.Fatalf("after rotations read %v", ns)
	}
}

func TestOpenLogFileInvalid(t *testing.T) {
	for _, r := range []LogRotation{{MaxSize: -1}, {MaxFiles: -2}} {
		if _, err := OpenLogFile(filepath.Join(t.TempDir(), "l"), r); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%+v: %v, want invalid argument", r, err)
		}
	}
}

// TestRotatedLogs: the rotated files of a log are PATH.N with N a whole
// number ≥ 1, oldest (highest N) first; other names beside it are not.
func TestRotatedLogs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ctr.log")
	for _, n := range []string{"ctr.log", "ctr.log.1", "ctr.log.7", "ctr.log.x", "ctr.log.1.gz", "ctr.log.+1", "ctr.log.0", "other.log.1"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	names, err := rotatedLogs(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{path + ".7", path + ".1"}; !slices.Equal(names, want) {
		t.Fatalf("rotated files %v, want %v", names, want)
	}
	if names, err := rotatedLogs(filepath.Join(t.TempDir(), "gone", "ctr.log")); err != nil || len(names) != 0 {
		t.Fatalf("log in a missing directory: %v, %v", names, err)
	}
}

func TestReadLogMixedFormats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	var buf bytes.Buffer
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cri := func(d time.Duration, stream, tag, text string) {
		fmt.Fprintf(&buf, "%s %s %s %s\n", t0.Add(d).Format(time.RFC3339Nano), stream, tag, text)
	}
	l := NewLogWriter(&buf)
	js := func(d time.Duration, stream, text string) {
		l.now = func() time.Time { return t0.Add(d) }
		fmt.Fprint(l.Stream(stream), text)
	}
	cri(0, "stdout", "F", "conmon line")
	cri(time.Second, "stdout", "P", "conmon piece ")
	js(2*time.Second, "stdout", "json rest\n")
	js(3*time.Second, "stderr", "json piece ")
	buf.WriteString("{torn record\n")
	buf.WriteString("not a record\n")
	cri(4*time.Second, "stderr", "F", "conmon rest")
	js(5*time.Second, "stdout", "last")
	buf.WriteString(`{"log":"being written`) // no newline yet
	os.WriteFile(path, buf.Bytes(), 0o600)

	got, entries := readAll(t, path, LogOptions{Tail: -1})
	if got["stdout"] != "conmon line\nconmon piece json rest\nlast" || got["stderr"] != "json piece conmon rest\n" {
		t.Fatalf("read %q", got)
	}
	var times []string
	for _, e := range entries {
		times = append(times, e.Time.Sub(t0).String())
	}
	// Joined lines carry their first piece's time.
	if fmt.Sprint(times) != "[0s 1s 3s 5s]" {
		t.Fatalf("times %v", times)
	}
	_, since := readAll(t, path, LogOptions{Tail: -1, Since: t0.Add(2 * time.Second)})
	if len(since) != 2 || string(since[0].Data) != "json piece conmon rest\n" {
		t.Fatalf("since: %d entries", len(since))
	}
	// Until keeps an entry stamped exactly Until, as Docker does.
	_, until := readAll(t, path, LogOptions{Tail: -1, Until: t0.Add(3 * time.Second)})
	_, before := readAll(t, path, LogOptions{Tail: -1, Until: t0.Add(3*time.Second - 1)})
	if len(until) != 3 || string(until[2].Data) != "json piece conmon rest\n" || len(before) != 2 || string(before[1].Data) != "conmon piece json rest\n" {
		t.Fatalf("until: %d entries, until just before: %d", len(until), len(before))
	}
	_, tail := readAll(t, path, LogOptions{Tail: 1})
	if len(tail) != 1 || string(tail[0].Data) != "last" {
		t.Fatalf("tail 1: %v", tail)
	}
}

func TestReadLogMissing(t *testing.T) {
	got, _ := readAll(t, filepath.Join(t.TempDir(), "none"), LogOptions{Tail: -1})
	if len(got) != 0 {
		t.Fatalf("missing log read %v", got)
	}
}

// follow runs ReadLog with Follow until stop is set, sending line numbers.
func follow(t *testing.T, path string, tail int, stop *atomic.Bool) (<-chan int, <-chan error) {
	t.Helper()
	got := make(chan int, 100000)
	errc := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go func() {
		errc <- ReadLog(ctx, path, LogOptions{Follow: true, Tail: tail, Done: stop.Load}, func(e LogEntry) error {
			var n int
			if _, err := fmt.Sscanf(string(e.Data), "line %d\n", &n); err != nil {
				return fmt.Errorf("entry %q: %v", e.Data, err)
			}
			got <- n
			return nil
		})
		close(got)
	}()
	return got, errc
}

func TestReadLogFollowRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{MaxSize: 400, MaxFiles: 1000})
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l, 0, 20)
	var stop atomic.Bool
	got, errc := follow(t, path, 5, &stop)
	ns := make([]int, 0, 600)
	for len(ns) < 5 { // the tail as it was when the reader started
		ns = append(ns, <-got)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Several rotations per poll of the reader, and some between.
		for i := 20; i < 600; i += 10 {
			writeLines(t, l, i, i+10)
			time.Sleep(time.Duration(i%70) * time.Millisecond / 10)
		}
		l.Close()
		stop.Store(true)
	})
	wg.Wait()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for n := range got {
		ns = append(ns, n)
	}
	if len(ns) != 585 || ns[0] != 15 {
		t.Fatalf("followed %d lines %v, want 585 from line 15", len(ns), ns)
	}
	for i := range ns {
		if ns[i] != 15+i {
			t.Fatalf("line %d is %d", i, ns[i])
		}
	}
	if rot, _ := rotatedLogs(path); len(rot) < 20 {
		t.Fatalf("only %d rotations", len(rot))
	}
}

// TestReadLogFollowTruncation: a log truncated in place (as conmon does
// at its max-size) is followed from its new start.
func TestReadLogFollowTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := NewLogWriter(f)
	var stop atomic.Bool
	got, errc := follow(t, path, -1, &stop)
	expect := func(want int) {
		t.Helper()
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("got line %d, want %d", n, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("line %d not followed", want)
		}
	}
	size := func() int64 {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	n := 10 // two-digit numbers: entries of about one size
	for round := range 4 {
		// The round's first line goes to the full file truncated under
		// the reader (but the first round's), which must start over at
		// the file's new start.
		if round > 0 {
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
		}
		writeLines(t, l, n, n+1)
		expect(n)
		if s := size(); s > 100 {
			t.Fatalf("round %d: file %d bytes, not truncated", round, s)
		}
		first := n + 1
		for n++; size() < 1000; n++ { // fills the file
			writeLines(t, l, n, n+1)
		}
		for i := first; i < n; i++ {
			expect(i)
		}
	}
	l.Close()
	stop.Store(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n, ok := <-got; ok {
		t.Fatalf("extra line %d", n)
	}
}

func TestReadLogFollowPartialAndDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(l.Stream("stdout"), "prompt> ")
	var stop atomic.Bool
	entries := make(chan string, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- ReadLog(context.Background(), path, LogOptions{Follow: true, Tail: -1, Done: stop.Load}, func(e LogEntry) error {
			entries <- string(e.Data)
			return nil
		})
	}()
	// A piece without newline shows once the reader has caught up.
	select {
	case s := <-entries:
		if s != "prompt> " {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pending piece not shown")
	}
	fmt.Fprint(l.Stream("stdout"), "answer\nbye\n")
	l.Close()
	stop.Store(true) // written before Done: still read
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	close(entries)
	var rest []string
	for s := range entries {
		rest = append(rest, s)
	}
	if fmt.Sprint(rest) != "[answer\n bye\n]" {
		t.Fatalf("after the piece: %q", rest)
	}
}

func TestLogWriterNoAllocs(t *testing.T) {
	l := NewLogWriter(io.Discard)
	w := l.Stream("stdout")
	p := []byte("a line of output <with> \"escapes\"\tand é\n and a piece")
	w.Write(p) // grows the buffer
	if n := testing.AllocsPerRun(100, func() { w.Write(p) }); n != 0 {
		t.Fatalf("%v allocations per Write", n)
	}
}

// logAt returns a writer to buf whose entries are stamped t0, t0+1s, ….
func logAt(buf *bytes.Buffer, t0 time.Time) *LogWriter {
	l := NewLogWriter(buf)
	n := 0
	l.now = func() time.Time { n++; return t0.Add(time.Duration(n-1) * time.Second) }
	return l
}

func entryStrings(entries []LogEntry, t0 time.Time) []string {
	var s []string
	for _, e := range entries {
		s = append(s, fmt.Sprintf("%s@%v:%q", e.Stream, e.Time.Sub(t0), e.Data))
	}
	return s
}

// TestReadLogFileOrder: a piece of a line pending on one stream comes out
// before an entry of the other stream that follows it in the file, and
// Tail counts entries in that order.
func TestReadLogFileOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	l := logAt(&buf, t0)
	fmt.Fprint(l.Stream("stdout"), "tail-no-nl")
	fmt.Fprint(l.Stream("stderr"), "x\n")
	os.WriteFile(path, buf.Bytes(), 0o600)
	want := []string{`stdout@0s:"tail-no-nl"`, `stderr@1s:"x\n"`}
	for _, tail := range []int{-1, 2} {
		if _, got := readAll(t, path, LogOptions{Tail: tail}); fmt.Sprint(entryStrings(got, t0)) != fmt.Sprint(want) {
			t.Fatalf("tail %d: %q, want %q", tail, entryStrings(got, t0), want)
		}
	}
	if _, got := readAll(t, path, LogOptions{Tail: 1}); fmt.Sprint(entryStrings(got, t0)) != fmt.Sprint(want[1:]) {
		t.Fatalf("tail 1: %q, want %q", entryStrings(got, t0), want[1:])
	}

	// Pieces of one stream join; the other stream splits them.
	buf.Reset()
	l = logAt(&buf, t0)
	fmt.Fprint(l.Stream("stdout"), "a")
	fmt.Fprint(l.Stream("stdout"), "b\n")
	fmt.Fprint(l.Stream("stdout"), "c")
	fmt.Fprint(l.Stream("stderr"), "e")
	fmt.Fprint(l.Stream("stdout"), "d\n")
	fmt.Fprint(l.Stream("stderr"), "f\n")
	os.WriteFile(path, buf.Bytes(), 0o600)
	want = []string{`stdout@0s:"ab\n"`, `stdout@2s:"c"`, `stderr@3s:"e"`, `stdout@4s:"d\n"`, `stderr@5s:"f\n"`}
	if _, got := readAll(t, path, LogOptions{Tail: -1}); fmt.Sprint(entryStrings(got, t0)) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", entryStrings(got, t0), want)
	}
}

// TestOpenLogFileTornRecord: an entry written after a torn last record
// (no newline) is read back, and the torn record is skipped.
func TestOpenLogFileTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{})
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l, 0, 2)
	l.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"log":"line 99\n","stre`) // cut by a full disk
	f.Close()
	for range 2 { // the second time the file is whole: nothing added
		before, _ := os.ReadFile(path)
		l, err = OpenLogFile(path, LogRotation{MaxSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		wantLen := len(before)
		if len(before) > 0 && before[len(before)-1] != '\n' {
			wantLen++
		}
		if len(after) != wantLen {
			t.Fatalf("reopening made %d bytes of %d", len(after), len(before))
		}
		if st, _ := os.Stat(path); l.size != st.Size() {
			t.Fatalf("writer counts %d bytes, file has %d", l.size, st.Size())
		}
		writeLines(t, l, 2, 3)
		l.Close()
	}
	_, all := readAll(t, path, LogOptions{Tail: -1})
	if ns := lineNumbers(t, all); fmt.Sprint(ns) != "[0 1 2 2]" {
		t.Fatalf("read lines %v", ns)
	}
}

// TestReadLogTailBackward: a tail read from the end gives what the whole
// read's last entries are, for random logs of pieces of both streams,
// damaged records and k8s-file records over rotated files, with and
// without Since/Until.
func TestReadLogTailBackward(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for round := range 30 {
		path := filepath.Join(t.TempDir(), "ctr.log")
		l, err := OpenLogFile(path, LogRotation{MaxSize: int64(200 + rng.IntN(3000)), MaxFiles: 1 + rng.IntN(5)})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		l.now = func() time.Time { n++; return t0.Add(time.Duration(n/3) * time.Second) }
		for range rng.IntN(300) {
			s := []string{"stdout", "stderr"}[rng.IntN(2)]
			switch rng.IntN(10) {
			case 0:
				l.f.WriteString("damaged\n")
			case 1:
				n++
				tag := []string{"P", "F"}[rng.IntN(2)]
				fmt.Fprintf(l.f, "%s %s %s cri %d\n", t0.Add(time.Duration(n/3)*time.Second).Format(time.RFC3339Nano), s, tag, n)
			default:
				var w strings.Builder
				for range rng.IntN(4) {
					w.WriteString([]string{"a", "bb", "\n", "ccc\n", strings.Repeat("d", rng.IntN(700))}[rng.IntN(5)])
				}
				fmt.Fprint(l.Stream(s), w.String())
			}
		}
		if rng.IntN(3) == 0 {
			l.f.WriteString(`{"log":"torn`)
		}
		l.Close()
		var opts LogOptions
		if rng.IntN(2) == 0 {
			opts.Since = t0.Add(time.Duration(rng.IntN(n/3+1)) * time.Second)
		}
		if rng.IntN(2) == 0 {
			opts.Until = t0.Add(time.Duration(rng.IntN(n/3+1)) * time.Second)
		}
		opts.Tail = -1
		_, all := readAll(t, path, opts)
		for tail := 0; tail <= len(all)+2; tail++ {
			opts.Tail = tail
			_, got := readAll(t, path, opts)
			want := all[max(0, len(all)-tail):]
			if fmt.Sprint(entryStrings(got, t0)) != fmt.Sprint(entryStrings(want, t0)) {
				t.Fatalf("round %d, tail %d of %d, since %v until %v:\n got %q\nwant %q", round, tail, len(all), opts.Since, opts.Until, entryStrings(got, t0), entryStrings(want, t0))
			}
		}
	}
}

// readBytes is how many bytes this process has read so far (rchar).
func readBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skip(err)
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			fmt.Sscan(v, &n)
		}
	}
	return n
}

// TestReadLogTailReadsTheEnd: a short tail of a long log reads its end,
// not the whole log (Follow's first read too).
func TestReadLogTailReadsTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	var buf bytes.Buffer
	l := NewLogWriter(&buf)
	for i := range 200000 { // about 16 MB
		fmt.Fprintf(l.Stream("stdout"), "line %d\n", i)
	}
	os.WriteFile(path+".1", buf.Bytes(), 0o600)
	os.WriteFile(path, nil, 0o600)
	for _, follow := range []bool{false, true} {
		start := readBytes(t)
		var got []LogEntry
		var calls atomic.Int32
		err := ReadLog(context.Background(), path, LogOptions{Tail: 3, Follow: follow, Done: func() bool { return calls.Add(1) > 1 }}, func(e LogEntry) error {
			got = append(got, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		read := readBytes(t) - start
		if fmt.Sprint(lineNumbers(t, got)) != "[199997 199998 199999]" || read > 1<<20 {
			t.Fatalf("follow %v: tail 3 gave %v, reading %d bytes of %d", follow, lineNumbers(t, got), read, buf.Len())
		}
	}
}

// TestReadLogFollowUntil: following with Until ends once Until has passed
// (what is written later is stamped after it), though the writer goes on.
func TestReadLogFollowUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr.log")
	l, err := OpenLogFile(path, LogRotation{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a container that never stops talking
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				fmt.Fprintf(l.Stream("stdout"), "line %d\n", i)
			}
		}
	}()
	until := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err = ReadLog(ctx, path, LogOptions{Tail: -1, Follow: true, Until: until, Done: func() bool { return false }}, func(e LogEntry) error {
		if e.Time.After(until) {
			return fmt.Errorf("entry at %v, after Until %v", e.Time, until)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("follow with Until: %v (after %d entries)", err, n)
	}
	if n == 0 {
		t.Fatal("no entries before Until")
	}
}
