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
func IsDangling(rec image.Record) bool { return rec.IsDangling() }

// PutImage is image.PutNamed: it stores rec under its name, keeping
// the image that held the name as dangling if it has no other name.
func PutImage(tx *state.Tx, rec image.Record) error { return image.PutNamed(tx, rec) }

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

// sortRefs sorts familiar references as Docker's reference store lists
// an image's RepoTags and RepoDigests: by their fully qualified form
// ("docker.io/library/busybox:latest"); an unparsable one by its text.
func sortRefs(refs []string) {
	full := func(s string) string {
		if n, err := reference.ParseNormalizedNamed(s); err == nil {
			return n.String()
		}
		return s
	}
	slices.SortFunc(refs, func(a, b string) int { return strings.Compare(full(a), full(b)) })
}

// InspectImage describes the stored image ref (name, ID or ID prefix) in
// the shape of Docker's GET /images/{name}/json (`docker image inspect`).
// Size is the image's unpacked size in bytes (Image.Size). Unknown ref:
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
	tags, digests := image.Names(all, rec.Config)
	sortRefs(tags)
	sortRefs(digests)
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
	resp.Size = rec.UnpackedSize(layers)
	return resp, nil
}

// HistoryEntry is one row of `docker history`, newest first: a step of
// the image config's history. Size is the layer's unpacked size in bytes
// (0 for a step that made no layer). ID is the image ID on the newest row and ""
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
	sizes := rec.LayerSizes(layers)
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
			entry.Size = sizes[li]
			li++
		}
		out = append([]HistoryEntry{entry}, out...)
	}
	if len(out) > 0 {
		out[0].ID = rec.Config.String()
		out[0].Tags, _ = image.Names(all, rec.Config)
	}
	return out, nil
}

// DiskUsage is `docker system df`'s summary and, for -v, its details.
// Sizes are in bytes: images count each unpacked layer once (shared ones
// too) plus the blobs no image references; reclaimable are the layers of
// images no container uses and those blobs when older than
// OrphanBlobAge; containers count their writable layer.
type DiskUsage struct {
	Images, ActiveImages           int
	ImagesSize, ImagesReclaimable  int64
	Containers, ActiveContainers   int
	ContainersSize, ContainersFree int64
	// ImageUsage has one entry per image ID, newest first.
	ImageUsage []ImageUsage
	// ContainerUsage has one entry per container, in ctrs' order.
	ContainerUsage []ContainerUsage
	// Volumes are the named volumes (filled by the engine, which owns
	// them), sorted by name.
	Volumes []VolumeUsage
}

// VolumeUsage is one volume's row of `system df -v`: Links is how many
// containers mount it, Size its data's bytes.
type VolumeUsage struct {
	Name  string
	Links int
	Size  int64
}

// ImageUsage is one image's row of `system df -v`: Size its unpacked
// size, SharedSize the part in layers other images have too, UniqueSize
// the rest, Containers how many containers use it.
type ImageUsage struct {
	Image                        Image
	Size, SharedSize, UniqueSize int64
	Containers                   int
}

// ContainerUsage is one container's row of `system df -v`: Size is its
// writable layer's bytes.
type ContainerUsage struct {
	Container record.Container
	Size      int64
}

// DiskUsage computes the space the images imgs (every stored record, as
// List returns them) and the containers ctrs take; usage gives the bytes
// of a container's writable layer (0 when unknown).
func (im *Images) DiskUsage(ctx context.Context, imgs []Image, ctrs []record.Container, usage func(id string) int64) DiskUsage {
	var du DiskUsage
	users := map[digest.Digest]int{}
	for _, c := range ctrs {
		users[c.ImageID]++
		du.Containers++
		size := usage(c.ID)
		du.ContainersSize += size
		du.ContainerUsage = append(du.ContainerUsage, ContainerUsage{Container: c, Size: size})
		if c.State.Status == record.StatusRunning || c.State.Status == record.StatusPaused {
			du.ActiveContainers++
		} else {
			du.ContainersFree += size
		}
	}
	// A layer is its chain ID: the same diff ID on another base is another layer.
	type layer struct {
		size   int64
		images int
		used   bool
	}
	layersOf := map[digest.Digest][]digest.Digest{}
	all := map[digest.Digest]*layer{}
	for _, img := range imgs {
		id := img.Record.Config
		if _, seen := layersOf[id]; seen {
			continue
		}
		_, descs, err := im.Manifest(img.Record)
		if err != nil {
			layersOf[id] = nil
			continue
		}
		sizes := img.Record.LayerSizes(descs)
		chains := unpack.ChainIDs(img.Config.RootFS.DiffIDs)
		layersOf[id] = chains
		for i, c := range chains {
			l := all[c]
			if l == nil {
				l = &layer{size: sizes[i]}
				all[c] = l
			}
			l.images++
			l.used = l.used || users[id] > 0
		}
		du.Images++
		if users[id] > 0 {
			du.ActiveImages++
		}
	}
	for _, l := range all {
		du.ImagesSize += l.size
		if !l.used {
			du.ImagesReclaimable += l.size
		}
	}
	seen := map[digest.Digest]bool{}
	for _, img := range imgs {
		id := img.Record.Config
		if seen[id] {
			continue
		}
		seen[id] = true
		u := ImageUsage{Image: img, Containers: users[id]}
		for _, c := range layersOf[id] {
			u.Size += all[c].size
			if all[c].images > 1 {
				u.SharedSize += all[c].size
			}
		}
		u.UniqueSize = u.Size - u.SharedSize
		du.ImageUsage = append(du.ImageUsage, u)
	}
	if orphans, err := im.sweepBlobs(ctx, false); err == nil {
		du.ImagesSize += orphans
		du.ImagesReclaimable += orphans
	}
	return du
}
