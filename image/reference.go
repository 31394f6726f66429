// Package image holds image references, the image metadata store, and
// pulling images from registries into the content store.
package image

import (
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
)

// ParseReference parses s the way Docker does and returns it normalized:
// "busybox" becomes "docker.io/library/busybox:latest", a reference without
// tag or digest gets ":latest", and "NAME:TAG@DIGEST" becomes NAME@DIGEST. A malformed reference gives an error
// matching errdefs.ErrInvalidArgument in Docker's wording ("invalid
// reference format").
func ParseReference(s string) (reference.Named, error) {
	// An upper-case first component without "." or ":" is no registry
	// host for Docker, whose parser then refuses the name as not lower
	// case (the library here would take it for a host).
	if first, _, ok := strings.Cut(s, "/"); ok && first != "localhost" && !strings.ContainsAny(first, ".:") && strings.ToLower(first) != first {
		repo, _, _ := strings.Cut(s, "@")
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		return nil, fmt.Errorf("invalid reference format: repository name (library/%s) must be lowercase: %w", repo, errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		if err == reference.ErrNameNotCanonical || err == reference.ErrReferenceInvalidFormat {
			return nil, fmt.Errorf("invalid reference format: %w", errdefs.ErrInvalidArgument)
		}
		// The library's messages already start with "invalid reference format".
		return nil, fmt.Errorf("%s: %w", err, errdefs.ErrInvalidArgument)
	}
	// NAME:TAG@DIGEST names the digest; the tag is ignored, as Docker does.
	if d, ok := named.(reference.Digested); ok {
		return reference.WithDigest(reference.TrimNamed(named), d.Digest())
	}
	return reference.TagNameOnly(named), nil
}

// FamiliarName is the short form Docker prints: "busybox:latest" for
// "docker.io/library/busybox:latest", unchanged for other registries.
func FamiliarName(named reference.Named) string {
	return reference.FamiliarString(named)
}

// RepositoryTag splits a normalized reference into Docker's REPOSITORY and
// TAG columns (familiar repository name; tag, or "<none>" for a digest
// reference).
func RepositoryTag(named reference.Named) (repo, tag string) {
	repo = reference.FamiliarName(named)
	tag = "<none>"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo, tag
}
