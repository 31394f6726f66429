// Package state is Berth's metadata store: a bbolt database under the
// engine's root that every berth process opens for the length of one
// transaction.
//
// Berth has no daemon, so any number of processes may read and write the
// same store at once. bbolt takes an flock on the file for as long as it is
// open (exclusive for writers, shared for readers); opening the database per
// transaction therefore serialises writers across processes while keeping
// each critical section short. bbolt's copy-on-write pages make every
// committed transaction durable and a kill -9 at any point loses nothing that
// was committed.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/internal/flock"
	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// DB is a handle on the metadata database at one path. It holds no open
// file between calls and is safe for concurrent use.
type DB struct {
	path string
}

// Open returns a handle on the database file at path, creating its parent
// directory. The file itself is created on the first Update.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &DB{path: path}, nil
}

// lockTimeout bounds how long a transaction waits for another process's
// lock before failing with errdefs.ErrUnavailable.
const lockTimeout = 60 * time.Second

// open opens the database, first taking a flock on PATH.lock (shared for
// readers) through internal/flock: bbolt retries its own flock every
// 50 ms, which under contention (50 concurrent runs) left the lock idle
// most of the time; the kernel hands a blocking flock to the next waiter
// at once, and bbolt's flock then does not wait. The returned func closes
// the database and drops the lock. A lock file that cannot be created (a
// read-only root) is skipped: bbolt's flock still serialises.
func (d *DB) open(ctx context.Context, readOnly bool) (*bolt.DB, func(), error) {
	if readOnly {
		if _, err := os.Stat(d.path); errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil
		}
	}
	lctx, cancel := context.WithTimeout(ctx, lockTimeout)
	l, err := flock.Acquire(lctx, d.path+".lock", !readOnly)
	cancel()
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		return nil, nil, fmt.Errorf("state %s: %w", d.path, err)
	}
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: readOnly})
	if err != nil {
		l.Unlock()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("state %s locked by another process for over %s: %w", d.path, lockTimeout, errdefs.ErrUnavailable)
		}
		return nil, nil, fmt.Errorf("state %s: %w", d.path, err)
	}
	closeDB := func() { db.Close(); l.Unlock() }
	if err := ctx.Err(); err != nil {
		closeDB()
		return nil, nil, err
	}
	return db, closeDB, nil
}

// Update runs fn in a read-write transaction that holds the store's
// exclusive lock across all processes. fn's error aborts the transaction
// and is returned unchanged.
func (d *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	db, closeDB, err := d.open(ctx, false)
	if err != nil {
		return err
	}
	defer closeDB()
	return db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// View runs fn in a read-only transaction under a shared lock. A store that
// was never written reads as empty.
func (d *DB) View(ctx context.Context, fn func(*Tx) error) error {
	db, closeDB, err := d.open(ctx, true)
	if err != nil {
		return err
	}
	if db == nil {
		return fn(&Tx{})
	}
	defer closeDB()
	return db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx}) })
}

// Tx is one transaction. Records are JSON documents in named buckets.
type Tx struct {
	tx *bolt.Tx // nil for a store that does not exist yet (reads as empty)
}

func (t *Tx) bucket(name string, create bool) (*bolt.Bucket, error) {
	if t.tx == nil {
		return nil, nil
	}
	if create && t.tx.Writable() {
		return t.tx.CreateBucketIfNotExists([]byte(name))
	}
	return t.tx.Bucket([]byte(name)), nil
}

// Get decodes the record key of bucket into v. A missing record gives an
// error matching errdefs.ErrNotFound.
func (t *Tx) Get(bucket, key string, v any) error {
	b, err := t.bucket(bucket, false)
	if err != nil {
		return err
	}
	var data []byte
	if b != nil {
		data = b.Get([]byte(key))
	}
	if data == nil {
		return fmt.Errorf("%s record %q not found: %w", bucket, key, errdefs.ErrNotFound)
	}
	return json.Unmarshal(data, v)
}

// Has reports whether bucket holds key.
func (t *Tx) Has(bucket, key string) bool {
	b, _ := t.bucket(bucket, false)
	return b != nil && b.Get([]byte(key)) != nil
}

// Put stores v as JSON under key in bucket, replacing any record.
func (t *Tx) Put(bucket, key string, v any) error {
	b, err := t.bucket(bucket, true)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), data)
}

// Delete removes key from bucket; a missing key is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b, err := t.bucket(bucket, false)
	if err != nil || b == nil {
		return err
	}
	return b.Delete([]byte(key))
}

// ForEach calls fn with every key of bucket in byte order and its raw JSON
// record. Decode with json.Unmarshal.
func (t *Tx) ForEach(bucket string, fn func(key string, data []byte) error) error {
	b, err := t.bucket(bucket, false)
	if err != nil || b == nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error { return fn(string(k), v) })
}
