package image

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Bucket is the state bucket holding image records keyed by normalized name.
const Bucket = "images"

// Record is one named image in the metadata store. Its blobs live in the
// content store; its unpacked layers are snapshots named by chain ID.
type Record struct {
	// Name is the normalized reference ("docker.io/library/busybox:latest").
	Name string `json:"name"`
	// Target is the platform-specific image manifest.
	Target ocispec.Descriptor `json:"target"`
	// Index is the image index the manifest was chosen from, if any.
	Index *ocispec.Descriptor `json:"index,omitempty"`
	// Config is the digest of the image config: Docker's image ID.
	Config digest.Digest `json:"config"`
	// RepoDigest is the digest the registry served for Name (index or
	// manifest); empty for an image that never came from a registry.
	RepoDigest digest.Digest `json:"repoDigest,omitempty"`
	// Created is when the record was written (UTC).
	Created time.Time `json:"created"`
	// Sizes are the uncompressed sizes in bytes of the image's layers
	// (the lengths of their tar streams, which their diff IDs fix), base
	// first, recorded when the image was registered; nil in records of
	// older Berth versions.
	Sizes []int64 `json:"layerSizes,omitempty"`
	// Size is the sum of Sizes: the image's unpacked size in bytes,
	// the same for one image ID whatever manifest brought it in.
	Size int64 `json:"size,omitempty"`
}

// IsDigest reports whether r is named by a digest reference
// ("repo@sha256:…", from a pull by digest) rather than a tag.
func (r Record) IsDigest() bool { return strings.Contains(r.Name, "@") }

// ID is Docker's image ID: the config digest.
func (r Record) ID() string { return r.Config.String() }

// Get returns the record named name (normalized). Missing: errdefs.ErrNotFound.
func Get(tx *state.Tx, name string) (Record, error) {
	var r Record
	if err := tx.Get(Bucket, name, &r); err != nil {
		if errdefs.IsNotFound(err) {
			return r, fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound)
		}
		return r, err
	}
	return r, nil
}

// Put stores r under r.Name, replacing an older record of that name.
func Put(tx *state.Tx, r Record) error { return tx.Put(Bucket, r.Name, r) }

// Delete removes the record named name; a missing one is not an error.
func Delete(tx *state.Tx, name string) error { return tx.Delete(Bucket, name) }

// List returns every record, sorted by Created, newest first.
func List(tx *state.Tx) ([]Record, error) {
	var out []Record
	err := tx.ForEach(Bucket, func(_ string, data []byte) error {
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// UnpackedSize is r's unpacked size in bytes given its manifest's layers;
// a record of an older Berth, which did not record it, falls back to the
// sum of the layer blobs.
func (r Record) UnpackedSize(layers []ocispec.Descriptor) int64 {
	var n int64
	for _, s := range r.LayerSizes(layers) {
		n += s
	}
	return n
}

// LayerSizes is r's per-layer unpacked sizes (Record.Sizes), base first,
// with UnpackedSize's fallback.
func (r Record) LayerSizes(layers []ocispec.Descriptor) []int64 {
	if len(r.Sizes) == len(layers) {
		return r.Sizes
	}
	out := make([]int64, len(layers))
	for i, l := range layers {
		out[i] = l.Size
	}
	return out
}

// Repo is the repository of a named record ("docker.io/library/busybox";
// "" for a dangling one).
func (r Record) Repo() string {
	named, err := reference.ParseNormalizedNamed(r.Name)
	if err != nil {
		return ""
	}
	return named.Name()
}

// IsDangling reports whether r is a dangling image's record, named by its
// ID ("sha256:…") rather than a reference.
func (r Record) IsDangling() bool { return strings.HasPrefix(r.Name, "sha256:") }

// Names returns the tags (familiar "repo:tag") and repo digests
// (familiar "repo@digest", each once) of the image with ID id, from every
// record that has it, as Docker's RepoTags and RepoDigests: a record
// named by digest (a pull by digest) gives a repo digest, never a tag.
func Names(all []Record, id digest.Digest) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, r := range all {
		if r.Config != id {
			continue
		}
		if r.IsDangling() {
			if r.RepoDigest != "" && !slices.Contains(digests, "<none>@"+r.RepoDigest.String()) {
				digests = append(digests, "<none>@"+r.RepoDigest.String())
			}
			continue
		}
		named, err := reference.ParseNormalizedNamed(r.Name)
		if err != nil {
			continue
		}
		if !r.IsDigest() {
			tags = append(tags, reference.FamiliarString(named))
		}
		if r.RepoDigest != "" {
			if c, err := reference.WithDigest(reference.TrimNamed(named), r.RepoDigest); err == nil && !slices.Contains(digests, reference.FamiliarString(c)) {
				digests = append(digests, reference.FamiliarString(c))
			}
		}
	}
	return tags, digests
}

// PutNamed stores rec under its name. A different image that held the
// name and has no other name stays as a dangling record; a dangling record
// of rec's own image is dropped, since the image now has a name. A
// dangling rec is not stored when its image already has a name.
func PutNamed(tx *state.Tx, rec Record) error {
	all, err := List(tx)
	if err != nil {
		return err
	}
	if rec.IsDangling() {
		for _, r := range all {
			if r.Config == rec.Config && !r.IsDangling() {
				return nil
			}
		}
		return Put(tx, rec)
	}
	if old, err := Get(tx, rec.Name); err == nil && old.Config != rec.Config {
		named := false
		for _, r := range all {
			if r.Config == old.Config && r.Name != old.Name {
				named = true
			}
		}
		if !named {
			old.Name = old.Config.String()
			if err := Put(tx, old); err != nil {
				return err
			}
		}
	}
	if err := Delete(tx, rec.Config.String()); err != nil {
		return err
	}
	return Put(tx, rec)
}

// Lookup finds the stored image ref names inside tx: by name, full image
// ID or unique ID prefix (4 hex digits at least, "sha256:" optional). A
// name that is not stored gives errdefs.ErrNotFound ("No such image").
func Lookup(tx *state.Tx, ref string) (Record, error) {
	if named, err := ParseReference(ref); err == nil {
		if rec, err := Get(tx, named.String()); err == nil {
			return rec, nil
		}
	}
	id := strings.TrimPrefix(ref, "sha256:")
	if len(id) >= 4 && strings.Trim(id, "0123456789abcdef") == "" {
		all, err := List(tx)
		if err != nil {
			return Record{}, err
		}
		for _, r := range all {
			if strings.HasPrefix(r.Config.Encoded(), id) {
				return r, nil
			}
		}
	}
	if named, err := ParseReference(ref); err == nil {
		ref = reference.FamiliarString(named) // "busybox:latest", as Docker says
	}
	return Record{}, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
}
