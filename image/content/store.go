// Package content is a content-addressed blob store on disk: every blob
// (manifest, config, layer) is stored once under its digest and is written
// only after its bytes have been verified against that digest.
//
// Layout under the store's root:
//
//	blobs/sha256/<hex>   committed blobs, read-only
//	ingest/<random>      blobs being written; a crash leaves them here and
//	                     they are removed by Prune
//
// A blob becomes visible atomically (rename(2) after fsync), so readers never
// see partial content and a kill -9 leaves nothing half-written in blobs/.
package content

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Store is a blob store rooted at one directory. It is safe for concurrent
// use by several goroutines and processes.
type Store struct {
	root string
}

// New opens (creating if needed) the store at root.
func New(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Path is where the blob d lives once committed.
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// Has reports whether blob d is committed.
func (s *Store) Has(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.Path(d))
	return err == nil
}

// Open opens blob d for reading. A missing blob gives errdefs.ErrNotFound;
// a malformed digest errdefs.ErrInvalidArgument.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	f, err := os.Open(s.Path(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// ReadAll returns the whole blob d (for small blobs: manifests, configs).
func (s *Store) ReadAll(d digest.Digest) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// ErrDigestMismatch is wrapped by Write and Writer.Commit when content
// does not hash to the expected digest (or has the wrong size); it matches
// errdefs.ErrDataLoss.
var ErrDigestMismatch = fmt.Errorf("digest mismatch: %w", errdefs.ErrDataLoss)

// Write copies r into the store as blob expected, checking the digest and,
// when size >= 0, the size in bytes. Nothing is committed unless both match
// (the error then wraps ErrDigestMismatch). Writing a blob that already
// exists drains nothing and returns nil: Write is idempotent.
func (s *Store) Write(ctx context.Context, expected digest.Digest, size int64, r io.Reader) error {
	if err := expected.Validate(); err != nil {
		return fmt.Errorf("blob %q: %v: %w", expected, err, errdefs.ErrInvalidArgument)
	}
	if s.Has(expected) {
		return nil
	}
	w, err := s.NewWriter(expected, size)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := io.Copy(w, readerWithContext(ctx, r)); err != nil {
		return fmt.Errorf("write blob %s: %w", expected, err)
	}
	return w.Commit()
}

// Writer streams one blob into the store's ingest directory, hashing it
// as it is written; Commit verifies and publishes it, Abort discards it.
// A Writer is not safe for concurrent use.
type Writer struct {
	expected digest.Digest
	size     int64 // bytes expected; < 0: unknown
	tmp      *os.File
	hash     hash.Hash
	n        int64
	final    string // the committed blob's path
	flushed  int64  // bytes handed to writeback
	done     bool
}

// writebackChunk is how many bytes a Writer lets pile up before it starts
// their writeback.
const writebackChunk = 4 << 20

// NewWriter starts writing blob expected of size bytes (size < 0: not
// checked) into a new ingest file. The caller must end it with Commit or
// Abort; until then the ingest file exists (a killed process leaves it
// for Prune). A malformed or unsupported digest gives
// errdefs.ErrInvalidArgument.
func (s *Store) NewWriter(expected digest.Digest, size int64) (*Writer, error) {
	if err := expected.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %v: %w", expected, err, errdefs.ErrInvalidArgument)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, "ingest"), expected.Encoded()[:12]+"-*")
	if err != nil {
		return nil, err
	}
	return &Writer{expected: expected, size: size, tmp: tmp, hash: expected.Algorithm().Hash(), final: s.Path(expected)}, nil
}

// Write appends p to the blob. Writing more than the expected size fails
// with ErrDigestMismatch before anything of p is written.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("blob %s: write after commit or abort: %w", w.expected, errdefs.ErrFailedPrecondition)
	}
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		return 0, fmt.Errorf("blob %s: more than %d bytes: %w", w.expected, w.size, ErrDigestMismatch)
	}
	n, err := w.tmp.Write(p)
	w.hash.Write(p[:n])
	w.n += int64(n)
	if w.n-w.flushed >= writebackChunk {
		// Start writing back what is written so far, without waiting, so
		// that Commit's fsync finds little left to do.
		_ = unix.SyncFileRange(int(w.tmp.Fd()), w.flushed, w.n-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.n
	}
	return n, err
}

// Written is the number of bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Commit checks the size and digest of what was written and, if both
// match, syncs the file and renames it into place (the blob is then
// visible to every reader); otherwise it removes the ingest file and
// returns an error wrapping ErrDigestMismatch. Either way the Writer is
// finished. Committing a blob another writer committed first is fine.
func (w *Writer) Commit() error {
	if w.done {
		return fmt.Errorf("blob %s: commit after commit or abort: %w", w.expected, errdefs.ErrFailedPrecondition)
	}
	defer w.Abort()
	if w.size >= 0 && w.n != w.size {
		return fmt.Errorf("blob %s: got %d bytes, want %d: %w", w.expected, w.n, w.size, ErrDigestMismatch)
	}
	if got := digest.NewDigest(w.expected.Algorithm(), w.hash); got != w.expected {
		return fmt.Errorf("blob %s: content hashes to %s: %w", w.expected, got, ErrDigestMismatch)
	}
	if err := w.tmp.Chmod(0o444); err != nil {
		return err
	}
	if err := w.tmp.Sync(); err != nil {
		return err
	}
	if err := w.tmp.Close(); err != nil {
		return err
	}
	return os.Rename(w.tmp.Name(), w.final)
}

// Abort discards the blob and removes its ingest file; after Commit it
// does nothing. It may be called any number of times.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.tmp.Close()
	os.Remove(w.tmp.Name()) // no-op after a successful rename
}

// Delete removes blob d. A missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	if d.Validate() != nil {
		return fmt.Errorf("blob %q: %w", d, errdefs.ErrInvalidArgument)
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ModTime is when blob d was committed or last touched (Touch). A missing
// blob gives errdefs.ErrNotFound.
func (s *Store) ModTime(d digest.Digest) (time.Time, error) {
	if d.Validate() != nil {
		return time.Time{}, fmt.Errorf("blob %q: %w", d, errdefs.ErrInvalidArgument)
	}
	info, err := os.Stat(s.Path(d))
	if errors.Is(err, os.ErrNotExist) {
		return time.Time{}, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, err
	}
	return info.ModTime(), nil
}

// Touch sets blob d's modification time to now: an operation that relies
// on a blob no image references yet (a pull reusing a blob an interrupted
// pull left) touches it, so that a sweep of old unreferenced blobs spares
// it. A missing blob is not an error.
func (s *Store) Touch(d digest.Digest) error {
	if d.Validate() != nil {
		return fmt.Errorf("blob %q: %w", d, errdefs.ErrInvalidArgument)
	}
	now := time.Now()
	if err := os.Chtimes(s.Path(d), now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Sweep finds the committed blobs that keep does not claim and that are
// older than age (by ModTime), deletes them when del, and returns their
// total size in bytes.
func (s *Store) Sweep(keep func(digest.Digest) bool, age time.Duration, del bool) (int64, error) {
	var total int64
	err := s.Walk(func(d digest.Digest, size int64) error {
		if keep(d) {
			return nil
		}
		if t, err := s.ModTime(d); err != nil || time.Since(t) < age {
			return nil
		}
		total += size
		if del {
			return s.Delete(d)
		}
		return nil
	})
	return total, err
}

// Walk calls fn for each committed blob with its size in bytes.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(d, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Prune removes ingest files older than age: what a killed writer left.
func (s *Store) Prune(age time.Duration) error {
	dir := filepath.Join(s.root, "ingest")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func readerWithContext(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx, r}
}
