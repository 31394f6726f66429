package engine

import (
	"context"
	"io"

	"github.com/berthproject/berth/engine/internal/imageops"
	"github.com/berthproject/berth/image"
	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions tunes Pull.
type PullOptions struct {
	// Platform as "os/arch[/variant]"; "" for this host's.
	Platform string
	// Insecure allows plain HTTP for this pull (`--tls-verify=false`).
	Insecure bool
	// Progress receives Docker-style status lines; nil for none.
	Progress io.Writer
	// Keychain supplies the registry credential; nil for Docker's
	// config.json. An image.Credential (the API's X-Registry-Auth) is
	// used for this pull only.
	Keychain authn.Keychain
}

// Image describes a stored image as `berth images` lists it.
type Image = imageops.Image

// Pull fetches ref (any Docker-style reference) from its registry, stores
// and unpacks it, and registers the name. A malformed ref gives
// errdefs.ErrInvalidArgument; see image.Pull for the other errors. Layers
// are unpacked while the later ones download, each once its blob is
// verified; nothing is registered unless every blob verified and every
// layer unpacked. A failed pull removes the snapshots and the blobs it
// committed (blobs a registered image uses stay), so that the store keeps
// nothing from it; a cancelled pull (ctx) removes its snapshots but keeps
// its verified blobs, which the next pull reuses.
func (e *Engine) Pull(ctx context.Context, ref string, opts PullOptions) (image.Record, error) {
	rec, err := e.images.Pull(ctx, ref, opts.Platform, opts.Insecure, opts.Keychain, opts.Progress)
	if err == nil {
		e.emit("image", "pull", ref, map[string]string{"name": ref})
	}
	return rec, err
}

// Images lists the stored images, newest first.
func (e *Engine) Images(ctx context.Context) ([]Image, error) { return e.images.List(ctx) }

// ImageConfig returns the OCI config of the stored image ref.
func (e *Engine) ImageConfig(ctx context.Context, ref string) (ocispec.Image, error) {
	return e.images.Config(ctx, ref)
}

// RemovedImage is one line of `rmi` output.
type RemovedImage = imageops.RemovedImage

// RemoveImage removes the name ref (or, given an image ID, every name of
// that image) and deletes the image's content once no name is left. An image
// that a container uses is refused with errdefs.ErrConflict unless force;
// with force the names go but content a container needs stays.
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) ([]RemovedImage, error) {
	rs, err := e.images.Remove(ctx, ref, force)
	e.emitRemovedImages(rs)
	return rs, err
}
