package imageops

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuiltinHello is the name of the built-in hello image (Hello). It is
// made locally on first use and never looked up in a registry.
const BuiltinHello = "localhost/hello:latest"

// IsBuiltin reports whether named is the built-in hello image.
func IsBuiltin(named reference.Named) bool { return named.String() == BuiltinHello }

// Builtin makes, stores and registers the built-in hello image.
func (im *Images) Builtin(ctx context.Context) (image.Record, error) {
	img, err := Hello()
	if err != nil {
		return image.Record{}, err
	}
	rec, err := image.Write(ctx, im.Content, BuiltinHello, img)
	if err != nil {
		return image.Record{}, err
	}
	return rec, im.Register(ctx, rec)
}

// Pull fetches ref (any Docker-style reference) from its registry with
// image.Pull, unpacking its layers while the later ones download
// (unpack.Sink), and registers the name. platform is "os/arch[/variant]"
// or an architecture alone ("" for this host's); insecure allows plain
// HTTP (so do the engine's insecure registries); progress, when set,
// receives Docker-style status lines ending with "Status: Downloaded newer
// image for REF" or "Status: Image is up to date for REF" (the name
// already named this image). The built-in hello image is made locally
// instead.
//
// A malformed ref or platform gives errdefs.ErrInvalidArgument; see
// image.Pull for the other errors. Nothing is registered unless every
// blob verified and every layer unpacked. A failed pull removes the
// snapshots and the blobs it committed (blobs a registered image uses
// stay); a cancelled pull (ctx) removes its snapshots but keeps its
// verified blobs, which the next pull reuses.
func (im *Images) Pull(ctx context.Context, ref, platform string, insecure bool, kc authn.Keychain, progress io.Writer) (image.Record, error) {
	rec, updated, err := im.PullUpdated(ctx, ref, platform, insecure, kc, progress)
	if err == nil && progress != nil {
		named, _ := image.ParseReference(ref) // with its default tag, as docker says
		PullStatus(progress, named.String(), updated)
	}
	return rec, err
}

// PullStatus prints Docker's last pull line for ref (familiar form), as
// Pull does, for a caller that pulled with PullUpdated (`pull -a` prints
// one for the repository).
func PullStatus(progress io.Writer, ref string, updated bool) {
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		if !reference.IsNameOnly(named) {
			ref = reference.FamiliarString(named)
		} else {
			ref = reference.FamiliarName(named)
		}
	}
	if updated {
		fmt.Fprintf(progress, "Status: Downloaded newer image for %s\n", ref)
	} else {
		fmt.Fprintf(progress, "Status: Image is up to date for %s\n", ref)
	}
}

// PullUpdated is Pull without the final "Status:" line; it also reports
// whether the name now names another image than before the pull (Docker's
// "Downloaded newer image" rather than "Image is up to date"). A
// single-platform image whose config does not match an explicit platform
// is kept, with Docker's warning on progress.
func (im *Images) PullUpdated(ctx context.Context, ref, platform string, insecure bool, kc authn.Keychain, progress io.Writer) (image.Record, bool, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return image.Record{}, false, err
	}
	if IsBuiltin(named) {
		rec, err := im.Builtin(ctx)
		return rec, err == nil, err
	}
	popts := image.PullOptions{Insecure: insecure || im.insecureHost(reference.Domain(named)), Progress: progress, Keychain: kc}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return image.Record{}, false, err
		}
		popts.Platform = &p
	}
	var before digest.Digest // what the name named before
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		if old, err := image.Get(tx, named.String()); err == nil {
			before = old.Config
		}
		return nil
	}); err != nil {
		return image.Record{}, false, err
	}
	popts.Known = func(id digest.Digest) bool { return im.registered(ctx, id) }
	defer probe.Trace("pull")()
	sink := im.Layers.NewSink(ctx)
	defer sink.Close()
	popts.Layers = sink
	var mu sync.Mutex
	var added []digest.Digest
	popts.Committed = func(d digest.Digest) {
		mu.Lock()
		added = append(added, d)
		mu.Unlock()
	}
	rec, err := image.Pull(ctx, im.Content, named, popts)
	if err == nil {
		if err = sink.Wait(); err != nil {
			err = fmt.Errorf("pulling %s: %w", reference.FamiliarString(named), err)
		}
	}
	if err == nil {
		if rec, err = im.register(ctx, rec, sink.Sizes()); err != nil {
			err = fmt.Errorf("pulling %s: %w", reference.FamiliarString(named), err)
		}
	}
	if err != nil {
		sink.Abort()
		if ctx.Err() != nil {
			return image.Record{}, false, ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		if rerr := im.removeUnusedBlobs(ctx, added); rerr != nil {
			err = fmt.Errorf("%w (and removing its blobs: %v)", err, rerr)
		}
		return image.Record{}, false, err
	}
	if popts.Platform != nil && rec.Index == nil && progress != nil {
		im.warnPlatform(rec, named, *popts.Platform, progress)
	}
	return rec, before != rec.Config, nil
}

// warnPlatform prints Docker's warning when the single-platform image rec
// is not for the platform the user asked for (Docker keeps such an image,
// for compatibility, and warns).
func (im *Images) warnPlatform(rec image.Record, named reference.Named, want ocispec.Platform, progress io.Writer) {
	cfg, _, err := im.Manifest(rec)
	if err != nil {
		return
	}
	got := ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if got.OS == want.OS && got.Architecture == want.Architecture && (want.Variant == "" || got.Variant == "" || got.Variant == want.Variant) {
		return
	}
	fmt.Fprintf(progress, "WARNING: image with reference %s was found but its platform (%s) does not match the specified platform (%s)\n",
		reference.FamiliarString(named), image.FormatPlatform(got), image.FormatPlatform(want))
}

// registered reports whether an image with ID id is registered.
func (im *Images) registered(ctx context.Context, id digest.Digest) bool {
	found := false
	_ = im.DB.View(ctx, func(tx *state.Tx) error {
		all, err := image.List(tx)
		for _, r := range all {
			found = found || r.Config == id
		}
		return err
	})
	return found
}

// parsePlatform is image.ParsePlatform.
func parsePlatform(s string) (ocispec.Platform, error) { return image.ParsePlatform(s) }

// v1Platform parses "os/arch[/variant]" ("": nil) as parsePlatform.
func v1Platform(s string) (*v1.Platform, error) {
	if s == "" {
		return nil, nil
	}
	p, err := parsePlatform(s)
	if err != nil {
		return nil, err
	}
	return &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}, nil
}
