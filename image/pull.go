package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/image/content"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// PullOptions tunes Pull. The zero value pulls the host's platform over
// HTTPS (plain HTTP only for loopback registries, as Docker allows) with
// credentials from Docker's config.json.
type PullOptions struct {
	// Platform selects a manifest from an index; default: this host's
	// linux/GOARCH.
	Platform *ocispec.Platform
	// Insecure allows plain HTTP and unverified TLS for this registry.
	Insecure bool
	// Keychain supplies credentials; default authn.DefaultKeychain
	// (~/.docker/config.json, $DOCKER_CONFIG).
	Keychain authn.Keychain
	// Transport carries registry traffic; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Progress receives Docker-style status lines ("abc123: Pull complete");
	// nil prints nothing.
	Progress io.Writer
	// Concurrency is how many layers download at once; default 3 (Docker's).
	Concurrency int
}

func (o PullOptions) remoteOptions(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("berth")}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	p := o.platform()
	opts = append(opts, remote.WithPlatform(v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}))
	return opts
}

func (o PullOptions) platform() ocispec.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// RemoteReference converts a normalized reference into go-containerregistry's
// form; insecure allows plain HTTP.
func RemoteReference(named reference.Named, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(named.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return ref, nil
}

// Pull downloads the image named by named (normalized) into cs: the index
// if any, the manifest for the wanted platform, the config and every layer
// blob, each verified against its digest before it is committed. It returns
// the Record to register; the caller registers it (and unpacks the layers).
//
// Errors carry the image name and the cause in one line and match:
// errdefs.ErrNotFound (no such repository, tag, or platform),
// errdefs.ErrUnauthenticated (registry refused the credentials),
// errdefs.ErrUnavailable (registry unreachable or failing with 5xx),
// errdefs.ErrNotImplemented (unsupported media type),
// errdefs.ErrDataLoss (content does not match its digest).
// Blobs committed before a failure stay in cs (they are verified and reused
// by a later pull); nothing is registered.
func Pull(ctx context.Context, cs *content.Store, named reference.Named, opts PullOptions) (Record, error) {
	ref, err := RemoteReference(named, opts.Insecure)
	if err != nil {
		return Record{}, err
	}
	rec, err := pull(ctx, cs, ref, named, opts)
	if err != nil {
		return Record{}, classify(named, err)
	}
	return rec, nil
}

func pull(ctx context.Context, cs *content.Store, ref name.Reference, named reference.Named, opts PullOptions) (Record, error) {
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	if t, ok := named.(reference.Tagged); ok {
		fmt.Fprintf(progress, "%s: Pulling from %s\n", t.Tag(), reference.Path(named))
	}
	desc, err := remote.Get(ref, opts.remoteOptions(ctx)...)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Name: named.String(), RepoDigest: digest.Digest(desc.Digest.String()), Created: time.Now().UTC()}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		d := digest.Digest(desc.Digest.String())
		if err := cs.Write(ctx, d, desc.Size, strings.NewReader(string(desc.Manifest))); err != nil {
			return Record{}, err
		}
		rec.Index = &ocispec.Descriptor{MediaType: string(desc.MediaType), Digest: d, Size: desc.Size}
		if img, err = desc.Image(); err != nil {
			p := opts.platform()
			return Record{}, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", platformString(p), errdefs.ErrNotFound)
		}
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return Record{}, err
		}
	default:
		return Record{}, fmt.Errorf("unsupported manifest media type %q: %w", desc.MediaType, errdefs.ErrNotImplemented)
	}
	if err := write(ctx, cs, img, &rec, progress, opts.Concurrency); err != nil {
		return Record{}, err
	}
	fmt.Fprintf(progress, "Digest: %s\n", rec.RepoDigest)
	return rec, nil
}

// Write stores img (any go-containerregistry image: a local build, a
// tarball …) in cs under the normalized name and returns its Record, for
// images that do not come from a registry. Every blob is verified.
func Write(ctx context.Context, cs *content.Store, name string, img v1.Image) (Record, error) {
	rec := Record{Name: name, Created: time.Now().UTC()}
	if err := write(ctx, cs, img, &rec, io.Discard, 1); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// write stores img's config, layers and manifest (in that order: a stored
// manifest means all it names is present) and fills rec's Target and Config.
func write(ctx context.Context, cs *content.Store, img v1.Image, rec *Record, progress io.Writer, concurrency int) error {
	manifest, err := img.Manifest()
	if err != nil {
		return err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mt, _ := img.MediaType()
	mdigest := digest.FromBytes(rawManifest)
	rec.Target = ocispec.Descriptor{MediaType: string(mt), Digest: mdigest, Size: int64(len(rawManifest))}
	if p := manifest.Config.Platform; p != nil {
		rec.Target.Platform = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	if !manifest.Config.MediaType.IsConfig() {
		return fmt.Errorf("unsupported config media type %q: %w", manifest.Config.MediaType, errdefs.ErrNotImplemented)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	rec.Config = digest.Digest(manifest.Config.Digest.String())
	if err := cs.Write(ctx, rec.Config, manifest.Config.Size, strings.NewReader(string(rawConfig))); err != nil {
		return err
	}
	if err := fetchLayers(ctx, cs, img, manifest, progress, concurrency); err != nil {
		return err
	}
	// The manifest goes in last: its presence means every blob it names is here.
	if err := cs.Write(ctx, mdigest, int64(len(rawManifest)), strings.NewReader(string(rawManifest))); err != nil {
		return err
	}
	return nil
}

func fetchLayers(ctx context.Context, cs *content.Store, img v1.Image, manifest *v1.Manifest, progress io.Writer, concurrency int) error {
	if concurrency <= 0 {
		concurrency = 3
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(progress, format, args...)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, l := range manifest.Layers {
		d := digest.Digest(l.Digest.String())
		if !l.MediaType.IsLayer() {
			return fmt.Errorf("unsupported layer media type %q: %w", l.MediaType, errdefs.ErrNotImplemented)
		}
		short := d.Encoded()[:12]
		if cs.Has(d) {
			say("%s: Already exists\n", short)
			continue
		}
		g.Go(func() error {
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				return err
			}
			rc, err := layer.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := cs.Write(ctx, d, l.Size, rc); err != nil {
				return err
			}
			say("%s: Pull complete\n", short)
			return nil
		})
	}
	return g.Wait()
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// classify turns registry and network errors into one line naming the image
// and an errdefs category.
func classify(named reference.Named, err error) error {
	fam := reference.FamiliarString(named)
	var terr *transport.Error
	var nerr net.Error
	switch {
	case errors.As(err, &terr):
		msg := terr.Error()
		if len(terr.Errors) > 0 {
			msg = terr.Errors[0].Message
			if msg == "" {
				msg = string(terr.Errors[0].Code)
			}
			msg = strings.ToLower(string(terr.Errors[0].Code)) + ": " + msg
		}
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'berth login': %s: %w", reference.FamiliarName(named), msg, errdefs.ErrUnauthenticated)
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("manifest for %s not found: %s: %w", fam, msg, errdefs.ErrNotFound)
		case terr.StatusCode >= 500:
			return fmt.Errorf("pulling %s: registry answered %d: %s: %w", fam, terr.StatusCode, msg, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("pulling %s: %s: %w", fam, msg, errdefs.ErrUnknown)
	case errdefs.IsNotFound(err), errdefs.IsNotImplemented(err), errdefs.IsDataLoss(err), errdefs.IsInvalidArgument(err):
		return fmt.Errorf("pulling %s: %w", fam, err)
	case errors.As(err, &nerr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("pulling %s: registry unreachable: %v: %w", fam, oneLine(err), errdefs.ErrUnavailable)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("pulling %s: %w", fam, err)
	}
	if strings.Contains(err.Error(), "computed digest") || strings.Contains(err.Error(), "digest mismatch") {
		return fmt.Errorf("pulling %s: %v: %w", fam, oneLine(err), errdefs.ErrDataLoss)
	}
	return fmt.Errorf("pulling %s: %v: %w", fam, oneLine(err), errdefs.ErrUnknown)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
