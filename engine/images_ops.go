package engine

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine/internal/imageops"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/snapshot/storage"
	imagetypes "github.com/moby/moby/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

// Image verbs beyond pull, list and remove; the work is package
// imageops's. Its types are re-exported here.
type (
	// HistoryEntry is one row of `docker history`, newest first: a step
	// of the image config's history. Size is the layer's unpacked size in
	// bytes (0 for a step that made no layer). ID is the image ID on the
	// newest row and "" (Docker's "<missing>") on the others.
	HistoryEntry = imageops.HistoryEntry
	// DiskUsage is `docker system df`'s summary and its -v details. Sizes
	// are in bytes: images count each unpacked layer once, plus the blobs
	// no image references; containers their writable layer.
	DiskUsage = imageops.DiskUsage
	// PushOptions tunes Push: Insecure (plain HTTP), Progress (Docker-style
	// lines, nil for none), Keychain (default: Docker's config.json).
	PushOptions = imageops.PushOptions
	// PushResult is what Push sent: the tag, and the manifest's digest and
	// size in bytes.
	PushResult = imageops.PushResult
	// LoadedImage is one line of `docker load` output: the familiar name
	// loaded, or the image ID for an image the archive did not name.
	LoadedImage = imageops.LoadedImage
	// ImportOptions tunes ImportImage: Name ("" leaves the image
	// dangling), Changes (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
	// WORKDIR), Message, Source (for the default comment) and Platform
	// ("os/arch[/variant]", default linux and this host's arch).
	ImportOptions = imageops.ImportOptions
	// CommitOptions are `docker commit`'s flags: Reference ("" leaves the
	// image dangling), Changes, Comment, Author and Pause.
	CommitOptions = imageops.CommitOptions
)

// DockerHubServer is the key Docker's config.json uses for Docker Hub.
const DockerHubServer = imageops.DockerHubServer

// images is what package imageops needs of the engine.
func (e *Engine) imageOps() *imageops.Images {
	return &imageops.Images{
		DB: e.db, Content: e.content, Root: e.opts.Root, Snapshotter: e.opts.Snapshotter,
		InsecureRegistries: e.opts.InsecureRegistries, Layers: e.unpacker(),
	}
}

// IsDangling reports whether rec is a dangling image's record (Docker's
// "<none>:<none>": named by its ID "sha256:<64 hex>" rather than a
// reference, which no normalized reference can equal).
func IsDangling(rec image.Record) bool { return imageops.IsDangling(rec) }

// Tag gives the stored image source (name, ID or ID prefix) the name
// target, like `docker tag`. A name held by another image moves (that
// image is kept, dangling if it has no other name). An unknown source gives
// errdefs.ErrNotFound; a malformed target errdefs.ErrInvalidArgument.
func (e *Engine) Tag(ctx context.Context, source, target string) error {
	if err := e.images.Tag(ctx, source, target); err != nil {
		return err
	}
	id := source
	if rec, err := e.images.Resolve(ctx, target); err == nil {
		id = rec.Config.String()
	}
	e.emit("image", "tag", id, map[string]string{"name": target})
	return nil
}

// InspectImage describes the stored image ref (name, ID or ID prefix) in
// the shape of Docker's GET /images/{name}/json (`docker image inspect`).
// Size is the image's unpacked size in bytes. Unknown ref:
// errdefs.ErrNotFound.
func (e *Engine) InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error) {
	return e.images.InspectImage(ctx, ref)
}

// History returns the stored image ref's history, newest step first.
// Unknown ref: errdefs.ErrNotFound.
func (e *Engine) History(ctx context.Context, ref string) ([]HistoryEntry, error) {
	return e.images.History(ctx, ref)
}

// PruneReport is what PruneImages removed: rmi-style lines and the bytes
// of images and blobs freed.
type PruneReport = imageops.PruneReport

// PruneImages removes dangling images (all: every image) that no container
// uses, like `docker image prune [-a]`. keep, when non-nil, is asked about
// each candidate and vetoes its removal by returning false (for --filter).
func (e *Engine) PruneImages(ctx context.Context, all bool, keep func(Image) bool) (PruneReport, error) {
	rep, err := e.images.Prune(ctx, all, keep)
	e.emitRemovedImages(rep.Removed)
	if err == nil {
		e.emit("image", "prune", "", map[string]string{"reclaimed": strconv.FormatInt(rep.SpaceReclaimed, 10)})
	}
	return rep, err
}

// DiskUsage computes the space images and containers take (see
// imageops.DiskUsage). It walks every container's writable layer, so it
// costs time proportional to that data.
func (e *Engine) DiskUsage(ctx context.Context) (DiskUsage, error) {
	imgs, err := e.Images(ctx)
	if err != nil {
		return DiskUsage{}, err
	}
	ctrs, err := e.Containers(ctx, true)
	if err != nil {
		return DiskUsage{}, err
	}
	du := e.images.DiskUsage(ctx, imgs, ctrs, func(id string) int64 {
		u, _ := e.snaps.Usage(ctx, id)
		return u.Size
	})
	vols, use, err := e.ListVolumes(ctx)
	if err != nil {
		return du, err
	}
	for _, v := range vols {
		u, _ := storage.DiskUsage(v.Mountpoint)
		du.Volumes = append(du.Volumes, imageops.VolumeUsage{Name: v.Name, Links: len(use[v.Name]), Size: u.Size})
	}
	slices.SortFunc(du.Volumes, func(a, b imageops.VolumeUsage) int { return strings.Compare(a.Name, b.Name) })
	return du, nil
}

// Push uploads the stored image named ref to its registry, layers first
// (skipping those the registry has) and the manifest last, as `docker
// push` does. The manifest is sent byte for byte as stored, so its digest
// is the one pulled. A name that is not stored gives errdefs.ErrNotFound;
// refused credentials errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable.
func (e *Engine) Push(ctx context.Context, ref string, opts PushOptions) (PushResult, error) {
	res, err := e.images.Push(ctx, ref, opts)
	if err == nil {
		e.emit("image", "push", ref, map[string]string{"name": ref})
	}
	return res, err
}

// PullAllTags pulls every tag of the repository repo (a name without tag
// or digest), like `docker pull --all-tags`, and returns the records in
// the registry's tag order. A reference with a tag or digest gives
// errdefs.ErrInvalidArgument.
func (e *Engine) PullAllTags(ctx context.Context, repo string, opts PullOptions) ([]image.Record, error) {
	updated := false
	recs, err := e.images.PullAllTags(ctx, repo, opts.Insecure, func(ctx context.Context, ref string) (image.Record, error) {
		rec, u, err := e.images.PullUpdated(ctx, ref, opts.Platform, opts.Insecure, opts.Keychain, opts.Progress)
		if err == nil {
			e.emit("image", "pull", ref, map[string]string{"name": ref})
		}
		updated = updated || u
		return rec, err
	})
	if err == nil && opts.Progress != nil {
		imageops.PullStatus(opts.Progress, repo, updated) // one line for the repository, as Docker
	}
	return recs, err
}

// NormalizeServer turns a `docker login` server argument into the key
// Docker's config.json uses: DockerHubServer for "" and Docker Hub's
// aliases, else the host[:port] without scheme or trailing path.
func NormalizeServer(server string) string { return imageops.NormalizeServer(server) }

// VerifyLogin checks username and password against server's /v2/
// endpoint with the registry's own scheme (HTTP basic, or the bearer token
// flow), as `docker login` does before it saves anything. Refused
// credentials give errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable.
func (e *Engine) VerifyLogin(ctx context.Context, server, username, password string) error {
	return e.images.VerifyLogin(ctx, server, username, password)
}

// DockerConfigPath is the credentials file Docker and Berth share:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DockerConfigPath() string { return imageops.DockerConfigPath() }

// SaveCredentials stores username and password for server in Docker's
// config.json format at path ("" for DockerConfigPath()): an "auths"
// entry whose "auth" is base64("user:password"). Other keys and entries
// are kept; the file is replaced atomically with mode 0600.
func SaveCredentials(path, server, username, password string) error {
	return imageops.SaveCredentials(path, server, username, password)
}

// RemoveCredentials deletes server's entry from the config file at path
// ("" for DockerConfigPath()). It reports whether there was one.
func RemoveCredentials(path, server string) (bool, error) {
	return imageops.RemoveCredentials(path, server)
}

// SaveImages writes the stored images refs (names, IDs or ID prefixes) to
// w as one tar, both an OCI image layout and a docker-archive (see
// image.WriteArchive), like `docker save`. An image named by a reference
// is saved under that name; one named by ID without names (as Docker
// does, so it loads as an untagged image). An unknown ref gives
// errdefs.ErrNotFound before anything is written.
func (e *Engine) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	if err := e.images.SaveImages(ctx, refs, w); err != nil {
		return err
	}
	for _, ref := range refs {
		e.emit("image", "save", ref, map[string]string{"name": ref})
	}
	return nil
}

// LoadImages reads a save archive (OCI layout or docker-archive, see
// image.ReadArchive) from r, stores and unpacks every image in it and
// registers its names, like `docker load`. An unnamed image is kept as a
// dangling image. platform ("" for the host's) picks the manifest of a
// multi-platform image. A malformed archive gives
// errdefs.ErrInvalidArgument; a blob that does not match its digest
// errdefs.ErrDataLoss.
func (e *Engine) LoadImages(ctx context.Context, r io.Reader, platform string) ([]LoadedImage, error) {
	loaded, err := e.images.LoadImages(ctx, r, platform)
	for _, l := range loaded {
		name := l.Name
		if name == "" {
			name = l.ID
		}
		e.emit("image", "load", l.ID, map[string]string{"name": name})
	}
	return loaded, err
}

// ImportImage makes a one-layer image from the rootfs tar r (plain, gzip
// or zstd), like `docker import`, and returns its record. An unsupported
// or malformed change gives errdefs.ErrInvalidArgument.
func (e *Engine) ImportImage(ctx context.Context, r io.Reader, opts ImportOptions) (image.Record, error) {
	rec, err := e.images.ImportImage(ctx, r, opts)
	if err == nil {
		e.emit("image", "import", rec.Config.String(), map[string]string{"name": rec.Config.String()})
	}
	return rec, err
}

// ImageNames returns the RepoTags (familiar "repo:tag") and RepoDigests
// (familiar "repo@digest", each once) of image ID id among the listing
// imgs, as Docker's image inspect and list report them: a name pulled by
// digest is a repo digest, never a tag.
func ImageNames(imgs []Image, id digest.Digest) (tags, digests []string) {
	recs := make([]image.Record, len(imgs))
	for i, img := range imgs {
		recs[i] = img.Record
	}
	return image.Names(recs, id)
}
