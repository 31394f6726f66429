package imageops

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The image store: finding, registering, listing and removing images,
// and deleting the content no image uses any more.

// Image describes a stored image as `berth images` lists it.
type Image struct {
	Record image.Record
	// Config is the image's OCI config (entrypoint, env, created …).
	Config ocispec.Image
	// Size is the uncompressed size of its layers in bytes.
	Size int64
}

// RemovedImage is one line of `rmi` output.
type RemovedImage struct {
	Untagged string // familiar name that was removed
	Deleted  string // image ID whose content was deleted, if any
}

// PruneReport is what Prune removed: rmi-style lines and the bytes of
// layer blobs freed.
type PruneReport struct {
	Removed        []RemovedImage
	SpaceReclaimed int64
}

// Lookup finds the stored image ref names inside tx: by name, full image
// ID or unique ID prefix (4 hex digits at least, "sha256:" optional). A
// name that is not stored gives errdefs.ErrNotFound ("No such image").
func Lookup(tx *state.Tx, ref string) (image.Record, error) {
	if named, err := image.ParseReference(ref); err == nil {
		if rec, err := image.Get(tx, named.String()); err == nil {
			return rec, nil
		}
	}
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) >= 4 && strings.Trim(id, "0123456789abcdef") == "" {
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

// Resolve is Lookup in a read transaction of its own.
func (im *Images) Resolve(ctx context.Context, ref string) (image.Record, error) {
	var rec image.Record
	err := im.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		rec, err = Lookup(tx, ref)
		return err
	})
	return rec, err
}

// Manifest reads rec's config and its manifest's layer descriptors, base
// first. A config whose diff IDs do not match the layers gives
// errdefs.ErrDataLoss; a missing blob the content store's error.
func (im *Images) Manifest(rec image.Record) (ocispec.Image, []ocispec.Descriptor, error) {
	var cfg ocispec.Image
	var m ocispec.Manifest
	data, err := im.Content.ReadAll(rec.Target.Digest)
	if err != nil {
		return cfg, nil, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return cfg, nil, fmt.Errorf("manifest %s: %w", rec.Target.Digest, err)
	}
	if data, err = im.Content.ReadAll(rec.Config); err != nil {
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

// Config returns the OCI config of the stored image ref (Lookup's forms).
func (im *Images) Config(ctx context.Context, ref string) (ocispec.Image, error) {
	rec, err := im.Resolve(ctx, ref)
	if err != nil {
		return ocispec.Image{}, err
	}
	cfg, _, err := im.Manifest(rec)
	return cfg, err
}

// Register unpacks rec's layers and then records its name (PutImage), so
// that a name never appears before its content. A concurrent rmi that
// removed the manifest or config meanwhile gives errdefs.ErrAborted.
func (im *Images) Register(ctx context.Context, rec image.Record) error {
	cfg, layers, err := im.Manifest(rec)
	if err != nil {
		return err
	}
	if _, err := im.Layers.Unpack(ctx, cfg, layers); err != nil {
		return err
	}
	return im.DB.Update(ctx, func(tx *state.Tx) error {
		// A concurrent rmi may have removed blobs this image shares; the
		// manifest and config must still be here when the name appears.
		if !im.Content.Has(rec.Target.Digest) || !im.Content.Has(rec.Config) {
			return fmt.Errorf("image content was removed concurrently, pull again: %w", errdefs.ErrAborted)
		}
		return PutImage(tx, rec)
	})
}

// List returns the stored images, newest first, with their configs and
// layer sizes.
func (im *Images) List(ctx context.Context) ([]Image, error) {
	var recs []image.Record
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		var err error
		recs, err = image.List(tx)
		return err
	}); err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(recs))
	for _, r := range recs {
		cfg, layers, err := im.Manifest(r)
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

// Remove removes the name ref (or, given an image ID, every name of that
// image) and deletes the image's content once no name is left, as `docker
// rmi`. An image that a container uses, or an ID with several names, is
// refused with errdefs.ErrConflict unless force; with force the names go
// but content a container needs stays. Unknown ref: errdefs.ErrNotFound.
func (im *Images) Remove(ctx context.Context, ref string, force bool) ([]RemovedImage, error) {
	var removed []RemovedImage
	var gone []image.Record // records whose content may now be unused
	err := im.DB.Update(ctx, func(tx *state.Tx) error {
		rec, err := Lookup(tx, ref)
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
		users, err := record.Using(tx, rec.Config)
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
		if err := im.deleteContent(ctx, rec); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// Prune removes dangling images (all: every image) that no container
// uses, as `docker image prune [-a]`. keep, when non-nil, is asked about
// each candidate and vetoes its removal by returning false.
func (im *Images) Prune(ctx context.Context, all bool, keep func(Image) bool) (PruneReport, error) {
	imgs, err := im.List(ctx)
	if err != nil {
		return PruneReport{}, err
	}
	used := map[digest.Digest]bool{}
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		for _, img := range imgs {
			users, err := record.Using(tx, img.Record.Config)
			if err != nil {
				return err
			}
			used[img.Record.Config] = len(users) > 0
		}
		return nil
	}); err != nil {
		return PruneReport{}, err
	}
	var rep PruneReport
	done := map[digest.Digest]bool{}
	for _, img := range imgs {
		id := img.Record.Config
		if used[id] || done[id] || (!all && !IsDangling(img.Record)) || (keep != nil && !keep(img)) {
			continue
		}
		done[id] = true
		removed, err := im.Remove(ctx, id.String(), true)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue // removed concurrently
			}
			return rep, err
		}
		rep.Removed = append(rep.Removed, removed...)
		for _, r := range removed {
			if r.Deleted != "" {
				rep.SpaceReclaimed += img.Size
			}
		}
	}
	return rep, nil
}

// removeUnusedBlobs deletes the blobs ds that no registered image uses.
func (im *Images) removeUnusedBlobs(ctx context.Context, ds []digest.Digest) error {
	if len(ds) == 0 {
		return nil
	}
	return im.DB.Update(ctx, func(tx *state.Tx) error {
		return im.deleteUnused(tx, ds)
	})
}

// deleteUnused deletes those of the blobs ds that no image registered in
// tx names: index, manifest, config or layer.
func (im *Images) deleteUnused(tx *state.Tx, ds []digest.Digest) error {
	all, err := image.List(tx)
	if err != nil {
		return err
	}
	inUse := map[digest.Digest]bool{}
	for _, r := range all {
		inUse[r.Target.Digest], inUse[r.Config] = true, true
		if r.Index != nil {
			inUse[r.Index.Digest] = true
		}
		if _, ls, err := im.Manifest(r); err == nil {
			for _, l := range ls {
				inUse[l.Digest] = true
			}
		}
	}
	for _, d := range ds {
		if !inUse[d] {
			if err := im.Content.Delete(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteContent removes rec's blobs and snapshots that no remaining image
// shares. Snapshots that are parents of others (a container's, another
// image's) stay.
func (im *Images) deleteContent(ctx context.Context, rec image.Record) error {
	cfg, layers, err := im.Manifest(rec)
	if err != nil {
		return nil // content already gone
	}
	return im.DB.Update(ctx, func(tx *state.Tx) error {
		blobs := []digest.Digest{rec.Target.Digest, rec.Config}
		if rec.Index != nil {
			blobs = append(blobs, rec.Index.Digest)
		}
		for _, l := range layers {
			blobs = append(blobs, l.Digest)
		}
		if err := im.deleteUnused(tx, blobs); err != nil {
			return err
		}
		return im.Layers.Remove(ctx, cfg.RootFS.DiffIDs)
	})
}
