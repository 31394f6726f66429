// Package unpack turns image layers into committed snapshots: each
// layer blob of the content store is decompressed, checked against its
// diff ID and applied (package archive) into a snapshot named by its
// chain ID, either for a stored image (Unpack) or while a pull downloads
// (Sink, the pull's image.LayerSink). It does not import package engine:
// the engine hands it an Unpacker.
package unpack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/mount"
	"github.com/berthproject/berth/snapshot"
	"github.com/containerd/errdefs"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Unpacker is what unpacking needs of the engine. Every field must be
// set.
type Unpacker struct {
	// Snaps holds the committed layers (key: chain ID) and the
	// temporary extract snapshots.
	Snaps snapshot.Snapshotter
	// Content holds the layer blobs, verified.
	Content *content.Store
	// Scratch is a directory for the temporary mount points (the
	// engine's run root).
	Scratch string
}

// ChainIDs returns the chain ID of every layer prefix (OCI image spec,
// "Layer ChainID"), base first: the names of the committed snapshots.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i := range diffIDs {
		out[i] = identity.ChainID(diffIDs[:i+1])
	}
	return out
}

// Unpack makes sure every layer of the image (layers: the manifest's
// descriptors, base first, one per diff ID of cfg) is a committed snapshot
// named by its chain ID and returns the top chain ID ("" for an image
// with no layers). Layers already unpacked (by this or another image) are
// reused. A layer whose content does not hash to its diff ID gives
// errdefs.ErrDataLoss; see archive.Apply for a malformed layer.
func (u *Unpacker) Unpack(ctx context.Context, cfg ocispec.Image, layers []ocispec.Descriptor) (string, error) {
	top, _, err := u.UnpackSized(ctx, cfg, layers)
	return top, err
}

// UnpackSized is Unpack that also returns the uncompressed size in bytes
// (the length of the layer's tar stream, which its diff ID fixes) of each
// layer this call applied, keyed by diff ID. Layers already unpacked are
// not measured: the caller recorded their sizes when they were applied
// (or measures them with UncompressedSize).
func (u *Unpacker) UnpackSized(ctx context.Context, cfg ocispec.Image, layers []ocispec.Descriptor) (string, map[digest.Digest]int64, error) {
	sizes := map[digest.Digest]int64{}
	top, err := u.unpackLayers(ctx, layers, cfg.RootFS.DiffIDs, nil, func(l layerEvent) {
		if l.applied {
			sizes[l.diffID] = l.size
		}
	})
	return top, sizes, err
}

// UncompressedSize reads the layer blob desc (gzip, zstd or plain tar)
// from the content store and returns the length in bytes of its
// uncompressed stream. It costs a full decompression; a missing blob
// gives the content store's errdefs.ErrNotFound.
func (u *Unpacker) UncompressedSize(desc ocispec.Descriptor) (int64, error) {
	r, err := u.openUncompressed(desc)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return io.Copy(io.Discard, r)
}

// openUncompressed opens the layer blob desc from the content store and
// returns its uncompressed stream; closing it closes the blob too.
func (u *Unpacker) openUncompressed(desc ocispec.Descriptor) (io.ReadCloser, error) {
	f, err := u.Content.Open(desc.Digest)
	if err != nil {
		return nil, err
	}
	r, err := decompress(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, closeBoth{r, f}}, nil
}

// closeBoth closes a decompressor, then the file under it.
type closeBoth [2]io.Closer

func (c closeBoth) Close() error { return errors.Join(c[0].Close(), c[1].Close()) }

// layerEvent tells unpackLayers' caller about one layer, in layer order:
// applied (with its uncompressed size) when this call unpacked it, or
// found already unpacked.
type layerEvent struct {
	desc    ocispec.Descriptor
	diffID  digest.Digest
	name    string // the snapshot: the chain ID
	applied bool   // unpacked by this call (size is then set)
	made    bool   // this call committed the snapshot (another may have won)
	size    int64
}

// unpackLayers makes layers (with their diffIDs) committed snapshots,
// base first, and returns the top chain ID. Before applying a layer it
// calls ready (when set), which returns once the blob is in the store;
// done (when set) learns about every layer, in order, once it is a
// committed snapshot.
func (u *Unpacker) unpackLayers(ctx context.Context, layers []ocispec.Descriptor, diffIDs []digest.Digest, ready func(digest.Digest) error, done func(layerEvent)) (string, error) {
	chains := ChainIDs(diffIDs)
	parent := ""
	for i, l := range layers {
		ev := layerEvent{desc: l, diffID: diffIDs[i], name: chains[i].String()}
		if _, err := u.Snaps.Stat(ctx, ev.name); err != nil {
			if ready != nil {
				if err := ready(l.Digest); err != nil {
					return "", err
				}
			}
			made, size, err := u.applyLayer(ctx, l, diffIDs[i], ev.name, parent)
			if err != nil {
				return "", fmt.Errorf("unpacking layer %s: %w", l.Digest.Encoded()[:12], err)
			}
			ev.applied, ev.made, ev.size = true, made, size
		}
		if done != nil {
			done(ev)
		}
		parent = ev.name
	}
	return parent, nil
}

// Remove deletes the layer snapshots of an image with diffIDs, newest
// first, stopping at the first one another image or a container builds on
// (its parents are then in use too). Snapshots already gone are skipped.
func (u *Unpacker) Remove(ctx context.Context, diffIDs []digest.Digest) error {
	chains := ChainIDs(diffIDs)
	for i := len(chains) - 1; i >= 0; i-- {
		if err := u.Snaps.Remove(ctx, chains[i].String()); err != nil {
			if errdefs.IsFailedPrecondition(err) {
				break // shared with another image or a container
			}
			if !errdefs.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}

// Sink unpacks the layers of a pull while it downloads: it is the pull's
// image.LayerSink (image.PullOptions.Layers). Layer i is applied as soon
// as its blob is in the content store (verified and committed by
// image.Pull) and layer i-1 is a committed snapshot, in one goroutine, so
// the unpack of early layers overlaps the download of later ones. A
// snapshot is committed only after its layer's diff ID checked out.
type Sink struct {
	u      *Unpacker
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ready   map[digest.Digest]chan struct{} // closed when the blob is in the store
	started bool
	done    chan struct{} // closed when the goroutine has finished
	err     error         // its result, once done is closed
	created []string      // snapshots it committed, oldest first
	sizes   map[digest.Digest]int64
	onDone  func(digest.Digest) // Manifest's unpacked; nil: none
}

// NewSink returns a Sink for one pull. Its unpack runs under ctx; call
// Close when the pull is over (Wait or Abort first).
func (u *Unpacker) NewSink(ctx context.Context) *Sink {
	ctx, cancel := context.WithCancel(ctx)
	return &Sink{u: u, ctx: ctx, cancel: cancel, ready: map[digest.Digest]chan struct{}{}, done: make(chan struct{}), sizes: map[digest.Digest]int64{}}
}

// readyChan returns the channel of blob d; s.mu must be held.
func (s *Sink) readyChan(d digest.Digest) chan struct{} {
	ch, ok := s.ready[d]
	if !ok {
		ch = make(chan struct{})
		s.ready[d] = ch
	}
	return ch
}

// Manifest checks the config's diff IDs against the manifest's layers and
// starts unpacking; see image.LayerSink. unpacked (when set) is called
// with each layer's blob digest, in layer order, once it is a committed
// snapshot.
func (s *Sink) Manifest(m ocispec.Manifest, config []byte, unpacked func(digest.Digest)) error {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("pull unpacker: manifest given twice: %w", errdefs.ErrFailedPrecondition)
	}
	s.started = true
	s.onDone = unpacked
	for _, l := range m.Layers {
		s.readyChan(l.Digest)
	}
	go s.run(m.Layers, diffIDs)
	return nil
}

// LayerReady marks blob d as present; see image.LayerSink.
func (s *Sink) LayerReady(d digest.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.readyChan(d)
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (s *Sink) run(layers []ocispec.Descriptor, diffIDs []digest.Digest) {
	err := s.unpackAll(layers, diffIDs)
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.done)
}

func (s *Sink) unpackAll(layers []ocispec.Descriptor, diffIDs []digest.Digest) error {
	ready := func(d digest.Digest) error {
		s.mu.Lock()
		ch := s.readyChan(d)
		s.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	_, err := s.u.unpackLayers(s.ctx, layers, diffIDs, ready, func(ev layerEvent) {
		s.mu.Lock()
		if ev.made {
			s.created = append(s.created, ev.name)
		}
		if ev.applied {
			s.sizes[ev.diffID] = ev.size
		}
		s.mu.Unlock()
		if s.onDone != nil {
			s.onDone(ev.desc.Digest)
		}
	})
	return err
}

// Sizes returns the uncompressed size in bytes of each layer the sink
// unpacked, keyed by diff ID (see UnpackSized); call it after Wait.
func (s *Sink) Sizes() map[digest.Digest]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.sizes)
}

// Wait waits for the unpack to finish and returns its error; nil if
// Manifest was never called.
func (s *Sink) Wait() error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close releases the sink's context; it does not wait. It may be called
// any number of times.
func (s *Sink) Close() { s.cancel() }

// Abort stops the unpack, waits for it and removes the snapshots it
// committed (newest first), so that a failed pull leaves only verified
// blobs behind. A snapshot another image or container has built on since
// stays.
func (s *Sink) Abort() {
	s.cancel()
	_ = s.Wait()
	s.mu.Lock()
	created := slices.Clone(s.created)
	s.mu.Unlock()
	ctx := context.WithoutCancel(s.ctx)
	for _, name := range slices.Backward(created) {
		if err := s.u.Snaps.Remove(ctx, name); err != nil {
			break // in use: so are its parents
		}
	}
}

// applyLayer unpacks one layer blob into a new snapshot committed as name
// and reports whether it was this call that committed it, and the
// uncompressed stream's length in bytes. The uncompressed stream must hash
// to diffID. A concurrent unpack of the same layer by another process is
// fine: the first commit wins.
func (u *Unpacker) applyLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, name, parent string) (committed bool, size int64, err error) {
	defer probe.Trace("unpack layer " + desc.Digest.Encoded()[:12])()
	key := fmt.Sprintf("extract-%s-%s", strings.ToLower(rand.Text()[:12]), name)
	mounts, err := u.Snaps.Prepare(ctx, key, parent)
	if err != nil {
		return false, 0, err
	}
	defer func() {
		if err != nil {
			u.Snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	target, err := os.MkdirTemp(u.Scratch, "apply-")
	if err != nil {
		return false, 0, err
	}
	defer os.Remove(target)
	if err := mountVolatile(mounts, target); err != nil {
		return false, 0, err
	}
	size, applyErr := u.applyBlob(ctx, desc, diffID, target)
	if err := mount.Unmount(target); err != nil && applyErr == nil {
		applyErr = err
	}
	if applyErr != nil {
		return false, 0, applyErr
	}
	if err := u.Snaps.Commit(ctx, name, key); err != nil {
		if errdefs.IsAlreadyExists(err) {
			u.Snaps.Remove(ctx, key)
			return false, size, nil
		}
		return false, 0, err
	}
	return true, size, nil
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

// applyBlob applies the layer blob desc to the mounted directory target,
// checking that its uncompressed stream hashes to diffID, and returns the
// stream's length in bytes.
func (u *Unpacker) applyBlob(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, target string) (int64, error) {
	r, err := u.openUncompressed(desc)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	h := diffID.Algorithm().Hash()
	cr := &countingReader{r: r}
	ar := newHashAhead(cr, h)
	defer ar.Close()
	if _, err := archive.Apply(ctx, target, ar); err != nil {
		return 0, err
	}
	// Hash what follows the tar's end-of-archive marker too: the diff ID
	// covers the whole stream.
	if _, err := io.Copy(io.Discard, ar); err != nil {
		return 0, err
	}
	ar.Close() // the read-ahead has stopped: cr.n is final
	if got := digest.NewDigest(diffID.Algorithm(), h); got != diffID {
		return 0, fmt.Errorf("layer content hashes to %s, the image config says %s: %w", got, diffID, errdefs.ErrDataLoss)
	}
	return cr.n.Load(), nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
