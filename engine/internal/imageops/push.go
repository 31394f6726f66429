package imageops

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PushOptions tunes Push.
type PushOptions struct {
	// Insecure allows plain HTTP for this push.
	Insecure bool
	// Progress receives Docker's push status (see image.PushOptions): a
	// writer that implements image.ProgressReporter gets structured
	// events (a terminal display), any other one line per status
	// ("abc123def456: Pushed", "abc123def456: Layer already exists");
	// nil for none.
	Progress io.Writer
	// Keychain supplies credentials; default authn.DefaultKeychain
	// (Docker's config.json, its credential helpers included).
	Keychain authn.Keychain
}

// PushResult is what Push sent: the manifest's digest and size in bytes.
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push uploads the stored image named ref to its registry with
// image.Push: layers first (skipping those the registry has, mounting
// those another repository of the registry holds), the manifest last,
// byte for byte as stored, so its digest is the one pulled. Registry I/O
// runs in the unprivileged fetcher when the caller is root. A name that
// is not stored gives errdefs.ErrNotFound; missing or refused
// credentials errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable.
func (im *Images) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return PushResult{}, err
	}
	if _, ok := named.(reference.Digested); ok {
		return PushResult{}, fmt.Errorf("cannot push a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	var rec image.Record
	var others []image.Record
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		if rec, err = image.Get(tx, named.String()); err != nil {
			return err
		}
		others, err = image.List(tx)
		return err
	}); err != nil {
		if errdefs.IsNotFound(err) {
			return PushResult{}, fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarName(named), errdefs.ErrNotFound)
		}
		return PushResult{}, err
	}
	popts := image.PushOptions{
		RemoteOptions: image.RemoteOptions{Insecure: opts.Insecure || im.insecureHost(reference.Domain(named)), Keychain: opts.Keychain},
		Progress:      opts.Progress,
		MountFrom:     im.mountSources(named, others),
	}
	if err := image.Push(ctx, im.Content, named, rec.Target, popts); err != nil {
		return PushResult{}, err
	}
	tag := named.(reference.Tagged).Tag()
	if rec.RepoDigest == "" {
		_ = im.DB.Update(ctx, func(tx *state.Tx) error {
			cur, err := image.Get(tx, rec.Name)
			if err != nil || cur.Config != rec.Config {
				return nil
			}
			cur.RepoDigest = rec.Target.Digest
			return image.Put(tx, cur)
		})
	}
	return PushResult{Tag: tag, Digest: rec.Target.Digest, Size: rec.Target.Size}, nil
}

// mountSources maps each layer of the stored images of named's registry
// but another repository to those repositories' paths, so that a push
// asks the registry to mount a layer it already holds, as Docker does
// from its record of where layers came from.
func (im *Images) mountSources(named reference.Named, recs []image.Record) func(digest.Digest) []string {
	from := map[digest.Digest][]string{}
	for _, r := range recs {
		other, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil || IsDangling(r) || reference.Domain(other) != reference.Domain(named) || reference.Path(other) == reference.Path(named) {
			continue
		}
		var m ocispec.Manifest
		if raw, err := im.Content.ReadAll(r.Target.Digest); err != nil || json.Unmarshal(raw, &m) != nil {
			continue
		}
		for _, l := range m.Layers {
			if p := reference.Path(other); !slices.Contains(from[l.Digest], p) {
				from[l.Digest] = append(from[l.Digest], p)
			}
		}
	}
	return func(d digest.Digest) []string { return from[d] }
}

// PullAllTags pulls every tag of the repository repo (a name without tag
// or digest) with pull, in the registry's tag order, and returns the
// records. The tags are listed by the fetcher (image.ListTags). A
// reference with a tag or digest gives errdefs.ErrInvalidArgument.
func (im *Images) PullAllTags(ctx context.Context, repo string, insecure bool, pull func(ctx context.Context, ref string) (image.Record, error)) ([]image.Record, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", errdefs.ErrInvalidArgument)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a: %w", errdefs.ErrInvalidArgument)
	}
	tags, err := image.ListTags(ctx, named, image.RemoteOptions{Insecure: insecure || im.insecureHost(reference.Domain(named))})
	if err != nil {
		return nil, err
	}
	var out []image.Record
	for _, t := range tags {
		tagged, err := reference.WithTag(named, t)
		if err != nil {
			continue
		}
		rec, err := pull(ctx, tagged.String())
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
	return out, nil
}
