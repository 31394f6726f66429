package image

import (
	"bytes"
	"fmt"
	"io"

	"github.com/berthproject/berth/image/content"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Stored returns the image rec names as a go-containerregistry v1.Image
// read from cs: its manifest, config and layer blobs are the stored bytes,
// so the image's digest is rec.Target.Digest. A blob missing from cs gives
// errdefs.ErrNotFound when first read.
func Stored(cs *content.Store, rec Record) (v1.Image, error) {
	raw, err := cs.ReadAll(rec.Target.Digest)
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", rec.Name, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("manifest of %s: %v: %w", rec.Name, err, errdefs.ErrDataLoss)
	}
	mt := types.MediaType(rec.Target.MediaType)
	if mt == "" {
		mt = m.MediaType
	}
	return partial.CompressedToImage(&storedImage{cs: cs, manifest: m, raw: raw, mediaType: mt})
}

type storedImage struct {
	cs        *content.Store
	manifest  *v1.Manifest
	raw       []byte
	mediaType types.MediaType
}

func (s *storedImage) RawConfigFile() ([]byte, error) {
	return s.cs.ReadAll(digest.Digest(s.manifest.Config.Digest.String()))
}

func (s *storedImage) MediaType() (types.MediaType, error) { return s.mediaType, nil }

func (s *storedImage) RawManifest() ([]byte, error) { return s.raw, nil }

func (s *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == s.manifest.Config.Digest {
		return &storedBlob{cs: s.cs, desc: s.manifest.Config}, nil
	}
	for _, l := range s.manifest.Layers {
		if l.Digest == h {
			return &storedBlob{cs: s.cs, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s not in manifest: %w", h, errdefs.ErrNotFound)
}

// storedBlob is one blob of a stored image, read from the content store.
type storedBlob struct {
	cs   *content.Store
	desc v1.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error) { return b.desc.Digest, nil }

func (b *storedBlob) Compressed() (io.ReadCloser, error) {
	return b.cs.Open(digest.Digest(b.desc.Digest.String()))
}

func (b *storedBlob) Size() (int64, error) { return b.desc.Size, nil }

func (b *storedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

func (b *storedBlob) Descriptor() (*v1.Descriptor, error) { d := b.desc; return &d, nil }
