// Package storage is the metadata store and on-disk layout shared by the
// overlay and vfs snapshotters.
//
// Layout of a root:
//
//	root/metadata.db     bbolt database: snapshot key or name → Record
//	root/metadata.lock   flock'ed around every open of the database
//	root/snapshots/<id>/ the data of the snapshot with numeric id <id>
//	root/tmp/            directories being filled for snapshots not yet recorded
//	root/trash/          directories of removed snapshots, being deleted
//
// # Several processes
//
// Berth has no daemon, so several processes use one root at once. The
// database is opened for each operation and closed at its end; bbolt holds
// a flock(2) on it while it is open (exclusive for writers, shared for
// readers), so every write operation runs alone against the whole root.
// Long work (copying a parent in vfs, deleting a tree) runs outside that
// lock on a directory under tmp/ or trash/ that the worker keeps locked with
// flock(2) on the directory itself; the lock dies with the process.
//
// bbolt waits for its flock by polling every 50 ms, which leaves the lock
// idle most of the time when tens of processes contend. So the store
// first takes the same kind of flock on metadata.lock, blocking, which the
// kernel hands to the next waiter the moment it is released; bbolt's own
// flock then does not wait (it still guards against a process that does
// not take metadata.lock).
//
// # Crash safety
//
// A kill -9 at any point leaves a consistent store, because every step is
// ordered so that a crash leaves only unreferenced directories:
//
//   - Create: under the lock, a directory tmp/new-* is made and flock'ed;
//     the lock is dropped while the implementation fills it; under the lock
//     again, the record is written in a transaction and, before it commits,
//     the directory is renamed to snapshots/<id> (ids come from the bucket
//     sequence, which never goes back once committed). A crash before the
//     rename leaves an unlocked tmp/ entry; a crash after the rename but
//     before the commit leaves snapshots/<id> with no record. CreateLocked
//     (for a populate of a few mkdirs) does the same in one transaction,
//     filling the directory under the lock.
//   - Remove: the record is deleted and the transaction commits first; then,
//     still under the lock, snapshots/<id> is renamed into a flock'ed
//     trash/rm-* directory, which is deleted after the lock is dropped. A crash after the commit
//     leaves snapshots/<id> with no record, or an unlocked trash/ entry; it
//     never leaves a record whose data is half gone. The rename is not
//     synced: should a power loss undo it, snapshots/<id> has no record,
//     which the cleanup pass handles.
//   - Commit only rewrites records; the data directory keeps its id.
//
// Every write operation starts, under the lock, with a cleanup pass that
// moves snapshots/<id> directories without a record to trash/, and deletes
// every tmp/ and trash/ entry whose flock it can take (its owner is dead).
// Open writes nothing once the database exists: leftovers wait for the
// next write operation, the first that could meet them.
package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berthproject/berth/internal/flock"
	"github.com/berthproject/berth/snapshot"
)

const (
	dbName       = "metadata.db"
	lockName     = "metadata.lock"
	snapshotsDir = "snapshots"
	tmpDir       = "tmp"
	trashDir     = "trash"
)

var bucketName = []byte("snapshots/v1")

// DefaultLockTimeout is how long an operation waits for another process's
// operation on the same root before failing with errdefs.ErrUnavailable.
const DefaultLockTimeout = 60 * time.Second

// Record is the metadata of one snapshot.
type Record struct {
	ID      uint64        `json:"id"` // names the directory snapshots/<ID>
	Key     string        `json:"-"`  // key (active, view) or name (committed)
	Parent  string        `json:"parent,omitempty"`
	Kind    snapshot.Kind `json:"kind"`
	Created time.Time     `json:"created"` // UTC
}

// Info returns the snapshot.Info of r.
func (r Record) Info() snapshot.Info {
	return snapshot.Info{Name: r.Key, Parent: r.Parent, Kind: r.Kind, Created: r.Created}
}

// Store is the metadata of one root. It is safe for concurrent use by
// goroutines and, through file locks, by several processes.
type Store struct {
	root string
	// mu serialises this Store's write operations so that its goroutines
	// queue here instead of polling the database flock.
	mu     sync.Mutex
	closed bool
	cmu    sync.Mutex
}

// Open prepares root (created with mode 0700 if missing) and returns its
// Store. A new root gets its database (and a cleanup pass); an existing
// one is only read, so that opening costs no write transaction: crash
// leftovers are cleaned by the next write operation.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{abs, filepath.Join(abs, snapshotsDir), filepath.Join(abs, tmpDir), filepath.Join(abs, trashDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("snapshot storage: %w", err)
		}
	}
	s := &Store{root: abs}
	if s.ready() {
		return s, nil
	}
	if err := s.update(context.Background(), func(*txn) error { return nil }); err != nil {
		return nil, err
	}
	return s, nil
}

// ready reports whether the database exists and has its bucket.
func (s *Store) ready() bool {
	if _, err := os.Stat(filepath.Join(s.root, dbName)); err != nil {
		return false
	}
	return s.view(context.Background(), func(*bolt.Bucket) error { return nil }) == nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// Dir returns the data directory of the snapshot with the given id:
// root/snapshots/<id>.
func (s *Store) Dir(id uint64) string {
	return filepath.Join(s.root, snapshotsDir, strconv.FormatUint(id, 10))
}

// Close marks the store closed; later calls fail with
// errdefs.ErrFailedPrecondition. It is idempotent.
func (s *Store) Close() error {
	s.cmu.Lock()
	s.closed = true
	s.cmu.Unlock()
	return nil
}

func (s *Store) checkOpen() error {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.closed {
		return fmt.Errorf("snapshotter at %s is closed: %w", s.root, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// openDB opens the database, waiting for other processes' operations on
// metadata.lock, then on bbolt's own flock. The returned func closes it
// and drops metadata.lock.
func (s *Store) openDB(readOnly bool) (*bolt.DB, func(), error) {
	unlock, err := lockMetadata(filepath.Join(s.root, lockName), !readOnly, DefaultLockTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot metadata %s: %w", s.root, err)
	}
	db, err := bolt.Open(filepath.Join(s.root, dbName), 0o600, &bolt.Options{Timeout: DefaultLockTimeout, ReadOnly: readOnly})
	if err != nil {
		unlock()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("snapshot metadata %s is locked by another process: %w", s.root, errdefs.ErrUnavailable)
		}
		return nil, nil, fmt.Errorf("open snapshot metadata %s: %w", s.root, err)
	}
	return db, func() { db.Close(); unlock() }, nil
}

// lockMetadata takes metadata.lock (shared or exclusive), waiting up to
// timeout (then errdefs.ErrUnavailable); the returned func drops it. A
// lock file that cannot be created (a read-only root) is skipped:
// bbolt's own flock still serialises.
func lockMetadata(path string, exclusive bool, timeout time.Duration) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l, err := flock.Acquire(ctx, path, exclusive)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// txn is one write transaction with hooks that run while the lock is
// still held: after a successful commit, or after a failed one.
type txn struct {
	tx       *bolt.Tx
	b        *bolt.Bucket
	onCommit []func()
	onAbort  []func()
	// later runs after the lock is dropped, in every case.
	later []func()
}

// update runs fn in a write transaction after a cleanup pass.
func (s *Store) update(ctx context.Context, fn func(*txn) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &txn{}
	err := s.locked(t, fn)
	// Deleting trees can take long: do it with no lock held.
	for _, f := range t.later {
		f()
	}
	return err
}

// locked runs fn in t with the instance mutex and the database flock held.
func (s *Store) locked(t *txn, fn func(*txn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db, closeDB, err := s.openDB(false)
	if err != nil {
		return err
	}
	defer closeDB()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		t.tx, t.b = tx, b
		if err := s.cleanup(t); err != nil {
			return err
		}
		return fn(t)
	})
	if err != nil {
		for _, f := range t.onAbort {
			f()
		}
		return err
	}
	for _, f := range t.onCommit {
		f()
	}
	return nil
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(b *bolt.Bucket) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	db, closeDB, err := s.openDB(true)
	if err != nil {
		return err
	}
	defer closeDB()
	return db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if b == nil {
			return errors.New("snapshot metadata has no bucket")
		}
		return fn(b)
	})
}

func get(b *bolt.Bucket, key string) (Record, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return Record{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("snapshot %q: corrupt record: %w", key, err)
	}
	r.Key = key
	return r, nil
}

func put(b *bolt.Bucket, r Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put([]byte(r.Key), v)
}

func each(b *bolt.Bucket, fn func(Record) error) error {
	return b.ForEach(func(k, v []byte) error {
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("snapshot %q: corrupt record: %w", k, err)
		}
		r.Key = string(k)
		return fn(r)
	})
}

// chain returns the ids of key's committed ancestors, nearest first.
func chain(b *bolt.Bucket, parent string) ([]uint64, error) {
	var ids []uint64
	for p := parent; p != ""; {
		r, err := get(b, p)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		ids = append(ids, r.ID)
		p = r.Parent
		if len(ids) > 10000 {
			return nil, fmt.Errorf("snapshot %q: parent chain loops", parent)
		}
	}
	return ids, nil
}

// Get returns key's record and the ids of its parent chain, nearest
// first. An unknown key gives errdefs.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (Record, []uint64, error) {
	var r Record
	var parents []uint64
	err := s.view(ctx, func(b *bolt.Bucket) error {
		var err error
		if r, err = get(b, key); err != nil {
			return err
		}
		parents, err = chain(b, r.Parent)
		return err
	})
	return r, parents, err
}

// Walk calls fn for every record, after the lock is released (fn may call
// the store again).
func (s *Store) Walk(ctx context.Context, fn func(Record) error) error {
	var all []Record
	err := s.view(ctx, func(b *bolt.Bucket) error {
		return each(b, func(r Record) error { all = append(all, r); return nil })
	})
	if err != nil {
		return err
	}
	for _, r := range all {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Populate fills dir, a fresh empty directory, with the data of a new
// snapshot whose committed ancestors have the given ids (nearest first).
// It runs without the store lock.
type Populate func(dir string, parents []uint64) error

// Create records a new snapshot key of kind (KindActive or KindView) on
// parent ("" for none), its data made by populate, which runs without the
// store lock (it may copy a tree). It returns the record and its parent
// chain. A key in use gives errdefs.ErrAlreadyExists; an unknown parent
// errdefs.ErrNotFound; a parent that is not committed
// errdefs.ErrFailedPrecondition; an empty key errdefs.ErrInvalidArgument.
func (s *Store) Create(ctx context.Context, kind snapshot.Kind, key, parent string, populate Populate) (Record, []uint64, error) {
	return s.create(ctx, kind, key, parent, populate, false)
}

// CreateLocked is Create for a populate that only makes a few directories:
// it runs under the store lock and everything happens in one write
// transaction (Create takes two). Errors as Create.
func (s *Store) CreateLocked(ctx context.Context, kind snapshot.Kind, key, parent string, populate Populate) (Record, []uint64, error) {
	return s.create(ctx, kind, key, parent, populate, true)
}

func (s *Store) create(ctx context.Context, kind snapshot.Kind, key, parent string, populate Populate, underLock bool) (Record, []uint64, error) {
	if key == "" {
		return Record{}, nil, fmt.Errorf("snapshot key is empty: %w", errdefs.ErrInvalidArgument)
	}
	check := func(t *txn) ([]uint64, error) {
		if t.b.Get([]byte(key)) != nil {
			return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent == "" {
			return nil, nil
		}
		p, err := get(t.b, parent)
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		if p.Kind != snapshot.KindCommitted {
			return nil, fmt.Errorf("parent %q is %s, not committed: %w", parent, p.Kind, errdefs.ErrFailedPrecondition)
		}
		return chain(t.b, parent)
	}
	var scratch *lockedDir
	renamed := false
	defer func() {
		if scratch == nil {
			return
		}
		if !renamed {
			_ = os.RemoveAll(scratch.path)
		}
		scratch.unlock()
	}()
	fill := func(parents []uint64) error {
		if err := populate(scratch.path, parents); err != nil {
			return fmt.Errorf("snapshot %q: %w", key, err)
		}
		return nil
	}
	// place records the snapshot and moves scratch into place before the
	// commit.
	var rec Record
	place := func(t *txn) error {
		id, err := t.b.NextSequence()
		if err != nil {
			return err
		}
		rec = Record{ID: id, Key: key, Parent: parent, Kind: kind, Created: time.Now().UTC()}
		if err := put(t.b, rec); err != nil {
			return err
		}
		dst := s.Dir(id)
		if testHook != nil {
			testHook("before-rename")
		}
		if err := os.Rename(scratch.path, dst); err != nil {
			return fmt.Errorf("snapshot %q: %w", key, err)
		}
		renamed = true
		// Unlock under the store lock: from the commit on, the directory
		// belongs to the record.
		t.onCommit = append(t.onCommit, scratch.unlock)
		// Should the commit fail, take the directory out again while the
		// lock still keeps its id from being handed out.
		t.onAbort = append(t.onAbort, func() {
			if err := os.Rename(dst, scratch.path); err != nil {
				_ = os.RemoveAll(dst)
			} else {
				renamed = false
			}
		})
		if err := syncDir(filepath.Join(s.root, snapshotsDir)); err != nil {
			return err
		}
		if testHook != nil {
			testHook("before-commit")
		}
		return nil
	}

	// Phase 1: validate and make a locked scratch directory (and, under
	// the lock, fill and record it at once).
	var parents []uint64
	err := s.update(ctx, func(t *txn) error {
		var err error
		if parents, err = check(t); err != nil {
			return err
		}
		if scratch, err = newLockedDir(filepath.Join(s.root, tmpDir), "new-"); err != nil {
			return err
		}
		if !underLock {
			return nil
		}
		if err := fill(parents); err != nil {
			return err
		}
		return place(t)
	})
	if err != nil {
		return Record{}, nil, err
	}
	if underLock {
		return rec, parents, nil
	}

	// Phase 2: fill it without the lock.
	if err := fill(parents); err != nil {
		return Record{}, nil, err
	}

	// Phase 3: record it and move it into place before the commit.
	err = s.update(ctx, func(t *txn) error {
		again, err := check(t)
		if err != nil {
			return err
		}
		if !equalIDs(again, parents) {
			return fmt.Errorf("parent %q changed while snapshot %q was created: %w", parent, key, errdefs.ErrConflict)
		}
		return place(t)
	})
	if err != nil {
		return Record{}, nil, err
	}
	return rec, parents, nil
}

func equalIDs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Commit turns the active snapshot key into the committed snapshot name,
// keeping its id and data. An unknown key gives errdefs.ErrNotFound; a key
// that is not active errdefs.ErrFailedPrecondition; a name in use
// errdefs.ErrAlreadyExists.
func (s *Store) Commit(ctx context.Context, name, key string) (Record, error) {
	if name == "" {
		return Record{}, fmt.Errorf("snapshot name is empty: %w", errdefs.ErrInvalidArgument)
	}
	var rec Record
	err := s.update(ctx, func(t *txn) error {
		r, err := get(t.b, key)
		if err != nil {
			return err
		}
		if r.Kind != snapshot.KindActive {
			return fmt.Errorf("snapshot %q is %s, not active: %w", key, r.Kind, errdefs.ErrFailedPrecondition)
		}
		if t.b.Get([]byte(name)) != nil {
			return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		if err := t.b.Delete([]byte(key)); err != nil {
			return err
		}
		rec = Record{ID: r.ID, Key: name, Parent: r.Parent, Kind: snapshot.KindCommitted, Created: time.Now().UTC()}
		return put(t.b, rec)
	})
	return rec, err
}

// Remove deletes key's record, then its data directory. An unknown key
// gives errdefs.ErrNotFound; a committed snapshot that is the parent of
// another errdefs.ErrFailedPrecondition.
func (s *Store) Remove(ctx context.Context, key string) error {
	return s.update(ctx, func(t *txn) error {
		r, err := get(t.b, key)
		if err != nil {
			return err
		}
		var child string
		err = each(t.b, func(o Record) error {
			if o.Parent == key {
				child = o.Key
			}
			return nil
		})
		if err != nil {
			return err
		}
		if child != "" {
			return fmt.Errorf("snapshot %q is the parent of %q: %w", key, child, errdefs.ErrFailedPrecondition)
		}
		if err := t.b.Delete([]byte(key)); err != nil {
			return err
		}
		t.onCommit = append(t.onCommit, func() {
			if testHook != nil {
				testHook("after-remove-commit")
			}
			s.discard(t, s.Dir(r.ID))
		})
		return nil
	})
}

// discard moves dir into a locked trash/rm-* directory and schedules its
// deletion for after the store lock is dropped. Failures leave it to a
// later cleanup pass.
func (s *Store) discard(t *txn, dir string) {
	top, err := newLockedDir(filepath.Join(s.root, trashDir), "rm-")
	if err != nil {
		return
	}
	if err := os.Rename(dir, filepath.Join(top.path, "d")); err != nil {
		_ = os.Remove(top.path)
		top.unlock()
		return
	}
	t.later = append(t.later, func() {
		_ = os.RemoveAll(top.path)
		top.unlock()
	})
}

// cleanup runs under the lock at the start of every write operation.
func (s *Store) cleanup(t *txn) error {
	ids := map[string]bool{}
	if err := each(t.b, func(r Record) error { ids[strconv.FormatUint(r.ID, 10)] = true; return nil }); err != nil {
		return err
	}
	snaps := filepath.Join(s.root, snapshotsDir)
	ents, err := os.ReadDir(snaps)
	if err != nil {
		return fmt.Errorf("snapshot storage: %w", err)
	}
	for _, e := range ents {
		if !ids[e.Name()] {
			s.discard(t, filepath.Join(snaps, e.Name()))
		}
	}
	for _, d := range []string{tmpDir, trashDir} {
		dir := filepath.Join(s.root, d)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("snapshot storage: %w", err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if !e.IsDir() {
				_ = os.Remove(p)
				continue
			}
			l, err := lockDir(p)
			if err != nil {
				continue // its owner is alive, or it vanished
			}
			t.later = append(t.later, func() {
				_ = os.RemoveAll(p)
				l.unlock()
			})
		}
	}
	return nil
}

// Check reports an error if the records and the directories disagree: a
// record without its directory, a directory without a record, or a tmp/
// or trash/ entry nobody holds. Run it when no other operation is under
// way; it is meant for tests and repair tools.
func (s *Store) Check(ctx context.Context) error {
	ids := map[string]string{}
	err := s.view(ctx, func(b *bolt.Bucket) error {
		return each(b, func(r Record) error {
			ids[strconv.FormatUint(r.ID, 10)] = r.Key
			if _, err := chain(b, r.Parent); err != nil {
				return fmt.Errorf("snapshot %q: %w", r.Key, err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	var problems []error
	ents, err := os.ReadDir(filepath.Join(s.root, snapshotsDir))
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range ents {
		seen[e.Name()] = true
		if _, ok := ids[e.Name()]; !ok {
			problems = append(problems, fmt.Errorf("directory snapshots/%s has no record", e.Name()))
		}
	}
	for id, key := range ids {
		if !seen[id] {
			problems = append(problems, fmt.Errorf("snapshot %q has no directory snapshots/%s", key, id))
		}
	}
	for _, d := range []string{tmpDir, trashDir} {
		ents, err := os.ReadDir(filepath.Join(s.root, d))
		if err != nil {
			return err
		}
		for _, e := range ents {
			l, err := lockDir(filepath.Join(s.root, d, e.Name()))
			if err == nil {
				l.unlock()
				problems = append(problems, fmt.Errorf("leftover %s/%s", d, e.Name()))
			}
		}
	}
	return errors.Join(problems...)
}

// testHook, when set by tests, is called at named points of an operation.
var testHook func(point string)

// lockedDir is a directory held with flock(2).
type lockedDir struct {
	path string
	fd   int
}

func newLockedDir(parent, prefix string) (*lockedDir, error) {
	p, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, err
	}
	l, err := lockDir(p)
	if err != nil {
		_ = os.Remove(p)
		return nil, err
	}
	return l, nil
}

// lockDir takes an exclusive flock on dir, failing at once if another
// open file holds it.
func lockDir(dir string) (*lockedDir, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return &lockedDir{path: dir, fd: fd}, nil
}

func (l *lockedDir) unlock() {
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
