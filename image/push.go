package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"

	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/image/fetcher"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RemoteOptions says how Push, ListTags and VerifyLogin reach a registry.
// The zero value uses HTTPS (plain HTTP only for loopback registries, as
// Docker allows), credentials from Docker's config.json (its credsStore
// and credHelpers included, run by this process) and, when the caller is
// root, an unprivileged fetcher process for all registry I/O.
type RemoteOptions struct {
	// Insecure allows plain HTTP and unverified TLS for this registry.
	Insecure bool
	// Keychain supplies credentials; default authn.DefaultKeychain. It is
	// read by the calling process, which passes the one credential needed
	// to the fetcher in its request (never in argv or the environment).
	Keychain authn.Keychain
	// Transport carries registry traffic; setting it runs the fetcher in
	// this process (see fetcher.Options).
	Transport http.RoundTripper
	// Fetcher is the command that runs an unprivileged fetcher process
	// when the caller is root; nil means fetcher.DefaultCommand().
	Fetcher *fetcher.Command
}

// PushOptions tunes Push.
type PushOptions struct {
	RemoteOptions
	// Progress receives Docker's push status: if it implements
	// ProgressReporter, structured events (ID is a layer's short digest;
	// Status "Preparing", "Waiting", "Pushing" with Current and Total in
	// bytes, "Layer already exists", "Mounted from REPO", "Pushed"; the
	// first and last events have no ID: "The push refers to repository
	// [NAME]" and "TAG: digest: sha256:… size: N"); else one line per
	// event, without the "Pushing" byte counts, as Docker prints when not
	// on a terminal. nil prints nothing.
	Progress io.Writer
	// Concurrency is how many layers upload at once; default 5 (Docker's).
	Concurrency int
	// MountFrom, if set, names for a layer the repositories of the same
	// registry ("library/busybox") known to hold it, which the registry
	// is asked to mount it from before it is uploaded.
	MountFrom func(layer digest.Digest) []string
}

// Push uploads the stored image manifest target, its config and its
// layers to the registry of named (normalized, with a tag), as `docker
// push` does: layers the repository has are skipped, layers another
// repository of the registry holds are mounted, the others are uploaded
// (up to Concurrency at once), then the config, and last the manifest,
// byte for byte as stored, under the tag (so its digest is the one
// stored).
//
// When the caller is root all registry I/O runs in an unprivileged
// fetcher process, which gets the blobs as read-only file descriptors of
// the content store's files and reports progress back.
//
// Errors are one line naming the image and match errdefs.ErrNotFound (a
// blob of the image is not stored), errdefs.ErrInvalidArgument (no tag),
// errdefs.ErrUnauthenticated (the registry wants credentials or refused
// them), errdefs.ErrUnavailable (unreachable, 5xx), context.Canceled.
func Push(ctx context.Context, cs *content.Store, named reference.Named, target ocispec.Descriptor, opts PushOptions) error {
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return fmt.Errorf("push %s: a push needs a tag: %w", reference.FamiliarString(named), errdefs.ErrInvalidArgument)
	}
	raw, err := cs.ReadAll(target.Digest)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", reference.FamiliarString(named), err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest of %s: %v: %w", reference.FamiliarString(named), err, errdefs.ErrDataLoss)
	}
	mt := target.MediaType
	if mt == "" {
		mt = m.MediaType
	}
	req := &fetcher.PushRequest{
		Manifest: fetcher.Blob{Digest: target.Digest.String(), Size: int64(len(raw)), MediaType: mt},
		Config:   fetcher.Blob{Digest: m.Config.Digest.String(), Size: m.Config.Size, MediaType: m.Config.MediaType},
	}
	blobs := []digest.Digest{target.Digest, m.Config.Digest}
	layers := map[string]fetcher.Blob{}
	for _, l := range m.Layers {
		if _, dup := layers[l.Digest.String()]; dup {
			continue
		}
		b := fetcher.Blob{Digest: l.Digest.String(), Size: l.Size, MediaType: l.MediaType}
		if opts.MountFrom != nil {
			b.MountFrom = opts.MountFrom(l.Digest)
			b.MountFrom = b.MountFrom[:min(len(b.MountFrom), 8)]
		}
		layers[b.Digest] = b
		req.Layers = append(req.Layers, b)
		blobs = append(blobs, l.Digest)
	}
	files, err := openBlobs(cs, blobs, append([]fetcher.Blob{req.Manifest, req.Config}, req.Layers...))
	if err != nil {
		return fmt.Errorf("pushing %s: %w", reference.FamiliarString(named), err)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()

	report := reporter(opts.Progress)
	if _, structured := opts.Progress.(ProgressReporter); !structured {
		lines := report
		report = func(ev ProgressEvent) {
			if ev.Status != fetcher.StatusPushing { // Docker shows byte progress only on a terminal
				lines(ev)
			}
		}
	}
	report(ProgressEvent{Status: fmt.Sprintf("The push refers to repository [%s]", named.Name())})
	freq := fetcher.Request{Op: fetcher.OpPush, Reference: named.String(), Concurrency: opts.Concurrency, Push: req}
	err = converse(ctx, named, opts.RemoteOptions, &freq, files, func(f fetcher.Frame) error {
		if f.Type != fetcher.TypeProgress {
			return fmt.Errorf("fetcher: unexpected %q frame: %w", f.Type, errdefs.ErrDataLoss)
		}
		l, ok := layers[f.Digest]
		if !ok || (f.Status == fetcher.StatusMounted && !slices.Contains(l.MountFrom, f.From)) || f.Current > l.Size {
			return fmt.Errorf("fetcher: progress of a layer it was not given: %w", errdefs.ErrDataLoss)
		}
		ev := ProgressEvent{ID: digest.Digest(f.Digest).Encoded()[:12], Status: f.Status, Current: f.Current, Total: f.Size}
		if f.Status == fetcher.StatusMounted {
			ev.Status += " " + f.From
		}
		report(ev)
		return nil
	})
	if err != nil {
		return err
	}
	report(ProgressEvent{Status: fmt.Sprintf("%s: digest: %s size: %d", tagged.Tag(), target.Digest, len(raw))})
	return nil
}

// openBlobs opens the stored blobs ds read-only, checking that each holds
// at least the size its descriptor in want says.
func openBlobs(cs *content.Store, ds []digest.Digest, want []fetcher.Blob) ([]*os.File, error) {
	var files []*os.File
	for i, d := range ds {
		f, err := cs.Open(d)
		if err == nil {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil && st.Size() != want[i].Size {
				err = fmt.Errorf("blob %s holds %d bytes, its descriptor says %d: %w", d, st.Size(), want[i].Size, errdefs.ErrDataLoss)
			}
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// ListTags lists the tags of the repository named (a normalized name
// without tag or digest), in the registry's order, as `docker pull
// --all-tags` needs. The listing runs in the fetcher. Errors name the
// repository and match errdefs.ErrNotFound, ErrUnauthenticated or
// ErrUnavailable.
func ListTags(ctx context.Context, named reference.Named, opts RemoteOptions) ([]string, error) {
	const maxTags = 1 << 16
	var tags []string
	err := converse(ctx, named, opts, &fetcher.Request{Op: fetcher.OpTags, Reference: named.Name()}, nil, func(f fetcher.Frame) error {
		if f.Type != fetcher.TypeTags || len(tags)+len(f.Tags) > maxTags {
			return fmt.Errorf("fetcher: unexpected %q frame: %w", f.Type, errdefs.ErrDataLoss)
		}
		tags = append(tags, f.Tags...)
		return nil
	})
	return tags, err
}

// VerifyLogin checks username and password against the /v2/ endpoint of
// registry (host[:port]) with the registry's own scheme (HTTP basic, or
// the bearer token flow), as `docker login` does before it saves
// anything; the check runs in the fetcher. Refused credentials give
// errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable. opts.Keychain is not used.
func VerifyLogin(ctx context.Context, registry, username, password string, opts RemoteOptions) error {
	req := &fetcher.Request{Op: fetcher.OpLogin, Registry: registry, Insecure: opts.Insecure, Auth: &fetcher.Auth{Username: username, Password: password}}
	return runFetcher(ctx, opts, req, nil, func(f fetcher.Frame) error {
		return fmt.Errorf("fetcher: unexpected %q frame: %w", f.Type, errdefs.ErrDataLoss)
	})
}

// converse runs req (for the image or repository named) with the
// credential opts.Keychain holds for its registry.
func converse(ctx context.Context, named reference.Named, opts RemoteOptions, req *fetcher.Request, files []*os.File, handle func(fetcher.Frame) error) error {
	var err error
	if req.Auth, err = credentials(named, opts.Keychain); err != nil {
		return err
	}
	req.Insecure = opts.Insecure
	return runFetcher(ctx, opts, req, files, handle)
}

// runFetcher starts a fetcher, sends req, hands each frame but the last to
// handle and returns at "done" (nil) or "error" (the fetcher's error).
func runFetcher(ctx context.Context, opts RemoteOptions, req *fetcher.Request, files []*os.File, handle func(fetcher.Frame) error) error {
	conn, err := fetcher.Start(ctx, fetcher.Options{Command: opts.Fetcher, Transport: opts.Transport, Files: files})
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Send(fetcher.Frame{Type: fetcher.TypeRequest, Request: req}); err != nil {
		return broken(ctx, err)
	}
	for {
		f, err := conn.Next()
		if err != nil {
			return broken(ctx, err)
		}
		switch f.Type {
		case fetcher.TypeDone:
			return nil
		case fetcher.TypeError:
			return fetcher.Err(f)
		}
		if err := handle(f); err != nil {
			return err
		}
	}
}

// broken is the error of a conversation that broke: the context's if it
// was cancelled, else a fetcher that died or misbehaved.
func broken(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("fetcher exited unexpectedly: %w", errdefs.ErrUnavailable)
	}
	return fmt.Errorf("fetcher: %w", err)
}
