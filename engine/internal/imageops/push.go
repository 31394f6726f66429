package imageops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
)

// PushOptions tunes Push.
type PushOptions struct {
	// Insecure allows plain HTTP for this push.
	Insecure bool
	// Progress receives Docker-style lines ("abc123: Pushed",
	// "abc123: Layer already exists"); nil for none.
	Progress io.Writer
	// Keychain supplies credentials; default authn.DefaultKeychain
	// (Docker's config.json, as `berth login` writes it).
	Keychain authn.Keychain
}

// PushResult is what Push sent: the manifest's digest and size in bytes.
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push uploads the stored image named ref to its registry, layers first
// (skipping those the registry has) and the manifest last, as `docker
// push` does. The manifest is sent byte for byte as stored, so its digest
// is the one pulled. A name that is not stored gives errdefs.ErrNotFound;
// refused credentials errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable.
func (im *Images) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	named, err := image.ParseReference(ref)
	if err != nil {
		return PushResult{}, err
	}
	var rec image.Record
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		rec, err = image.Get(tx, named.String())
		return err
	}); err != nil {
		if errdefs.IsNotFound(err) {
			return PushResult{}, fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarName(named), errdefs.ErrNotFound)
		}
		return PushResult{}, err
	}
	img, err := image.Stored(im.Content, rec)
	if err != nil {
		return PushResult{}, err
	}
	insecure := opts.Insecure || im.insecureHost(reference.Domain(named))
	rref, err := image.RemoteReference(named, insecure)
	if err != nil {
		return PushResult{}, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	fmt.Fprintf(progress, "The push refers to repository [%s]\n", named.Name())
	if err := pushLayers(ctx, rref.Context(), img, kc, progress); err != nil {
		return PushResult{}, classifyPush(named, err)
	}
	if err := remote.Write(rref, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithUserAgent("berth")); err != nil {
		return PushResult{}, classifyPush(named, err)
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	fmt.Fprintf(progress, "%s: digest: %s size: %d\n", tag, rec.Target.Digest, rec.Target.Size)
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

// pushLayers uploads img's layers that repo lacks, newest first, printing
// one line per layer.
func pushLayers(ctx context.Context, repo name.Repository, img v1.Image, kc authn.Keychain, progress io.Writer) error {
	auth, err := kc.Resolve(repo)
	if err != nil {
		return err
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, remote.DefaultTransport, []string{repo.Scope(transport.PushScope)})
	if err != nil {
		return err
	}
	client := &http.Client{Transport: rt}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range slices.Backward(layers) {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		short := d.Hex[:12]
		url := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Fprintf(progress, "%s: Layer already exists\n", short)
			continue
		}
		if err := remote.WriteLayer(repo, l, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithUserAgent("berth")); err != nil {
			return err
		}
		fmt.Fprintf(progress, "%s: Pushed\n", short)
	}
	return nil
}

// classifyPush turns registry and network errors into one line and an
// errdefs category.
func classifyPush(named reference.Named, err error) error {
	return classifyRegistry("pushing", named, err)
}

// classifyRegistry does it for any registry operation (verb: "pushing", "listing tags of").
func classifyRegistry(verb string, named reference.Named, err error) error {
	var terr *transport.Error
	var nerr net.Error
	switch {
	case errors.As(err, &terr):
		msg := registryMessage(terr)
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w", msg, errdefs.ErrUnauthenticated)
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s %s: %s: %w", verb, reference.FamiliarString(named), msg, errdefs.ErrNotFound)
		case terr.StatusCode >= 500:
			return fmt.Errorf("%s %s: registry answered %d: %s: %w", verb, reference.FamiliarString(named), terr.StatusCode, msg, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("%s %s: %s: %w", verb, reference.FamiliarString(named), msg, errdefs.ErrUnknown)
	case errors.As(err, &nerr):
		return fmt.Errorf("%s %s: registry unreachable: %s: %w", verb, reference.FamiliarString(named), oneLine(err), errdefs.ErrUnavailable)
	case errors.Is(err, context.Canceled):
		return err
	}
	return fmt.Errorf("%s %s: %s: %w", verb, reference.FamiliarString(named), oneLine(err), errdefs.ErrUnknown)
}

func registryMessage(terr *transport.Error) string {
	if len(terr.Errors) == 0 {
		return oneLine(terr)
	}
	msg := terr.Errors[0].Message
	if msg == "" {
		msg = string(terr.Errors[0].Code)
	}
	return strings.ToLower(string(terr.Errors[0].Code)) + ": " + msg
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// PullAllTags pulls every tag of the repository repo (a name without tag
// or digest) with pull, in the registry's tag order, and returns the
// records. A reference with a tag or digest gives
// errdefs.ErrInvalidArgument.
func (im *Images) PullAllTags(ctx context.Context, repo string, insecure bool, pull func(ctx context.Context, ref string) (image.Record, error)) ([]image.Record, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", errdefs.ErrInvalidArgument)
	}
	if !reference.IsNameOnly(named) {
		return nil, fmt.Errorf("tag can't be used with --all-tags/-a: %w", errdefs.ErrInvalidArgument)
	}
	var nopts []name.Option
	if insecure || im.insecureHost(reference.Domain(named)) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.NewRepository(named.Name(), nopts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	tags, err := remote.List(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("berth"))
	if err != nil {
		return nil, classifyRegistry("listing tags of", named, err)
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
