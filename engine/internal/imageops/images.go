// Package imageops holds the engine's image verbs: pull (with its
// unpack wiring and cleanup), the image store (lookup, registration,
// list, remove, prune and the deletion of unused content), tag, inspect,
// history, disk usage, push, login, save, load, import and commit's image
// half, and the built-in hello image. It does
// not import package engine: the engine hands it what it needs in an
// Images value and forwards its methods to it.
package imageops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/engine/internal/unpack"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Images is what the image operations need of the engine. Every field
// must be set.
type Images struct {
	// DB holds the image records; Content their blobs.
	DB      *state.DB
	Content *content.Store
	// Root is the engine's persistent root: load and import stage their
	// input in temporary directories under it.
	Root string
	// Snapshotter names the storage driver, as inspect reports it.
	Snapshotter string
	// InsecureRegistries are reached over plain HTTP ("host:port").
	InsecureRegistries []string
	// Layers unpacks image layers into snapshots and removes them.
	Layers *unpack.Unpacker
}

// insecureHost reports whether host ("host:port") is an insecure registry.
func (im *Images) insecureHost(host string) bool {
	return slices.Contains(im.InsecureRegistries, host)
}

// A dangling image (Docker's "<none>:<none>") is one that lost its last
// name when the name moved to another image (pull, tag, load, import), or
// that was loaded or imported without one. Berth stores it as a record
// named by its image ID ("sha256:<64 hex>"), which no normalized reference
// can equal (those always carry a domain).

// IsDangling reports whether rec is a dangling image's record (named by
// its ID rather than a reference).
func IsDangling(rec image.Record) bool { return strings.HasPrefix(rec.Name, "sha256:") }

// PutImage stores rec under its name. A different image that held the
// name and has no other name stays as a dangling record; a dangling record
// of rec's own image is dropped, since the image now has a name. A
// dangling rec is not stored when its image already has a name.
func PutImage(tx *state.Tx, rec image.Record) error {
	all, err := image.List(tx)
	if err != nil {
		return err
	}
	if IsDangling(rec) {
		for _, r := range all {
			if r.Config == rec.Config && !IsDangling(r) {
				return nil
			}
		}
		return image.Put(tx, rec)
	}
	if old, err := image.Get(tx, rec.Name); err == nil && old.Config != rec.Config {
		named := false
		for _, r := range all {
			if r.Config == old.Config && r.Name != old.Name {
				named = true
			}
		}
		if !named {
			old.Name = old.Config.String()
			if err := image.Put(tx, old); err != nil {
				return err
			}
		}
	}
	if err := image.Delete(tx, rec.Config.String()); err != nil {
		return err
	}
	return image.Put(tx, rec)
}

// Tag gives the stored image source (name, ID or ID prefix) the name
// target, like `docker tag`. A name held by another image moves (that
// image is kept, dangling if it has no other name). An unknown source gives
// errdefs.ErrNotFound; a malformed target errdefs.ErrInvalidArgument.
func (im *Images) Tag(ctx context.Context, source, target string) error {
	named, err := image.ParseReference(target)
	if err != nil {
		return err
	}
	if _, ok := named.(reference.Digested); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	return im.DB.Update(ctx, func(tx *state.Tx) error {
		rec, err := Lookup(tx, source)
		if err != nil {
			return err
		}
		rec.Name = named.String()
		rec.RepoDigest = ""
		rec.Created = time.Now().UTC()
		return PutImage(tx, rec)
	})
}

// imageNames returns the names (familiar), repo digests (familiar
// name@digest) of the image with ID id, from every record that has it.
func imageNames(all []image.Record, id digest.Digest) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, r := range all {
		if r.Config != id || IsDangling(r) {
			if r.Config == id && r.RepoDigest != "" {
				digests = append(digests, "<none>@"+r.RepoDigest.String())
			}
			continue
		}
		named, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil {
			continue
		}
		tags = append(tags, reference.FamiliarString(named))
		if r.RepoDigest != "" {
			if c, err := reference.WithDigest(reference.TrimNamed(named), r.RepoDigest); err == nil {
				digests = append(digests, reference.FamiliarString(c))
			}
		}
	}
	return tags, digests
}

// lookupAll finds the stored image ref and lists every record (for the
// image's other names) in one read transaction.
func (im *Images) lookupAll(ctx context.Context, ref string) (rec image.Record, all []image.Record, err error) {
	err = im.DB.View(ctx, func(tx *state.Tx) error {
		if rec, err = Lookup(tx, ref); err != nil {
			return err
		}
		all, err = image.List(tx)
		return err
	})
	return rec, all, err
}

// InspectImage describes the stored image ref (name, ID or ID prefix) in
// the shape of Docker's GET /images/{name}/json (`docker image inspect`).
// Size is the sum of the layer blobs' sizes in bytes. Unknown ref:
// errdefs.ErrNotFound.
func (im *Images) InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error) {
	rec, all, err := im.lookupAll(ctx, ref)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	cfg, layers, err := im.Manifest(rec)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	raw, err := im.Content.ReadAll(rec.Config)
	if err != nil {
		return imagetypes.InspectResponse{}, err
	}
	var dcfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &dcfg); err != nil {
		return imagetypes.InspectResponse{}, fmt.Errorf("image config %s: %v: %w", rec.Config, err, errdefs.ErrDataLoss)
	}
	tags, digests := imageNames(all, rec.Config)
	resp := imagetypes.InspectResponse{
		ID:           rec.Config.String(),
		RepoTags:     tags,
		RepoDigests:  digests,
		Author:       cfg.Author,
		Config:       &dcfg.Config,
		Architecture: cfg.Architecture,
		Variant:      cfg.Variant,
		Os:           cfg.OS,
		OsVersion:    cfg.OSVersion,
		GraphDriver:  &storage.DriverData{Name: im.Snapshotter, Data: map[string]string{}},
		RootFS:       imagetypes.RootFS{Type: "layers"},
		Descriptor:   &ocispec.Descriptor{MediaType: rec.Target.MediaType, Digest: rec.Target.Digest, Size: rec.Target.Size},
	}
	if cfg.Created != nil {
		resp.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	if n := len(cfg.History); n > 0 {
		resp.Comment = cfg.History[n-1].Comment
	}
	for _, d := range cfg.RootFS.DiffIDs {
		resp.RootFS.Layers = append(resp.RootFS.Layers, d.String())
	}
	for _, l := range layers {
		resp.Size += l.Size
	}
	return resp, nil
}

// HistoryEntry is one row of `docker history`, newest first: a step of
// the image config's history. Size is the layer blob's size in bytes (0 for
// a step that made no layer). ID is the image ID on the newest row and ""
// (Docker's "<missing>") on the others.
type HistoryEntry struct {
	ID        string
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
	Tags      []string
}

// History returns the stored image ref's history, newest step first.
// Unknown ref: errdefs.ErrNotFound.
func (im *Images) History(ctx context.Context, ref string) ([]HistoryEntry, error) {
	rec, all, err := im.lookupAll(ctx, ref)
	if err != nil {
		return nil, err
	}
	cfg, layers, err := im.Manifest(rec)
	if err != nil {
		return nil, err
	}
	hist := cfg.History
	if len(hist) == 0 { // no history: one row per layer
		for range layers {
			hist = append(hist, ocispec.History{Created: cfg.Created})
		}
	}
	var out []HistoryEntry
	li := 0
	for _, h := range hist {
		entry := HistoryEntry{CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			entry.Created = *h.Created
		}
		if !h.EmptyLayer && li < len(layers) {
			entry.Size = layers[li].Size
			li++
		}
		out = append([]HistoryEntry{entry}, out...)
	}
	if len(out) > 0 {
		out[0].ID = rec.Config.String()
		out[0].Tags, _ = imageNames(all, rec.Config)
	}
	return out, nil
}

// DiskUsage is `docker system df`'s summary. Sizes are in bytes: images
// count their layer blobs once each; containers their writable layer.
type DiskUsage struct {
	Images, ActiveImages           int
	ImagesSize, ImagesReclaimable  int64
	Containers, ActiveContainers   int
	ContainersSize, ContainersFree int64
}

// DiskUsage computes the space the images imgs (every stored record)
// and the containers ctrs take; usage gives the bytes of a container's
// writable layer (0 when unknown).
func (im *Images) DiskUsage(imgs []image.Record, ctrs []record.Container, usage func(id string) int64) DiskUsage {
	var du DiskUsage
	usedIDs := map[digest.Digest]bool{}
	for _, c := range ctrs {
		usedIDs[c.ImageID] = true
		du.Containers++
		size := usage(c.ID)
		du.ContainersSize += size
		if c.State.Status == record.StatusRunning {
			du.ActiveContainers++
		} else {
			du.ContainersFree += size
		}
	}
	seenImage := map[digest.Digest]bool{}
	blobUsed := map[digest.Digest]bool{}  // blob in an image some container uses
	blobSize := map[digest.Digest]int64{} // every layer blob once
	for _, img := range imgs {
		if seenImage[img.Config] {
			continue
		}
		seenImage[img.Config] = true
		du.Images++
		if usedIDs[img.Config] {
			du.ActiveImages++
		}
		_, layers, err := im.Manifest(img)
		if err != nil {
			continue
		}
		for _, l := range layers {
			blobSize[l.Digest] = l.Size
			if usedIDs[img.Config] {
				blobUsed[l.Digest] = true
			}
		}
	}
	for d, s := range blobSize {
		du.ImagesSize += s
		if !blobUsed[d] {
			du.ImagesReclaimable += s
		}
	}
	return du
}
