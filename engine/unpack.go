package engine

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// chainIDs returns the chain ID of every layer prefix (OCI image spec,
// "Layer ChainID"): the names of the committed snapshots.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i := range diffIDs {
		out[i] = identity.ChainID(diffIDs[:i+1])
	}
	return out
}

// unpack makes sure every layer of the image is a committed snapshot named
// by its chain ID and returns the top chain ID ("" for an image with no
// layers). Layers already unpacked (by this or another image) are reused.
func (e *Engine) unpack(ctx context.Context, cfg ocispec.Image, layers []ocispec.Descriptor) (string, error) {
	chains := chainIDs(cfg.RootFS.DiffIDs)
	parent := ""
	for i, l := range layers {
		name := chains[i].String()
		if _, err := e.snaps.Stat(ctx, name); err == nil {
			parent = name
			continue
		}
		if _, err := e.applyLayer(ctx, l, cfg.RootFS.DiffIDs[i], name, parent); err != nil {
			return "", fmt.Errorf("unpacking layer %s: %w", l.Digest.Encoded()[:12], err)
		}
		parent = name
	}
	return parent, nil
}

// pullUnpacker unpacks the layers of a pull while it downloads: it is the
// pull's image.LayerSink. Layer i is applied as soon as its blob is in the
// content store (verified and committed by image.Pull) and layer i-1 is a
// committed snapshot, in one goroutine, so the unpack of early layers
// overlaps the download of later ones. As before, a snapshot is committed
// only after its layer's diff ID checked out.
type pullUnpacker struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ready   map[digest.Digest]chan struct{} // closed when the blob is in the store
	started bool
	done    chan struct{} // closed when the goroutine has finished
	err     error         // its result, once done is closed
	created []string      // snapshots it committed, oldest first
}

func (e *Engine) newPullUnpacker(ctx context.Context) *pullUnpacker {
	ctx, cancel := context.WithCancel(ctx)
	return &pullUnpacker{e: e, ctx: ctx, cancel: cancel, ready: map[digest.Digest]chan struct{}{}, done: make(chan struct{})}
}

// readyChan returns the channel of blob d; u.mu must be held.
func (u *pullUnpacker) readyChan(d digest.Digest) chan struct{} {
	ch, ok := u.ready[d]
	if !ok {
		ch = make(chan struct{})
		u.ready[d] = ch
	}
	return ch
}

// Manifest checks the config's diff IDs against the manifest's layers and
// starts unpacking; see image.LayerSink.
func (u *pullUnpacker) Manifest(m ocispec.Manifest, config []byte) error {
	var cfg ocispec.Image
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("image config %s: %v: %w", m.Config.Digest, err, errdefs.ErrDataLoss)
	}
	diffIDs := cfg.RootFS.DiffIDs
	if len(diffIDs) != len(m.Layers) {
		return fmt.Errorf("image config %s lists %d diff IDs for %d layers: %w", m.Config.Digest, len(diffIDs), len(m.Layers), errdefs.ErrDataLoss)
	}
	for _, d := range diffIDs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("image config %s: diff ID %q: %v: %w", m.Config.Digest, d, err, errdefs.ErrDataLoss)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.started {
		return fmt.Errorf("pull unpacker: manifest given twice: %w", errdefs.ErrFailedPrecondition)
	}
	u.started = true
	for _, l := range m.Layers {
		u.readyChan(l.Digest)
	}
	go u.run(m.Layers, diffIDs)
	return nil
}

// LayerReady marks blob d as present; see image.LayerSink.
func (u *pullUnpacker) LayerReady(d digest.Digest) {
	u.mu.Lock()
	defer u.mu.Unlock()
	ch := u.readyChan(d)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (u *pullUnpacker) run(layers []ocispec.Descriptor, diffIDs []digest.Digest) {
	err := u.unpackAll(layers, diffIDs)
	u.mu.Lock()
	u.err = err
	u.mu.Unlock()
	close(u.done)
}

func (u *pullUnpacker) unpackAll(layers []ocispec.Descriptor, diffIDs []digest.Digest) error {
	chains := chainIDs(diffIDs)
	parent := ""
	for i, l := range layers {
		name := chains[i].String()
		if _, err := u.e.snaps.Stat(u.ctx, name); err == nil {
			parent = name
			continue
		}
		u.mu.Lock()
		ch := u.readyChan(l.Digest)
		u.mu.Unlock()
		select {
		case <-ch:
		case <-u.ctx.Done():
			return u.ctx.Err()
		}
		committed, err := u.e.applyLayer(u.ctx, l, diffIDs[i], name, parent)
		if err != nil {
			return fmt.Errorf("unpacking layer %s: %w", l.Digest.Encoded()[:12], err)
		}
		if committed {
			u.mu.Lock()
			u.created = append(u.created, name)
			u.mu.Unlock()
		}
		parent = name
	}
	return nil
}

// wait waits for the unpack to finish and returns its error; nil if
// Manifest was never called.
func (u *pullUnpacker) wait() error {
	u.mu.Lock()
	started := u.started
	u.mu.Unlock()
	if !started {
		return nil
	}
	<-u.done
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// abort stops the unpack, waits for it and removes the snapshots it
// committed (newest first), so that a failed pull leaves only verified
// blobs behind. A snapshot another image or container has built on since
// stays.
func (u *pullUnpacker) abort() {
	u.cancel()
	_ = u.wait()
	u.mu.Lock()
	created := slices.Clone(u.created)
	u.mu.Unlock()
	ctx := context.WithoutCancel(u.ctx)
	for _, name := range slices.Backward(created) {
		if err := u.e.snaps.Remove(ctx, name); err != nil {
			break // in use: so are its parents
		}
	}
}

// applyLayer unpacks one layer blob into a new snapshot committed as name
// and reports whether it was this call that committed it. The uncompressed
// stream must hash to diffID. A concurrent unpack of the same layer by
// another process is fine: the first commit wins.
func (e *Engine) applyLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, name, parent string) (committed bool, err error) {
	defer trace("unpack layer " + desc.Digest.Encoded()[:12])()
	key := fmt.Sprintf("extract-%s-%s", newID()[:12], name)
	mounts, err := e.snaps.Prepare(ctx, key, parent)
	if err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			e.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	target, err := os.MkdirTemp(filepath.Join(e.opts.RunRoot), "apply-")
	if err != nil {
		return false, err
	}
	defer os.Remove(target)
	if err := mountVolatile(mounts, target); err != nil {
		return false, err
	}
	applyErr := e.applyBlob(ctx, desc, diffID, target)
	if err := mount.Unmount(target); err != nil && applyErr == nil {
		applyErr = err
	}
	if applyErr != nil {
		return false, applyErr
	}
	if err := e.snaps.Commit(ctx, name, key); err != nil {
		if errdefs.IsAlreadyExists(err) {
			e.snaps.Remove(ctx, key)
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// mountVolatile mounts an extract snapshot. An overlay mount gets the
// "volatile" option (Linux 5.10+; without it when the kernel refuses it):
// unmounting a plain overlay syncs the whole upper file system, which made
// every layer wait for the disk (about 50-100 ms per 17 MB layer here).
// Unpacked layers are left to the kernel's writeback, as Docker and
// containerd (sync_fs off by default) leave them; the blobs they come from
// are synced (content.Writer.Commit). The work directory that "volatile"
// marks goes when the snapshot is committed.
func mountVolatile(mounts []mount.Mount, target string) error {
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		return mount.All(mounts, target)
	}
	m := mounts[0]
	v := m
	v.Options = append(slices.Clone(m.Options), "volatile")
	if err := mount.All([]mount.Mount{v}, target); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		return mount.All(mounts, target)
	}
	return nil
}

func (e *Engine) applyBlob(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, target string) error {
	f, err := e.content.Open(desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return err
	}
	defer r.Close()
	h := diffID.Algorithm().Hash()
	ar := newHashAhead(r, h)
	defer ar.Close()
	if _, err := archive.Apply(ctx, target, ar); err != nil {
		return err
	}
	// Hash what follows the tar's end-of-archive marker too: the diff ID
	// covers the whole stream.
	if _, err := io.Copy(io.Discard, ar); err != nil {
		return err
	}
	ar.Close()
	if got := digest.NewDigest(diffID.Algorithm(), h); got != diffID {
		return fmt.Errorf("layer content hashes to %s, the image config says %s: %w", got, diffID, errdefs.ErrDataLoss)
	}
	return nil
}

// Read-ahead of hashAhead: chunks of aheadChunk bytes, aheadChunks of them
// in flight.
const (
	aheadChunk  = 256 << 10
	aheadChunks = 4
)

// hashAhead is an io.Reader over r that also feeds every byte to a hash,
// with the work split in three: one goroutine reads (decompresses) r
// ahead in chunks, another hashes them, and the caller consumes them. A
// layer's unpack then costs about its slowest part instead of the sum.
// Close it before reading the hash.
type hashAhead struct {
	chunks    chan *aheadChunkBuf // reader → consumer; closed when the reader stops
	free      chan []byte
	stop      chan struct{}
	hashed    chan struct{} // closed when the hasher has finished
	closeOnce sync.Once
	cur       *aheadChunkBuf
	off       int
}

type aheadChunkBuf struct {
	b    []byte
	err  error // what r returned after b: io.EOF at the end
	refs atomic.Int32
}

func newHashAhead(r io.Reader, h hash.Hash) *hashAhead {
	a := &hashAhead{
		chunks: make(chan *aheadChunkBuf, aheadChunks),
		free:   make(chan []byte, aheadChunks),
		stop:   make(chan struct{}),
		hashed: make(chan struct{}),
	}
	for range aheadChunks {
		a.free <- make([]byte, aheadChunk)
	}
	toHash := make(chan *aheadChunkBuf, aheadChunks)
	go func() {
		defer close(a.hashed)
		for c := range toHash {
			h.Write(c.b)
			a.release(c)
		}
	}()
	go func() {
		defer close(toHash)
		defer close(a.chunks)
		for {
			var buf []byte
			select {
			case buf = <-a.free:
			case <-a.stop:
				return
			}
			n, err := io.ReadFull(r, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			c := &aheadChunkBuf{b: buf[:n], err: err}
			c.refs.Store(2)
			toHash <- c // never blocks: at most aheadChunks buffers exist
			select {
			case a.chunks <- c:
			case <-a.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

// release returns c's buffer once both the hasher and the consumer are
// done with it.
func (a *hashAhead) release(c *aheadChunkBuf) {
	if c.refs.Add(-1) == 0 {
		a.free <- c.b[:cap(c.b)]
	}
}

func (a *hashAhead) Read(p []byte) (int, error) {
	for a.cur == nil || a.off == len(a.cur.b) {
		if a.cur != nil {
			if a.cur.err != nil {
				return 0, a.cur.err
			}
			a.release(a.cur)
			a.cur = nil
		}
		c, ok := <-a.chunks
		if !ok {
			return 0, io.ErrClosedPipe // closed
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, a.cur.b[a.off:])
	a.off += n
	return n, nil
}

// Close stops the read-ahead and waits until the hash has taken in every
// byte read so far (after io.EOF: the whole stream). It may be called any
// number of times.
func (a *hashAhead) Close() error {
	a.closeOnce.Do(func() { close(a.stop) })
	<-a.hashed
	return nil
}

// decompress detects gzip, zstd or an uncompressed tar by magic number.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, err := r.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(r)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}
