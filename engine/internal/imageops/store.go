package imageops

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

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
	// Size is the unpacked size of its layers in bytes (the sum of their
	// uncompressed tar streams, recorded at registration: see
	// image.Record.Size), the same for one image ID whatever manifest
	// brought it in.
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

// Lookup is image.Lookup: the stored image ref names inside tx, by name,
// ID or unique ID prefix; errdefs.ErrNotFound ("No such image") if none.
func Lookup(tx *state.Tx, ref string) (image.Record, error) { return image.Lookup(tx, ref) }

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

// sizeBucket maps a layer's diff ID to its uncompressed size in bytes
// (int64), measured when the layer was unpacked: a layer another image
// already unpacked is not measured again.
const sizeBucket = "layersizes"

// Register unpacks rec's layers and then records its name (PutImage), so
// that a name never appears before its content. The record gets the
// layers' uncompressed sizes (image.Record.LayerSizes). A concurrent rmi
// that removed the manifest or config meanwhile gives errdefs.ErrAborted.
func (im *Images) Register(ctx context.Context, rec image.Record) error {
	_, err := im.register(ctx, rec, nil)
	return err
}

// register is Register given the sizes (by diff ID) of layers a pull's
// sink already unpacked; it returns the record as stored.
func (im *Images) register(ctx context.Context, rec image.Record, measured map[digest.Digest]int64) (image.Record, error) {
	cfg, layers, err := im.Manifest(rec)
	if err != nil {
		return rec, err
	}
	_, sizes, err := im.Layers.UnpackSized(ctx, cfg, layers)
	if err != nil {
		return rec, err
	}
	maps.Copy(sizes, measured)
	if err := im.DB.View(ctx, func(tx *state.Tx) error {
		for _, d := range cfg.RootFS.DiffIDs {
			var n int64
			if _, ok := sizes[d]; !ok && tx.Get(sizeBucket, d.String(), &n) == nil {
				sizes[d] = n
			}
		}
		return nil
	}); err != nil {
		return rec, err
	}
	rec.Sizes, rec.Size = make([]int64, len(layers)), 0
	for i, d := range cfg.RootFS.DiffIDs {
		n, ok := sizes[d]
		if !ok { // unpacked before sizes were recorded: measure once
			if n, err = im.Layers.UncompressedSize(layers[i]); err != nil {
				return rec, err
			}
			sizes[d] = n
		}
		rec.Sizes[i] = n
		rec.Size += n
	}
	return rec, im.DB.Update(ctx, func(tx *state.Tx) error {
		// A concurrent rmi may have removed blobs this image shares; the
		// manifest and config must still be here when the name appears.
		if !im.Content.Has(rec.Target.Digest) || !im.Content.Has(rec.Config) {
			return fmt.Errorf("image content was removed concurrently, pull again: %w", errdefs.ErrAborted)
		}
		for d, n := range sizes {
			if err := tx.Put(sizeBucket, d.String(), n); err != nil {
				return err
			}
		}
		return PutImage(tx, rec)
	})
}

// List returns the stored images (one per record: per name), newest
// first, with their configs and unpacked sizes.
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
		out = append(out, Image{Record: r, Config: cfg, Size: r.UnpackedSize(layers)})
	}
	return out, nil
}

// Remove removes the name ref (or, given an image ID, every name of that
// image) and deletes the image's content once no name is left, as `docker
// rmi`. Removing a repository's last tag of the image also removes that
// repository's digest references (Docker does). Refused with
// errdefs.ErrConflict, in Docker's words: an ID with names in several
// repositories, or an image a stopped container uses, unless force; an ID
// a running container uses, even with force; a name that is the last of
// an image a container uses, unless force (the name then goes but the
// content stays). Unknown ref: errdefs.ErrNotFound.
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
		byID := strings.HasPrefix(rec.Config.Encoded(), strings.TrimPrefix(ref, "sha256:"))
		if named, err := image.ParseReference(ref); err == nil && named.String() == rec.Name {
			byID = false
		}
		var same []image.Record // every record of the image
		for _, r := range all {
			if r.Config == rec.Config {
				same = append(same, r)
			}
		}
		targets := []image.Record{rec}
		if byID {
			targets = same
		} else if !rec.IsDigest() && !IsDangling(rec) && !hasOtherTag(same, rec) {
			for _, r := range same {
				if r.IsDigest() && r.Repo() == rec.Repo() {
					targets = append(targets, r)
				}
			}
		}
		if err := removeConflict(tx, rec, ref, byID, force, targets, len(same)); err != nil {
			return err
		}
		users, err := record.Using(tx, rec.Config)
		if err != nil {
			return err
		}
		untagged := map[string]bool{}
		untag := func(s string) {
			if !untagged[s] {
				untagged[s] = true
				removed = append(removed, RemovedImage{Untagged: s})
			}
		}
		for _, r := range targets {
			if err := image.Delete(tx, r.Name); err != nil {
				return err
			}
		}
		remaining := slices.DeleteFunc(slices.Clone(same), func(r image.Record) bool {
			return slices.ContainsFunc(targets, func(t image.Record) bool { return t.Name == r.Name })
		})
		for _, r := range targets {
			if IsDangling(r) {
				continue
			}
			named, _ := reference.ParseNormalizedNamed(r.Name)
			untag(reference.FamiliarString(named))
			if rd := r.RepoDigest; rd != "" && !r.IsDigest() && !hasOtherTag(remaining, r) {
				if c, err := reference.WithDigest(reference.TrimNamed(named), rd); err == nil {
					untag(reference.FamiliarString(c))
				}
			}
		}
		if len(same) == len(targets) && len(users) == 0 {
			gone = targets
			removed = append(removed, RemovedImage{Deleted: rec.Config.String()})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, im.deleteContent(ctx, gone)
}

// removeConflict is Remove's refusal, if any, in Docker's words. same is
// how many records the image has.
func removeConflict(tx *state.Tx, rec image.Record, ref string, byID, force bool, targets []image.Record, same int) error {
	ctrs, err := record.List(tx)
	if err != nil {
		return err
	}
	var running, stopped string
	for _, c := range ctrs {
		if c.ImageID != rec.Config {
			continue
		}
		if c.State.Status == record.StatusRunning || c.State.Status == record.StatusPaused {
			running = cmp.Or(running, c.ID)
		} else {
			stopped = cmp.Or(stopped, c.ID)
		}
	}
	id := shortID(rec.Config)
	if byID {
		repos, tags := map[string]bool{}, 0
		for _, r := range targets {
			if !IsDangling(r) {
				repos[r.Repo()] = true
				if !r.IsDigest() {
					tags++
				}
			}
		}
		switch {
		case (len(repos) > 1 || tags > 1) && !force:
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", id, errdefs.ErrConflict)
		case running != "":
			return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w", id, shortID(running), errdefs.ErrConflict)
		case stopped != "" && !force:
			return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w", id, shortID(stopped), errdefs.ErrConflict)
		}
		return nil
	}
	if user := cmp.Or(running, stopped); user != "" && same == len(targets) && !force {
		return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w",
			ref, shortID(user), id, errdefs.ErrConflict)
	}
	return nil
}

// hasOtherTag reports whether recs hold a tag of rec's repository other
// than rec itself.
func hasOtherTag(recs []image.Record, rec image.Record) bool {
	return slices.ContainsFunc(recs, func(r image.Record) bool {
		return r.Name != rec.Name && !r.IsDigest() && !IsDangling(r) && r.Repo() == rec.Repo()
	})
}

// Prune removes dangling images (all: every image) that no container
// uses, as `docker image prune [-a]`, then the blobs no image references
// that are older than OrphanBlobAge (what a pull that was interrupted and
// never resumed left). keep, when non-nil, is asked about each candidate
// image and vetoes its removal by returning false. SpaceReclaimed counts
// the removed images' unpacked sizes and the swept blobs' bytes.
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
	n, err := im.sweepBlobs(ctx, true)
	rep.SpaceReclaimed += n
	return rep, err
}

// OrphanBlobAge is how old a blob no image references must be before
// image prune deletes it (and system df counts it reclaimable). A pull
// touches every blob it reuses (content.Store.Touch) and commits new ones
// with the current time, so a pull in progress, or one interrupted less
// than this long ago, keeps its blobs for the next attempt to reuse.
const OrphanBlobAge = time.Hour

// sweepBlobs finds the blobs no registered image references (index,
// manifest, config or layer) that are older than OrphanBlobAge, deletes
// them when del, and returns their bytes.
func (im *Images) sweepBlobs(ctx context.Context, del bool) (int64, error) {
	var total int64
	run := im.DB.View
	if del {
		run = im.DB.Update
	}
	err := run(ctx, func(tx *state.Tx) error {
		inUse, err := im.referenced(tx)
		if err != nil {
			return err
		}
		total, err = im.Content.Sweep(func(d digest.Digest) bool { return inUse[d] }, OrphanBlobAge, del)
		return err
	})
	return total, err
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

// referenced is the set of blobs the images registered in tx name:
// index, manifest, config and layers.
func (im *Images) referenced(tx *state.Tx) (map[digest.Digest]bool, error) {
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
		if _, ls, err := im.Manifest(r); err == nil {
			for _, l := range ls {
				inUse[l.Digest] = true
			}
		}
	}
	return inUse, nil
}

// deleteUnused deletes those of the blobs ds that no image registered in
// tx names: index, manifest, config or layer.
func (im *Images) deleteUnused(tx *state.Tx, ds []digest.Digest) error {
	inUse, err := im.referenced(tx)
	if err != nil {
		return err
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

// deleteContent removes the blobs of the removed records recs (each
// one's index, manifest, config and layers) and their snapshots, except
// what a remaining image shares. Snapshots that are parents of others (a
// container's, another image's) stay.
func (im *Images) deleteContent(ctx context.Context, recs []image.Record) error {
	if len(recs) == 0 {
		return nil
	}
	var blobs []digest.Digest
	var diffIDs [][]digest.Digest
	for _, rec := range recs {
		blobs = append(blobs, rec.Target.Digest, rec.Config)
		if rec.Index != nil {
			blobs = append(blobs, rec.Index.Digest)
		}
		cfg, layers, err := im.Manifest(rec)
		if err != nil {
			continue // content already gone
		}
		for _, l := range layers {
			blobs = append(blobs, l.Digest)
		}
		diffIDs = append(diffIDs, cfg.RootFS.DiffIDs)
	}
	return im.DB.Update(ctx, func(tx *state.Tx) error {
		if err := im.deleteUnused(tx, blobs); err != nil {
			return err
		}
		for _, ids := range diffIDs {
			if err := im.Layers.Remove(ctx, ids); err != nil {
				return err
			}
		}
		return nil
	})
}
