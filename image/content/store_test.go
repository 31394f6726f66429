package content

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func ingest(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// TestWriterCommit streams a blob in pieces larger than the writeback
// chunk and commits it: the blob is readable, read-only, and the ingest
// directory is empty.
func TestWriterCommit(t *testing.T) {
	s, dir := newStore(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), (writebackChunk*2+1000)/16)
	d := digest.FromBytes(data)
	w, err := s.NewWriter(d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ingest(t, dir)) != 1 {
		t.Fatalf("no ingest file while writing")
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 300_000)
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if w.Written() != int64(len(data)) {
		t.Fatalf("Written %d, want %d", w.Written(), len(data))
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if fi, err := os.Stat(s.Path(d)); err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("blob mode %v, %v", fi.Mode(), err)
	}
	if left := ingest(t, dir); len(left) != 0 {
		t.Fatalf("ingest not empty: %v", left)
	}
	w.Abort() // after Commit: nothing happens
	if !s.Has(d) {
		t.Fatal("Abort after Commit removed the blob")
	}
	if _, err := w.Write([]byte("x")); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Write after Commit: %v", err)
	}
}

// TestWriterRefuses: wrong content, too many and too few bytes are never
// committed and leave no ingest file; Abort removes a write in progress.
func TestWriterRefuses(t *testing.T) {
	s, dir := newStore(t)
	data := []byte("the real content")
	d := digest.FromBytes(data)

	cases := map[string]func(w *Writer) error{
		"wrong bytes": func(w *Writer) error {
			w.Write([]byte("the fake content"))
			return w.Commit()
		},
		"short": func(w *Writer) error {
			w.Write(data[:4])
			return w.Commit()
		},
		"long": func(w *Writer) error {
			if _, err := w.Write(append(data, '!')); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("oversized write: %v", err)
			}
			return w.Commit()
		},
	}
	for name, run := range cases {
		w, err := s.NewWriter(d, int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if err := run(w); !errors.Is(err, ErrDigestMismatch) || !errdefs.IsDataLoss(err) {
			t.Errorf("%s: commit gave %v, want a digest mismatch", name, err)
		}
		if s.Has(d) {
			t.Fatalf("%s: blob committed", name)
		}
		if left := ingest(t, dir); len(left) != 0 {
			t.Fatalf("%s: ingest not empty: %v", name, left)
		}
	}

	w, err := s.NewWriter(d, -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:3])
	w.Abort()
	w.Abort()
	if left := ingest(t, dir); len(left) != 0 || s.Has(d) {
		t.Fatalf("after Abort: ingest %v, blob present %v", left, s.Has(d))
	}
	if err := w.Commit(); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("Commit after Abort: %v", err)
	}
	if _, err := s.NewWriter("sha256:nothex", 1); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("malformed digest: %v", err)
	}
}

// TestWriteIdempotent: Write of a present blob does not read r.
func TestWriteIdempotent(t *testing.T) {
	s, _ := newStore(t)
	data := []byte("blob")
	d := digest.FromBytes(data)
	if err := s.Write(t.Context(), d, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader([]byte("something else"))
	if err := s.Write(t.Context(), d, int64(len(data)), r); err != nil || r.Len() != 14 {
		t.Fatalf("second Write: %v, %d bytes left unread", err, r.Len())
	}
	bad := digest.FromString("other")
	if err := s.Write(t.Context(), bad, -1, bytes.NewReader(data)); !errors.Is(err, ErrDigestMismatch) || s.Has(bad) {
		t.Fatalf("mismatching Write: %v", err)
	}
}
