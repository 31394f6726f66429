package imageops

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SaveImages writes the stored images refs (names, IDs or ID prefixes) to
// w as one tar, both an OCI image layout and a docker-archive (see
// image.WriteArchive), like `docker save`. An image named by a reference
// is saved under that name; one named by ID without names (as Docker
// does, so it loads as an untagged image). An
// unknown ref gives errdefs.ErrNotFound before anything is written.
func (im *Images) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	var imgs []image.ArchiveImage
	byID := map[string]int{}
	err := im.DB.View(ctx, func(tx *state.Tx) error {
		for _, ref := range refs {
			rec, err := Lookup(tx, ref)
			if err != nil {
				return err
			}
			var names []string
			if named, err := image.ParseReference(ref); err == nil && named.String() == rec.Name {
				names = []string{rec.Name}
			}
			i, ok := byID[rec.Config.String()]
			if !ok {
				img, err := image.Stored(im.Content, rec)
				if err != nil {
					return err
				}
				i = len(imgs)
				byID[rec.Config.String()] = i
				imgs = append(imgs, image.ArchiveImage{Image: img})
			}
			for _, n := range names {
				if !slices.Contains(imgs[i].Names, n) {
					imgs[i].Names = append(imgs[i].Names, n)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return image.WriteArchive(w, imgs)
}

// LoadedImage is one line of `docker load` output: the familiar name
// loaded, or the image ID for an image the archive did not name.
type LoadedImage struct {
	Name string
	ID   string
}

// LoadImages reads a save archive (OCI layout or docker-archive, see
// image.ReadArchive) from r, stores and unpacks every image in it and
// registers its names, like `docker load`. An unnamed image is kept as a
// dangling image. platform ("" for the host's) picks the manifest of a
// multi-platform image. A malformed archive gives
// errdefs.ErrInvalidArgument; a blob that does not match its digest
// errdefs.ErrDataLoss; a malformed platform errdefs.ErrInvalidArgument.
func (im *Images) LoadImages(ctx context.Context, r io.Reader, platform string) ([]LoadedImage, error) {
	plat, err := v1Platform(platform)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(im.Root, "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	imgs, err := image.ReadArchive(r, dir, plat)
	if err != nil {
		return nil, err
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("no images found in the archive: %w", errdefs.ErrInvalidArgument)
	}
	var out []LoadedImage
	for _, ai := range imgs {
		names := ai.Names
		if len(names) == 0 {
			cfg, err := ai.Image.ConfigName()
			if err != nil {
				return out, err
			}
			names = []string{cfg.String()}
		}
		rec, err := image.Write(ctx, im.Content, names[0], ai.Image)
		if err != nil {
			return out, fmt.Errorf("loading image: %w", err)
		}
		for _, n := range names {
			rec.Name = n
			if err := im.Register(ctx, rec); err != nil {
				return out, err
			}
			if IsDangling(rec) {
				out = append(out, LoadedImage{ID: rec.Config.String()})
			} else {
				named, _ := reference.ParseNormalizedNamed(n)
				out = append(out, LoadedImage{Name: reference.FamiliarString(named), ID: rec.Config.String()})
			}
		}
	}
	return out, nil
}

// ImportOptions tunes ImportImage.
type ImportOptions struct {
	// Name is the reference to give the image; "" leaves it dangling.
	Name string
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL.
	Changes []string
	// Message is the history comment; default "Imported from SOURCE".
	Message string
	// Source names the input in the default comment ("-" for stdin).
	Source string
	// Platform is "os/arch[/variant]"; default linux and this host's arch.
	Platform string
}

// ImportImage makes a one-layer image from the rootfs tar r (plain, gzip
// or zstd), like `docker import`, and returns its record. An unsupported
// or malformed change or platform gives errdefs.ErrInvalidArgument.
func (im *Images) ImportImage(ctx context.Context, r io.Reader, opts ImportOptions) (image.Record, error) {
	plat, err := v1Platform(opts.Platform)
	if err != nil {
		return image.Record{}, err
	}
	cfg := v1.Config{}
	for _, c := range opts.Changes {
		if err := applyChange(&cfg, c); err != nil {
			return image.Record{}, err
		}
	}
	name := ""
	if opts.Name != "" {
		named, err := image.ParseReference(opts.Name)
		if err != nil {
			return image.Record{}, err
		}
		name = named.String()
	}
	if plat == nil {
		plat = &v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	}
	dir, err := os.MkdirTemp(im.Root, "import-")
	if err != nil {
		return image.Record{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(path)
	if err != nil {
		return image.Record{}, err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return image.Record{}, fmt.Errorf("reading import source: %w", err)
	}
	if err := checkTar(path); err != nil {
		return image.Record{}, err
	}
	layer, err := tarball.LayerFromFile(path, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return image.Record{}, fmt.Errorf("import source: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return image.Record{}, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return image.Record{}, err
	}
	cf = cf.DeepCopy()
	now := v1.Time{Time: time.Now().UTC()}
	cf.Created = now
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config = cfg
	comment := opts.Message
	if comment == "" {
		src := opts.Source
		if src == "" {
			src = "-"
		}
		comment = "Imported from " + src
	}
	cf.History = []v1.History{{Created: now, Comment: comment}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return image.Record{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return image.Record{}, err
	}
	if name == "" {
		name = id.String()
	}
	rec, err := image.Write(ctx, im.Content, name, img)
	if err != nil {
		return image.Record{}, err
	}
	if err := im.Register(ctx, rec); err != nil {
		return image.Record{}, err
	}
	return rec, nil
}

// checkTar reads the (possibly compressed) tar at path to its end, so that
// input that is not a tar is refused before anything is stored.
func checkTar(path string) error {
	l, err := tarball.LayerFromFile(path)
	if err != nil {
		return fmt.Errorf("import source is not a tar archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("import source is not a tar archive: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if _, err := tr.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("import source is not a tar archive: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
}

// applyChange applies one Dockerfile instruction to cfg.
func applyChange(cfg *v1.Config, change string) error {
	instr, rest, _ := strings.Cut(strings.TrimSpace(change), " ")
	rest = strings.TrimSpace(rest)
	bad := func(why string) error {
		return fmt.Errorf("invalid change %q: %s: %w", change, why, errdefs.ErrInvalidArgument)
	}
	if rest == "" {
		return bad("missing argument")
	}
	switch strings.ToUpper(instr) {
	case "CMD", "ENTRYPOINT":
		var argv []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &argv); err != nil {
				return bad("not a JSON array of strings")
			}
		} else {
			argv = []string{"/bin/sh", "-c", rest}
		}
		if strings.EqualFold(instr, "CMD") {
			cfg.Cmd = argv
		} else {
			cfg.Entrypoint = argv
		}
	case "ENV":
		pairs, err := keyValues(rest)
		if err != nil {
			return bad(err.Error())
		}
		for _, kv := range pairs {
			k, _, _ := strings.Cut(kv, "=")
			cfg.Env = setEnv(cfg.Env, k, kv)
		}
	case "LABEL":
		pairs, err := keyValues(rest)
		if err != nil {
			return bad(err.Error())
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			k, v, _ := strings.Cut(kv, "=")
			cfg.Labels[k] = v
		}
	case "WORKDIR":
		cfg.WorkingDir = rest
	case "USER":
		cfg.User = rest
	case "EXPOSE":
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(rest) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[strings.ToLower(p)] = struct{}{}
		}
	default:
		return bad(fmt.Sprintf("%s is not supported (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER or WORKDIR)", strings.ToUpper(instr)))
	}
	return nil
}

func setEnv(env []string, key, kv string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// keyValues parses Dockerfile "k=v k2=\"v 2\"" or the legacy "k v" form
// into "k=v" items.
func keyValues(s string) ([]string, error) {
	words, err := shellWords(s)
	if err != nil {
		return nil, err
	}
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return []string{k + "=" + strings.TrimSpace(v)}, nil
	}
	for _, w := range words {
		if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", w)
		}
	}
	return words, nil
}

// shellWords splits s at unquoted spaces, removing quotes and backslash
// escapes.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
