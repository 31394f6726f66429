package imageops

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/berthproject/berth/engine/internal/probe"
	"github.com/berthproject/berth/image"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
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
// ("" for this host's); insecure allows plain HTTP (so do the engine's
// insecure registries); progress, when set, receives Docker-style status
// lines. The built-in hello image is made locally instead.
//
// A malformed ref or platform gives errdefs.ErrInvalidArgument; see
// image.Pull for the other errors. Nothing is registered unless every
// blob verified and every layer unpacked. A failed pull removes the
// snapshots and the blobs it committed (blobs a registered image uses
// stay); a cancelled pull (ctx) removes its snapshots but keeps its
// verified blobs, which the next pull reuses.
func (im *Images) Pull(ctx context.Context, ref, platform string, insecure bool, progress io.Writer) (image.Record, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return image.Record{}, err
	}
	if IsBuiltin(named) {
		return im.Builtin(ctx)
	}
	popts := image.PullOptions{Insecure: insecure || im.insecureHost(reference.Domain(named)), Progress: progress}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return image.Record{}, err
		}
		popts.Platform = &p
	}
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
		if err = im.Register(ctx, rec); err != nil {
			err = fmt.Errorf("pulling %s: %w", reference.FamiliarString(named), err)
		}
	}
	if err != nil {
		sink.Abort()
		if ctx.Err() != nil {
			return image.Record{}, ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		if rerr := im.removeUnusedBlobs(ctx, added); rerr != nil {
			err = fmt.Errorf("%w (and removing its blobs: %v)", err, rerr)
		}
		return image.Record{}, err
	}
	if progress != nil {
		fmt.Fprintf(progress, "Status: Downloaded newer image for %s\n", reference.FamiliarString(named))
	}
	return rec, nil
}

// parsePlatform parses "os/arch[/variant]"; anything else gives
// errdefs.ErrInvalidArgument.
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q (want os/arch[/variant]): %w", s, errdefs.ErrInvalidArgument)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

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
