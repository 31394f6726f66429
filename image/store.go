package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
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
}

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
