package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
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
}

// Image describes a stored image as `berth images` lists it.
type Image struct {
	Record image.Record
	// Config is the image's OCI config (entrypoint, env, created …).
	Config ocispec.Image
	// Size is the uncompressed size of its layers in bytes.
	Size int64
}

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
	named, err := image.ParseReference(ref)
	if err != nil {
		return image.Record{}, err
	}
	if isBuiltin(named) {
		return e.builtin(ctx, named)
	}
	popts := image.PullOptions{Insecure: opts.Insecure || e.insecure(named), Progress: opts.Progress}
	if opts.Platform != "" {
		p, err := parsePlatform(opts.Platform)
		if err != nil {
			return image.Record{}, err
		}
		popts.Platform = &p
	}
	endPull := trace("pull")
	defer endPull()
	u := e.newPullUnpacker(ctx)
	defer u.cancel()
	popts.Layers = u
	var mu sync.Mutex
	var added []digest.Digest
	popts.Committed = func(d digest.Digest) {
		mu.Lock()
		added = append(added, d)
		mu.Unlock()
	}
	rec, err := image.Pull(ctx, e.content, named, popts)
	if err == nil {
		if err = u.wait(); err != nil {
			err = fmt.Errorf("pulling %s: %w", reference.FamiliarString(named), err)
		}
	}
	if err == nil {
		if err = e.register(ctx, rec); err != nil {
			err = fmt.Errorf("pulling %s: %w", reference.FamiliarString(named), err)
		}
	}
	if err != nil {
		u.abort()
		if ctx.Err() != nil {
			return image.Record{}, ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		if rerr := e.removeUnusedBlobs(ctx, added); rerr != nil {
			err = fmt.Errorf("%w (and removing its blobs: %v)", err, rerr)
		}
		return image.Record{}, err
	}
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "Status: Downloaded newer image for %s\n", reference.FamiliarString(named))
	}
	return rec, nil
}

func (e *Engine) insecure(named reference.Named) bool {
	return slices.Contains(e.opts.InsecureRegistries, reference.Domain(named))
}

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

// register unpacks rec's layers and then records the name. The size of the
// unpacked layers is stored with it.
func (e *Engine) register(ctx context.Context, rec image.Record) error {
	cfg, layers, err := e.imageContent(rec)
	if err != nil {
		return err
	}
	if _, err := e.unpack(ctx, cfg, layers); err != nil {
		return err
	}
	return e.db.Update(ctx, func(tx *state.Tx) error {
		// A concurrent rmi may have removed blobs this image shares; the
		// manifest and config must still be here when the name appears.
		if !e.content.Has(rec.Target.Digest) || !e.content.Has(rec.Config) {
			return fmt.Errorf("image content was removed concurrently, pull again: %w", errdefs.ErrAborted)
		}
		return putImage(tx, rec)
	})
}

// imageContent reads rec's config and its manifest's layer descriptors.
func (e *Engine) imageContent(rec image.Record) (ocispec.Image, []ocispec.Descriptor, error) {
	var cfg ocispec.Image
	var m ocispec.Manifest
	data, err := e.content.ReadAll(rec.Target.Digest)
	if err != nil {
		return cfg, nil, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return cfg, nil, fmt.Errorf("manifest %s: %w", rec.Target.Digest, err)
	}
	if data, err = e.content.ReadAll(rec.Config); err != nil {
		return cfg, nil, err
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, nil, fmt.Errorf("image config %s: %w", rec.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return cfg, nil, fmt.Errorf("image config %s lists %d diff IDs for %d layers: %w", rec.Config, len(cfg.RootFS.DiffIDs), len(m.Layers), errdefs.ErrDataLoss)
	}
	return cfg, m.Layers, nil
}

// resolveImage finds the stored image ref names (by name, full image ID or
// unique ID prefix). A name that is not stored gives errdefs.ErrNotFound.
func (e *Engine) resolveImage(ctx context.Context, ref string) (image.Record, error) {
	var rec image.Record
	err := e.db.View(ctx, func(tx *state.Tx) error {
		var err error
		rec, err = lookupImage(tx, ref)
		return err
	})
	return rec, err
}

func lookupImage(tx *state.Tx, ref string) (image.Record, error) {
	if named, err := image.ParseReference(ref); err == nil {
		if rec, err := image.Get(tx, named.String()); err == nil {
			return rec, nil
		}
	}
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) >= 4 && isHex(id) {
		all, err := image.List(tx)
		if err != nil {
			return image.Record{}, err
		}
		for _, r := range all {
			if strings.HasPrefix(r.Config.Encoded(), id) {
				return r, nil
			}
		}
	}
	return image.Record{}, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// Images lists the stored images, newest first.
func (e *Engine) Images(ctx context.Context) ([]Image, error) {
	var recs []image.Record
	if err := e.db.View(ctx, func(tx *state.Tx) error {
		var err error
		recs, err = image.List(tx)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		cfg, layers, err := e.imageContent(r)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", r.Name, err)
		}
		img := Image{Record: r, Config: cfg}
		for _, l := range layers {
			img.Size += l.Size
		}
		out = append(out, img)
	}
	return out, nil
}

// ImageConfig returns the OCI config of the stored image ref.
func (e *Engine) ImageConfig(ctx context.Context, ref string) (ocispec.Image, error) {
	rec, err := e.resolveImage(ctx, ref)
	if err != nil {
		return ocispec.Image{}, err
	}
	cfg, _, err := e.imageContent(rec)
	return cfg, err
}

// RemovedImage is one line of `rmi` output.
type RemovedImage struct {
	Untagged string // familiar name that was removed
	Deleted  string // image ID whose content was deleted, if any
}

// RemoveImage removes the name ref (or, given an image ID, every name of
// that image) and deletes the image's content once no name is left. An image
// that a container uses is refused with errdefs.ErrConflict unless force;
// with force the names go but content a container needs stays.
func (e *Engine) RemoveImage(ctx context.Context, ref string, force bool) ([]RemovedImage, error) {
	var removed []RemovedImage
	var gone []image.Record // records whose content may now be unused
	err := e.db.Update(ctx, func(tx *state.Tx) error {
		rec, err := lookupImage(tx, ref)
		if err != nil {
			return err
		}
		all, err := image.List(tx)
		if err != nil {
			return err
		}
		targets := []image.Record{rec}
		byID := strings.HasPrefix(rec.Config.Encoded(), strings.TrimPrefix(ref, "sha256:"))
		if named, err := image.ParseReference(ref); err == nil && named.String() == rec.Name {
			byID = false
		}
		sameID := 0
		for _, r := range all {
			if r.Config == rec.Config {
				sameID++
				if byID && r.Name != rec.Name {
					targets = append(targets, r)
				}
			}
		}
		if byID && len(targets) > 1 && !force {
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", shortID(rec.Config), errdefs.ErrConflict)
		}
		users, err := containersUsing(tx, rec.Config)
		if err != nil {
			return err
		}
		if len(users) > 0 && sameID == len(targets) && !force {
			return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w",
				ref, shortID(users[0]), shortID(rec.Config), errdefs.ErrConflict)
		}
		for _, r := range targets {
			if err := image.Delete(tx, r.Name); err != nil {
				return err
			}
			if IsDangling(r) {
				continue
			}
			named, _ := reference.ParseNormalizedNamed(r.Name)
			removed = append(removed, RemovedImage{Untagged: reference.FamiliarString(named)})
			if rd := r.RepoDigest; rd != "" {
				if c, err := reference.WithDigest(reference.TrimNamed(named), rd); err == nil {
					removed = append(removed, RemovedImage{Untagged: reference.FamiliarString(c)})
				}
			}
		}
		if sameID == len(targets) && len(users) == 0 {
			gone = append(gone, rec)
			removed = append(removed, RemovedImage{Deleted: rec.Config.String()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, rec := range gone {
		if err := e.deleteContent(ctx, rec); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// removeUnusedBlobs deletes the blobs ds that no registered image uses.
func (e *Engine) removeUnusedBlobs(ctx context.Context, ds []digest.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	return e.db.Update(ctx, func(tx *state.Tx) error {
		inUse, err := e.blobsInUse(tx)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if !inUse[d] {
				if err := e.content.Delete(d); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// blobsInUse is the set of blobs the registered images name: index,
// manifest, config and layers.
func (e *Engine) blobsInUse(tx *state.Tx) (map[digest.Digest]bool, error) {
	all, err := image.List(tx)
	if err != nil {
		return nil, err
	}
	inUse := map[digest.Digest]bool{}
	for _, r := range all {
		inUse[r.Target.Digest], inUse[r.Config] = true, true
		if r.Index != nil {
			inUse[r.Index.Digest] = true
		}
		if _, ls, err := e.imageContent(r); err == nil {
			for _, l := range ls {
				inUse[l.Digest] = true
			}
		}
	}
	return inUse, nil
}

// deleteContent removes rec's blobs and snapshots that no remaining image
// shares. Snapshots that are parents of others (a container's, another
// image's) stay.
func (e *Engine) deleteContent(ctx context.Context, rec image.Record) error {
	cfg, layers, err := e.imageContent(rec)
	if err != nil {
		return nil // content already gone
	}
	return e.db.Update(ctx, func(tx *state.Tx) error {
		inUse, err := e.blobsInUse(tx)
		if err != nil {
			return err
		}
		blobs := []digest.Digest{rec.Target.Digest, rec.Config}
		if rec.Index != nil {
			blobs = append(blobs, rec.Index.Digest)
		}
		for _, l := range layers {
			blobs = append(blobs, l.Digest)
		}
		for _, d := range blobs {
			if !inUse[d] {
				if err := e.content.Delete(d); err != nil {
					return err
				}
			}
		}
		chains := chainIDs(cfg.RootFS.DiffIDs)
		for i := len(chains) - 1; i >= 0; i-- {
			if err := e.snaps.Remove(ctx, chains[i].String()); err != nil {
				if errdefs.IsFailedPrecondition(err) {
					break // shared with another image or a container
				}
				if !errdefs.IsNotFound(err) {
					return err
				}
			}
		}
		return nil
	})
}

// shortID is the 12-hex-digit form Docker prints of an ID or digest.
func shortID[T ~string](id T) string {
	s := string(id)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// created returns the image config's creation time, zero if absent.
func created(cfg ocispec.Image) time.Time {
	if cfg.Created == nil {
		return time.Time{}
	}
	return *cfg.Created
}
