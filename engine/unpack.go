package engine

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/mount"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
		if err := e.applyLayer(ctx, l, cfg.RootFS.DiffIDs[i], name, parent); err != nil {
			return "", fmt.Errorf("unpacking layer %s: %w", l.Digest.Encoded()[:12], err)
		}
		parent = name
	}
	return parent, nil
}

// applyLayer unpacks one layer blob into a new snapshot committed as name.
// The uncompressed stream must hash to diffID. A concurrent unpack of the
// same layer by another process is fine: the first commit wins.
func (e *Engine) applyLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, name, parent string) (err error) {
	key := fmt.Sprintf("extract-%s-%s", newID()[:12], name)
	mounts, err := e.snaps.Prepare(ctx, key, parent)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			e.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	target, err := os.MkdirTemp(filepath.Join(e.opts.RunRoot), "apply-")
	if err != nil {
		return err
	}
	defer os.Remove(target)
	if err := mount.All(mounts, target); err != nil {
		return err
	}
	applyErr := e.applyBlob(ctx, desc, diffID, target)
	if err := mount.Unmount(target); err != nil && applyErr == nil {
		applyErr = err
	}
	if applyErr != nil {
		return applyErr
	}
	if err := e.snaps.Commit(ctx, name, key); err != nil {
		if errdefs.IsAlreadyExists(err) {
			e.snaps.Remove(ctx, key)
			return nil
		}
		return err
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
	tr := io.TeeReader(r, h)
	if _, err := archive.Apply(ctx, target, tr); err != nil {
		return err
	}
	// Hash what follows the tar's end-of-archive marker too: the diff ID
	// covers the whole stream.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return err
	}
	if got := digest.NewDigest(diffID.Algorithm(), h); got != diffID {
		return fmt.Errorf("layer content hashes to %s, the image config says %s: %w", got, diffID, errdefs.ErrDataLoss)
	}
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
