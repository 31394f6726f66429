package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations Docker (25+) and containerd put on the descriptors of a saved
// image's index.json.
const (
	// AnnotationImageName holds the full normalized reference
	// ("docker.io/library/busybox:latest").
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI annotation; Docker writes the tag alone.
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// ArchiveImage is one image in a save archive: the image and the
// normalized references it is saved or loaded under (none for an image
// saved by ID).
type ArchiveImage struct {
	Names []string
	Image v1.Image
}

// archiveEntry is one element of a docker-archive manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteArchive writes imgs to w as one tar that is both an OCI image layout
// (oci-layout, index.json, blobs/sha256/…) and a docker-archive
// (manifest.json naming the same blobs), the format `docker save` writes
// since Docker 25. Blobs are written once each, as stored (compressed
// layers stay compressed), so manifest digests survive a save/load round
// trip.
func WriteArchive(w io.Writer, imgs []ArchiveImage) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	written := map[v1.Hash]bool{}
	writeBlob := func(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
		if written[h] {
			return nil
		}
		written[h] = true
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := tw.WriteHeader(&tar.Header{Name: "blobs/" + h.Algorithm + "/" + h.Hex, Mode: 0o644, Size: size, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		n, err := io.Copy(tw, rc)
		if err == nil && n != size {
			err = fmt.Errorf("blob %s: read %d bytes, want %d: %w", h, n, size, errdefs.ErrDataLoss)
		}
		return err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []v1.Descriptor{}}
	entries := []archiveEntry{}
	for _, ai := range imgs {
		m, err := ai.Image.Manifest()
		if err != nil {
			return err
		}
		raw, err := ai.Image.RawManifest()
		if err != nil {
			return err
		}
		rawCfg, err := ai.Image.RawConfigFile()
		if err != nil {
			return err
		}
		if err := writeBlob(m.Config.Digest, int64(len(rawCfg)), func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(rawCfg)), nil
		}); err != nil {
			return err
		}
		entry := archiveEntry{Config: "blobs/sha256/" + m.Config.Digest.Hex, RepoTags: []string{}}
		for _, l := range m.Layers {
			layer, err := ai.Image.LayerByDigest(l.Digest)
			if err != nil {
				return err
			}
			if err := writeBlob(l.Digest, l.Size, layer.Compressed); err != nil {
				return err
			}
			entry.Layers = append(entry.Layers, "blobs/"+l.Digest.Algorithm+"/"+l.Digest.Hex)
		}
		mt, err := ai.Image.MediaType()
		if err != nil {
			return err
		}
		if mt == types.DockerManifestSchema2 {
			// The OCI layout gets an OCI manifest naming the same blobs
			// (skopeo and umoci refuse a Docker one there); manifest.json
			// names the config and layers directly and is unaffected.
			if raw, err = ociManifest(m); err != nil {
				return err
			}
			mt = types.OCIManifestSchema1
		}
		mh, size, err := v1.SHA256(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		if err := writeBlob(mh, size, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }); err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: mt, Digest: mh, Size: size}
		if len(ai.Names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range ai.Names {
			named, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				return fmt.Errorf("invalid reference format: %s: %w", n, errdefs.ErrInvalidArgument)
			}
			d := desc
			d.Annotations = map[string]string{AnnotationImageName: named.String()}
			if t, ok := named.(reference.Tagged); ok {
				d.Annotations[AnnotationRefName] = t.Tag()
				entry.RepoTags = append(entry.RepoTags, reference.FamiliarString(named))
			}
			index.Manifests = append(index.Manifests, d)
		}
		entries = append(entries, entry)
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	man, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	if err := writeFile("index.json", idx); err != nil {
		return err
	}
	if err := writeFile("manifest.json", man); err != nil {
		return err
	}
	if err := writeFile("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	return tw.Close()
}

// ociMediaTypes maps Docker schema2 media types to their OCI equivalents.
var ociMediaTypes = map[types.MediaType]types.MediaType{
	types.DockerConfigJSON:                              types.OCIConfigJSON,
	types.DockerLayer:                                   types.OCILayer,
	types.DockerForeignLayer:                            types.OCIRestrictedLayer,
	types.DockerUncompressedLayer:                       types.OCIUncompressedLayer,
	"application/vnd.docker.image.rootfs.diff.tar.zstd": types.OCILayerZStd,
}

// ociManifest converts the Docker schema2 manifest m into an OCI image
// manifest with the same config and layer blobs (same digests and sizes;
// media types converted), as raw JSON.
func ociManifest(m *v1.Manifest) ([]byte, error) {
	c := *m
	c.MediaType = types.OCIManifestSchema1
	conv := func(d v1.Descriptor) v1.Descriptor {
		if mt, ok := ociMediaTypes[d.MediaType]; ok {
			d.MediaType = mt
		}
		return d
	}
	c.Config = conv(m.Config)
	c.Layers = make([]v1.Descriptor, len(m.Layers))
	for i, l := range m.Layers {
		c.Layers[i] = conv(l)
	}
	return json.Marshal(c)
}

// ReadArchive reads a save archive from r: an OCI image layout in a tar
// (Docker 25+ `docker save`, `skopeo copy … oci-archive:`) or a
// docker-archive (`docker save` of older Docker, `skopeo copy …
// docker-archive:`). dir is a scratch directory the caller owns: the
// returned images read their blobs from it, so remove it only after they
// have been stored. From an index, platform (default linux/GOARCH) picks
// the manifest of a multi-platform image.
//
// Names come from index.json's annotations (io.containerd.image.name, or
// org.opencontainers.image.ref.name when it is a full reference) and from
// manifest.json's RepoTags. Malformed archives give errdefs.ErrInvalidArgument.
func ReadArchive(r io.Reader, dir string, platform *v1.Platform) ([]ArchiveImage, error) {
	tarPath := filepath.Join(dir, "archive.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading archive: %w", err)
	}
	layoutDir := filepath.Join(dir, "layout")
	files, err := extractLayout(tarPath, layoutDir)
	if err != nil {
		return nil, err
	}
	var entries []archiveEntry
	if data, ok := files["manifest.json"]; ok {
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("archive manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if _, ok := files["index.json"]; ok {
		return readLayout(layoutDir, entries, platform)
	}
	if entries == nil {
		return nil, fmt.Errorf("archive has neither index.json nor manifest.json: %w", errdefs.ErrInvalidArgument)
	}
	return readDockerArchive(tarPath, entries)
}

// extractLayout copies the OCI layout files of the tar at tarPath into dir
// (regular files only, every path confined to dir) and returns the small
// top-level files (index.json, manifest.json, oci-layout) by name.
func extractLayout(tarPath, dir string) (map[string][]byte, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	top := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		n := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		switch {
		case n == "index.json" || n == "manifest.json" || n == "oci-layout":
			data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, err
			}
			top[n] = data
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, n), data, 0o600); err != nil {
				return nil, err
			}
		case strings.HasPrefix(n, "blobs/") && !strings.Contains(n, ".."):
			parts := strings.Split(n, "/")
			if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
				continue
			}
			target := filepath.Join(dir, "blobs", parts[1], parts[2])
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return nil, err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return top, nil
}

func readLayout(dir string, entries []archiveEntry, platform *v1.Platform) ([]ArchiveImage, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("archive OCI layout: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("archive index.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("archive index.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	want := hostPlatform(platform)
	var out []ArchiveImage
	byDigest := map[v1.Hash]int{}
	byConfig := map[string]int{}
	for _, desc := range im.Manifests {
		var img v1.Image
		h := desc.Digest
		switch {
		case desc.MediaType.IsIndex():
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				return nil, fmt.Errorf("archive index %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, fmt.Errorf("archive index %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
			}
			found := false
			for _, d := range cm.Manifests {
				if d.MediaType.IsImage() && (d.Platform == nil || d.Platform.Satisfies(want)) {
					if img, err = child.Image(d.Digest); err != nil {
						return nil, err
					}
					h, found = d.Digest, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("archive image %s has no manifest for %s: %w", desc.Digest, want.String(), errdefs.ErrNotFound)
			}
		case desc.MediaType.IsImage():
			if img, err = idx.Image(desc.Digest); err != nil {
				return nil, fmt.Errorf("archive image %s: %v: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
			}
		default:
			continue
		}
		i, ok := byDigest[h]
		if !ok {
			i = len(out)
			byDigest[h] = i
			out = append(out, ArchiveImage{Image: img})
			if cfg, err := img.ConfigName(); err == nil {
				byConfig[cfg.Hex] = i
			}
		}
		if n := annotatedName(desc.Annotations); n != "" {
			out[i].Names = appendUnique(out[i].Names, n)
		}
	}
	for _, e := range entries {
		i, ok := byConfig[path.Base(e.Config)]
		if !ok {
			continue
		}
		for _, t := range e.RepoTags {
			if named, err := ParseReference(t); err == nil {
				out[i].Names = appendUnique(out[i].Names, named.String())
			}
		}
	}
	return out, nil
}

func annotatedName(a map[string]string) string {
	if n := a[AnnotationImageName]; n != "" {
		if named, err := ParseReference(n); err == nil {
			return named.String()
		}
	}
	// A bare tag ("latest") says nothing about the repository.
	if n := a[AnnotationRefName]; strings.ContainsAny(n, "/:") {
		if named, err := ParseReference(n); err == nil {
			return named.String()
		}
	}
	return ""
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func readDockerArchive(tarPath string, entries []archiveEntry) ([]ArchiveImage, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	var out []ArchiveImage
	for _, e := range entries {
		var tag *name.Tag
		var names []string
		for _, t := range e.RepoTags {
			named, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("archive tag %q: %w", t, err)
			}
			names = append(names, named.String())
		}
		if len(names) > 0 {
			t, err := name.NewTag(names[0])
			if err != nil {
				return nil, fmt.Errorf("archive tag %q: %v: %w", names[0], err, errdefs.ErrInvalidArgument)
			}
			tag = &t
		} else if len(entries) > 1 {
			return nil, fmt.Errorf("archive holds several images and one has no tag: %w", errdefs.ErrNotImplemented)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return nil, fmt.Errorf("archive image %s: %v: %w", e.Config, err, errdefs.ErrInvalidArgument)
		}
		out = append(out, ArchiveImage{Names: names, Image: img})
	}
	return out, nil
}

func hostPlatform(p *v1.Platform) v1.Platform {
	if p != nil {
		return *p
	}
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}
