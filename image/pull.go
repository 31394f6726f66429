package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/image/content"
	"github.com/berthproject/berth/image/fetcher"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// PullOptions tunes Pull. The zero value pulls the host's platform over
// HTTPS (plain HTTP only for loopback registries, as Docker allows) with
// credentials from Docker's config.json.
type PullOptions struct {
	// Platform selects a manifest from an index; default: this host's
	// linux/GOARCH.
	Platform *ocispec.Platform
	// Insecure allows plain HTTP and unverified TLS for this registry.
	Insecure bool
	// Keychain supplies credentials; default authn.DefaultKeychain
	// (~/.docker/config.json, $DOCKER_CONFIG). It is read by the calling
	// process, which passes the one credential needed to the fetcher.
	Keychain authn.Keychain
	// Transport carries registry traffic; default remote.DefaultTransport.
	// Setting it runs the fetcher in this process (see fetcher.Options).
	Transport http.RoundTripper
	// Fetcher is the command that runs an unprivileged fetcher process
	// when the caller is root; nil means fetcher.DefaultCommand().
	Fetcher *fetcher.Command
	// Progress receives Docker-style status: if it implements
	// ProgressReporter, structured events; else one "ID: Status" line per
	// event as Docker prints when not on a terminal ("abc123def456: Pull
	// complete"), without byte counts. nil prints nothing.
	Progress io.Writer
	// Concurrency is how many layers download at once; default 3 (Docker's).
	Concurrency int
	// Layers, if set, follows the layers while they download, so that the
	// caller can unpack each one as soon as its blob is in the store.
	Layers LayerSink
	// Known, if set, reports whether an image with this config digest
	// (image ID) is already registered and unpacked; the pull then shows
	// no per-layer lines for the layers it has, as Docker does for an
	// image that is up to date.
	Known func(config digest.Digest) bool
	// Committed, if set, is called once for each blob (index, config,
	// layer, manifest) this pull added to the store, that is, that was not
	// there when the pull looked, possibly from several goroutines at once.
	// Pull itself never removes what it committed (a cancelled pull's
	// blobs are reused by the next); a caller that wants a failed pull to
	// leave nothing behind removes these.
	Committed func(digest.Digest)
}

// LayerSink follows a pull's layers (PullOptions.Layers).
type LayerSink interface {
	// Manifest is called once, before any layer is asked for, with the
	// image's verified manifest and its verified config (raw JSON, already
	// committed to the store). An error stops the pull and is its result.
	// The sink calls unpacked (from any goroutine) with each layer's blob
	// digest, in layer order, once that layer is unpacked.
	Manifest(m ocispec.Manifest, config []byte, unpacked func(digest.Digest)) error
	// LayerReady is called once for each distinct layer digest of the
	// manifest as soon as its blob is in the store: at the start for the
	// layers already there, and as each download is verified and
	// committed. Calls may come from several goroutines at once.
	LayerReady(d digest.Digest)
	// Wait returns once every layer is unpacked, or the unpack failed
	// (its error); Pull calls it before it commits the manifest.
	Wait() error
}

// ProgressEvent is one status update of a pull, shaped like one message of
// Docker's JSON progress stream (POST /images/create). ID is a layer's
// short digest (12 hex digits), a tag for "Pulling from …", or empty.
// Status is Docker's text: "Pulling from REPO", "Already exists", "Pulling
// fs layer", "Downloading", "Verifying Checksum", "Download complete",
// "Pull complete" (unpacked, when a LayerSink unpacks; else stored),
// "Digest: sha256:…". Current and Total are the bytes of
// a "Downloading" layer received so far and expected.
type ProgressEvent struct {
	ID             string
	Status         string
	Current, Total int64
}

// ProgressReporter is implemented by a PullOptions.Progress writer that
// renders structured progress (a terminal display). ReportProgress is
// never called concurrently by one pull.
type ProgressReporter interface {
	ReportProgress(ProgressEvent)
}

// Size limits for the blobs the parent holds in memory, in bytes.
const (
	maxManifestSize = 4 << 20 // the distribution spec's limit registries apply
	maxConfigSize   = 16 << 20
)

// ingestMaxAge is the age beyond which a pull removes files left in the
// content store's ingest directory (a killed pull's partial blobs);
// younger files may be another process's writes in progress.
const ingestMaxAge = 10 * time.Minute

// progressInterval spaces a layer's "Downloading" events.
const progressInterval = 100 * time.Millisecond

func (o PullOptions) platform() ocispec.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm64" {
		p.Variant = "v8"
	}
	return p
}

// RemoteReference converts a normalized reference into go-containerregistry's
// form; insecure allows plain HTTP.
func RemoteReference(named reference.Named, insecure bool) (name.Reference, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(named.String(), opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return ref, nil
}

// Pull downloads the image named by named (normalized) into cs: the index
// if any, the manifest for the wanted platform, the config and every layer
// blob, each verified against its digest before it is committed. It returns
// the Record to register; the caller registers it (and unpacks the layers).
//
// When the caller is root, the registry I/O runs in a fetcher process
// with no privileges (package fetcher); this process only checks what the
// fetcher sends against the digests it expects and commits it: the
// manifest against the digest a digest-pinned reference names (and, from
// an index, against the index's entries), the config and the layers
// against the manifest. At its start Pull removes ingest files older than
// ten minutes; a cancelled Pull leaves no ingest file of its own.
//
// Errors carry the image name and the cause in one line and match:
// errdefs.ErrNotFound (no such repository, tag, or platform),
// errdefs.ErrUnauthenticated (registry refused the credentials),
// errdefs.ErrUnavailable (registry unreachable, failing with 5xx, or a
// blob's transfer cut short),
// errdefs.ErrNotImplemented (unsupported media type),
// errdefs.ErrDataLoss (content does not match its digest),
// context.Canceled (ctx was cancelled).
// Blobs committed before a failure stay in cs (they are verified and reused
// by a later pull, which reports them "Already exists"; the caller can
// remove them, see PullOptions.Committed); nothing is registered.
func Pull(ctx context.Context, cs *content.Store, named reference.Named, opts PullOptions) (Record, error) {
	if _, err := RemoteReference(named, opts.Insecure); err != nil {
		return Record{}, err
	}
	rec, err := pull(ctx, cs, named, opts)
	if err != nil {
		return Record{}, pullError(named, err)
	}
	return rec, nil
}

// pullError names the image in err unless the fetcher already did.
func pullError(named reference.Named, err error) error {
	var remote *fetcher.RemoteError
	if errors.As(err, &remote) {
		return err
	}
	fam := reference.FamiliarString(named)
	for _, c := range fetcher.Categories {
		if errors.Is(err, c.Err) {
			return fmt.Errorf("pulling %s: %w", fam, err)
		}
	}
	return fmt.Errorf("pulling %s: %s: %w", fam, strings.Join(strings.Fields(err.Error()), " "), errdefs.ErrUnknown)
}

// puller is the root side of one pull: it reads the fetcher's frames,
// checks them and commits blobs.
type puller struct {
	ctx    context.Context
	cs     *content.Store
	conn   *fetcher.Conn
	report func(ProgressEvent)
	sink   LayerSink           // nil: none
	added  func(digest.Digest) // nil: none
	known  func(digest.Digest) bool

	mu      sync.Mutex
	fetched map[digest.Digest]bool // layers this pull downloads
}

func pull(ctx context.Context, cs *content.Store, named reference.Named, opts PullOptions) (Record, error) {
	_ = cs.Prune(ingestMaxAge)
	report := reporter(opts.Progress)
	if t, ok := named.(reference.Tagged); ok {
		report(ProgressEvent{ID: t.Tag(), Status: "Pulling from " + reference.Path(named)})
	} else if d, ok := named.(reference.Digested); ok {
		report(ProgressEvent{ID: d.Digest().String(), Status: "Pulling from " + reference.Path(named)})
	}
	plat := opts.platform()
	req := fetcher.Request{
		Reference: named.String(), Insecure: opts.Insecure, Concurrency: opts.Concurrency,
		OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant,
	}
	var err error
	if req.Auth, err = credentials(named, opts.Keychain); err != nil {
		return Record{}, err
	}
	conn, err := fetcher.Start(ctx, fetcher.Options{Command: opts.Fetcher, Transport: opts.Transport})
	if err != nil {
		return Record{}, err
	}
	defer conn.Close()
	p := &puller{ctx: ctx, cs: cs, conn: conn, report: report, sink: opts.Layers, added: opts.Committed, known: opts.Known, fetched: map[digest.Digest]bool{}}
	rec, err := p.run(named, plat, &req)
	if err != nil && ctx.Err() != nil {
		return Record{}, ctx.Err()
	}
	return rec, err
}

// credentials resolves the credential for named's registry from kc, as
// this (possibly root) process sees it; nil means anonymous.
func credentials(named reference.Named, kc authn.Keychain) (*fetcher.Auth, error) {
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	reg, err := name.NewRegistry(reference.Domain(named))
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	a, err := kc.Resolve(reg)
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %v: %w", err, errdefs.ErrFailedPrecondition)
	}
	cfg, err := a.Authorization()
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %v: %w", err, errdefs.ErrFailedPrecondition)
	}
	if cfg == nil || *cfg == (authn.AuthConfig{}) {
		return nil, nil
	}
	return &fetcher.Auth{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth, IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken}, nil
}

// reporter adapts PullOptions.Progress to events; the result is safe for
// concurrent use.
func reporter(w io.Writer) func(ProgressEvent) {
	if w == nil {
		return func(ProgressEvent) {}
	}
	var mu sync.Mutex
	if r, ok := w.(ProgressReporter); ok {
		return func(ev ProgressEvent) {
			mu.Lock()
			defer mu.Unlock()
			r.ReportProgress(ev)
		}
	}
	return func(ev ProgressEvent) {
		if ev.Status == "Downloading" {
			return // Docker shows byte progress only on a terminal
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.ID != "" {
			fmt.Fprintf(w, "%s: %s\n", ev.ID, ev.Status)
		} else {
			fmt.Fprintln(w, ev.Status)
		}
	}
}

func (p *puller) run(named reference.Named, plat ocispec.Platform, req *fetcher.Request) (Record, error) {
	if err := p.conn.Send(fetcher.Frame{Type: fetcher.TypeRequest, Request: req}); err != nil {
		return Record{}, p.broken(err)
	}
	rec := Record{Name: named.String(), Created: time.Now().UTC()}

	// The index or manifest the registry serves for the reference.
	top, err := p.readBlob(fetcher.KindIndex, fetcher.KindManifest)
	if err != nil {
		return Record{}, err
	}
	if dg, ok := named.(reference.Digested); ok && dg.Digest() != top.digest {
		return Record{}, fmt.Errorf("registry served %s for %s: %w", top.digest, dg.Digest(), content.ErrDigestMismatch)
	}
	rec.RepoDigest = top.digest
	man := top
	if top.kind == fetcher.KindIndex {
		var idx ocispec.Index
		if err := parseJSON(top, &idx, ocispec.MediaTypeImageIndex, string(types.DockerManifestList)); err != nil {
			return Record{}, err
		}
		rec.Index = &ocispec.Descriptor{MediaType: top.mediaType, Digest: top.digest, Size: int64(len(top.data))}
		if man, err = p.readBlob(fetcher.KindManifest); err != nil {
			return Record{}, err
		}
		entry, ok := indexEntry(idx, man.digest)
		if !ok {
			return Record{}, fmt.Errorf("manifest %s is not listed in index %s: %w", man.digest, top.digest, errdefs.ErrDataLoss)
		}
		if pp := entry.Platform; pp != nil && (pp.OS != plat.OS || pp.Architecture != plat.Architecture) {
			return Record{}, fmt.Errorf("manifest %s is for %s/%s, want %s: %w", man.digest, pp.OS, pp.Architecture, FormatPlatform(plat), errdefs.ErrDataLoss)
		}
		rec.Target.Platform = entry.Platform
	}
	var m ocispec.Manifest
	if err := parseJSON(man, &m, ocispec.MediaTypeImageManifest, string(types.DockerManifestSchema2)); err != nil {
		return Record{}, err
	}
	rec.Target.MediaType, rec.Target.Digest, rec.Target.Size = man.mediaType, man.digest, int64(len(man.data))
	if err := checkManifest(&m); err != nil {
		return Record{}, err
	}
	rec.Config = m.Config.Digest

	cfg, err := p.readBlob(fetcher.KindConfig)
	if err != nil {
		return Record{}, err
	}
	if cfg.digest != m.Config.Digest || int64(len(cfg.data)) != m.Config.Size {
		return Record{}, fmt.Errorf("config %s (%d bytes) does not match the manifest's %s (%d bytes): %w", cfg.digest, len(cfg.data), m.Config.Digest, m.Config.Size, content.ErrDigestMismatch)
	}
	if rec.Index != nil {
		if err := p.write(top); err != nil {
			return Record{}, err
		}
	}
	if err := p.write(cfg); err != nil {
		return Record{}, err
	}
	if p.sink != nil {
		if err := p.sink.Manifest(m, cfg.data, p.unpacked); err != nil {
			return Record{}, err
		}
	}
	if err := p.fetchLayers(m.Layers, p.known != nil && p.known(m.Config.Digest)); err != nil {
		return Record{}, err
	}
	if p.sink != nil {
		if err := p.sink.Wait(); err != nil {
			return Record{}, err
		}
	}
	// The manifest goes in last: its presence means every blob it names is here.
	if err := p.write(man); err != nil {
		return Record{}, err
	}
	p.report(ProgressEvent{Status: "Digest: " + rec.RepoDigest.String()})
	return rec, nil
}

// write commits a verified small blob and tells the caller if it is new.
func (p *puller) write(b smallBlob) error {
	had := p.cs.Has(b.digest)
	if err := p.cs.Write(p.ctx, b.digest, int64(len(b.data)), bytes.NewReader(b.data)); err != nil {
		return err
	}
	if !had {
		p.committed(b.digest)
	} else {
		_ = p.cs.Touch(b.digest) // reused: spare it from a sweep of old blobs
	}
	return nil
}

// committed tells the caller, if it asked, that blob d is new in the store.
func (p *puller) committed(d digest.Digest) {
	if p.added != nil {
		p.added(d)
	}
}

// smallBlob is an index, manifest or config as received and verified.
type smallBlob struct {
	kind      string
	digest    digest.Digest // what the bytes hash to, equal to what the fetcher claimed
	mediaType string        // as the registry described it
	data      []byte
}

// readBlob reads one whole blob stream of one of kinds and checks that it
// hashes to the digest the fetcher claims for it.
func (p *puller) readBlob(kinds ...string) (smallBlob, error) {
	f, err := p.next()
	if err != nil {
		return smallBlob{}, err
	}
	if f.Type != fetcher.TypeBlob || !contains(kinds, f.Kind) {
		return smallBlob{}, unexpected(f)
	}
	limit := int64(maxManifestSize)
	if f.Kind == fetcher.KindConfig {
		limit = maxConfigSize
	}
	if f.Size > limit {
		return smallBlob{}, fmt.Errorf("%s %s is %d bytes, more than %d: %w", f.Kind, f.Digest, f.Size, limit, errdefs.ErrNotImplemented)
	}
	b := smallBlob{kind: f.Kind, digest: digest.Digest(f.Digest), mediaType: f.MediaType, data: make([]byte, 0, f.Size)}
	for {
		d, err := p.next()
		if err != nil {
			return smallBlob{}, err
		}
		if d.ID != f.ID {
			return smallBlob{}, unexpected(d)
		}
		if d.Type == fetcher.TypeEnd {
			break
		}
		if d.Type != fetcher.TypeData || int64(len(b.data)+len(d.Payload)) > f.Size {
			return smallBlob{}, unexpected(d)
		}
		b.data = append(b.data, d.Payload...)
	}
	if !b.digest.Algorithm().Available() {
		return smallBlob{}, fmt.Errorf("%s %s: unsupported digest algorithm: %w", b.kind, b.digest, errdefs.ErrNotImplemented)
	}
	if got := b.digest.Algorithm().FromBytes(b.data); got != b.digest || int64(len(b.data)) != f.Size {
		return smallBlob{}, fmt.Errorf("%s %s: content hashes to %s: %w", b.kind, b.digest, got, content.ErrDigestMismatch)
	}
	return b, nil
}

// layerStream is one layer the fetcher is sending.
type layerStream struct {
	desc  ocispec.Descriptor
	short string
	w     *content.Writer
	last  time.Time
	ended bool
}

// fetchLayers asks the fetcher for the layers cs lacks and writes each
// stream straight into the store, hashing it as it arrives; a stream that
// ends is committed (verified, synced, renamed) in the background while
// the others go on. Every commit has finished, and every ingest file of a
// failed write is gone, when it returns. known: the image is already
// registered, so layers already here are not reported.
func (p *puller) fetchLayers(layers []ocispec.Descriptor, known bool) error {
	want := map[digest.Digest]ocispec.Descriptor{}
	seen := map[digest.Digest]bool{}
	var ask []string
	for _, l := range layers {
		short := l.Digest.Encoded()[:12]
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		if p.cs.Has(l.Digest) {
			_ = p.cs.Touch(l.Digest) // reused: spare it from a sweep of old blobs
			if !known {
				p.report(ProgressEvent{ID: short, Status: "Already exists"})
			}
			p.ready(l.Digest)
			continue
		}
		p.mu.Lock()
		p.fetched[l.Digest] = true
		p.mu.Unlock()
		want[l.Digest] = l
		ask = append(ask, l.Digest.String())
		p.report(ProgressEvent{ID: short, Status: "Pulling fs layer"})
	}
	if err := p.conn.Send(fetcher.Frame{Type: fetcher.TypeFetch, Digests: ask}); err != nil {
		return p.broken(err)
	}
	var commits errgroup.Group
	var failed error
	var mu sync.Mutex
	streams := map[uint32]*layerStream{}
	fail := func(err error) error {
		for _, s := range streams {
			if !s.ended {
				s.w.Abort()
			}
		}
		_ = commits.Wait()
		return err
	}
	for {
		mu.Lock()
		cerr := failed
		mu.Unlock()
		if cerr != nil {
			return fail(cerr)
		}
		f, err := p.next()
		if err != nil {
			return fail(err)
		}
		if f.Type == fetcher.TypeDone {
			if len(want) > 0 {
				return fail(fmt.Errorf("fetcher finished without sending %d layers: %w", len(want), errdefs.ErrDataLoss))
			}
			return commits.Wait()
		}
		s := streams[f.ID]
		switch {
		case f.Type == fetcher.TypeBlob && f.Kind == fetcher.KindLayer && s == nil:
			desc, ok := want[digest.Digest(f.Digest)]
			if !ok {
				return fail(fmt.Errorf("fetcher sent layer %s, which was not asked for: %w", f.Digest, errdefs.ErrDataLoss))
			}
			delete(want, desc.Digest)
			w, err := p.cs.NewWriter(desc.Digest, desc.Size)
			if err != nil {
				return fail(err)
			}
			streams[f.ID] = &layerStream{desc: desc, short: desc.Digest.Encoded()[:12], w: w}
		case f.Type == fetcher.TypeData && s != nil && !s.ended:
			if err := p.ctx.Err(); err != nil {
				return fail(err)
			}
			if _, err := s.w.Write(f.Payload); err != nil {
				return fail(fmt.Errorf("layer %s: %w", s.desc.Digest, err))
			}
			if now := time.Now(); now.Sub(s.last) >= progressInterval {
				s.last = now
				p.report(ProgressEvent{ID: s.short, Status: "Downloading", Current: s.w.Written(), Total: s.desc.Size})
			}
		case f.Type == fetcher.TypeEnd && s != nil && !s.ended:
			s.ended = true
			if got := s.w.Written(); got != s.desc.Size {
				s.w.Abort()
				return fail(fmt.Errorf("layer %s: got %d bytes, want %d: %w", s.desc.Digest, got, s.desc.Size, content.ErrDigestMismatch))
			}
			p.report(ProgressEvent{ID: s.short, Status: "Downloading", Current: s.desc.Size, Total: s.desc.Size})
			p.report(ProgressEvent{ID: s.short, Status: "Verifying Checksum"})
			commits.Go(func() error {
				if err := s.w.Commit(); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
					return err
				}
				p.committed(s.desc.Digest)
				p.report(ProgressEvent{ID: s.short, Status: "Download complete"})
				p.ready(s.desc.Digest)
				if p.sink == nil {
					p.report(ProgressEvent{ID: s.short, Status: "Pull complete"})
				}
				return nil
			})
		default:
			return fail(unexpected(f))
		}
	}
}

// unpacked is the sink's news that layer d is unpacked: "Pull complete"
// for a layer this pull downloaded.
func (p *puller) unpacked(d digest.Digest) {
	p.mu.Lock()
	fetched := p.fetched[d]
	delete(p.fetched, d) // a layer listed twice completes once
	p.mu.Unlock()
	if fetched {
		p.report(ProgressEvent{ID: d.Encoded()[:12], Status: "Pull complete"})
	}
}

// ready tells the sink, if any, that layer d is in the store.
func (p *puller) ready(d digest.Digest) {
	if p.sink != nil {
		p.sink.LayerReady(d)
	}
}

// next reads the fetcher's next frame; an error frame becomes its error.
func (p *puller) next() (fetcher.Frame, error) {
	f, err := p.conn.Next()
	if err != nil {
		if p.ctx.Err() != nil {
			return f, p.ctx.Err()
		}
		return f, p.broken(err)
	}
	if f.Type == fetcher.TypeError {
		return f, fetcher.Err(f)
	}
	return f, nil
}

// broken explains a conversation that ended early.
func (p *puller) broken(err error) error {
	if errdefs.IsDataLoss(err) {
		return err // a malformed frame
	}
	cerr := p.conn.Close()
	if cerr == nil {
		cerr = err
	}
	return fmt.Errorf("fetcher stopped before finishing: %v: %w", cerr, errdefs.ErrUnavailable)
}

func unexpected(f fetcher.Frame) error {
	return fmt.Errorf("fetcher protocol: unexpected %s frame (stream %d, kind %q): %w", f.Type, f.ID, f.Kind, errdefs.ErrDataLoss)
}

// parseJSON decodes a verified manifest or index into v and settles its
// media type: the document's own mediaType field, else the registry's
// Content-Type; it must be one of allowed.
func parseJSON(b smallBlob, v any, allowed ...string) error {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(b.data, &head); err != nil {
		return fmt.Errorf("%s %s: %v: %w", b.kind, b.digest, err, errdefs.ErrDataLoss)
	}
	mt := head.MediaType
	if mt == "" {
		mt = b.mediaType
	}
	if !contains(allowed, mt) {
		return fmt.Errorf("unsupported %s media type %q: %w", b.kind, mt, errdefs.ErrNotImplemented)
	}
	if err := json.Unmarshal(b.data, v); err != nil {
		return fmt.Errorf("%s %s: %v: %w", b.kind, b.digest, err, errdefs.ErrDataLoss)
	}
	return nil
}

// checkManifest refuses manifests whose config or layers Berth cannot use.
func checkManifest(m *ocispec.Manifest) error {
	if !types.MediaType(m.Config.MediaType).IsConfig() {
		return fmt.Errorf("unsupported config media type %q: %w", m.Config.MediaType, errdefs.ErrNotImplemented)
	}
	if err := m.Config.Digest.Validate(); err != nil || m.Config.Size < 0 {
		return fmt.Errorf("manifest names config %q: %w", m.Config.Digest, errdefs.ErrDataLoss)
	}
	for _, l := range m.Layers {
		if !types.MediaType(l.MediaType).IsLayer() {
			return fmt.Errorf("unsupported layer media type %q: %w", l.MediaType, errdefs.ErrNotImplemented)
		}
		if err := l.Digest.Validate(); err != nil || l.Size < 0 {
			return fmt.Errorf("manifest names layer %q: %w", l.Digest, errdefs.ErrDataLoss)
		}
	}
	return nil
}

func indexEntry(idx ocispec.Index, d digest.Digest) (ocispec.Descriptor, bool) {
	for _, e := range idx.Manifests {
		if e.Digest == d {
			return e, true
		}
	}
	return ocispec.Descriptor{}, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Write stores img (any go-containerregistry image: a local build, a
// tarball …) in cs under the normalized name and returns its Record, for
// images that do not come from a registry. Every blob is verified.
func Write(ctx context.Context, cs *content.Store, name string, img v1.Image) (Record, error) {
	rec := Record{Name: name, Created: time.Now().UTC()}
	if err := write(ctx, cs, img, &rec); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// write stores img's config, layers and manifest (in that order: a stored
// manifest means all it names is present) and fills rec's Target and Config.
func write(ctx context.Context, cs *content.Store, img v1.Image, rec *Record) error {
	manifest, err := img.Manifest()
	if err != nil {
		return err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mt, _ := img.MediaType()
	mdigest := digest.FromBytes(rawManifest)
	rec.Target = ocispec.Descriptor{MediaType: string(mt), Digest: mdigest, Size: int64(len(rawManifest))}
	if p := manifest.Config.Platform; p != nil {
		rec.Target.Platform = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	if !manifest.Config.MediaType.IsConfig() {
		return fmt.Errorf("unsupported config media type %q: %w", manifest.Config.MediaType, errdefs.ErrNotImplemented)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	rec.Config = digest.Digest(manifest.Config.Digest.String())
	if err := cs.Write(ctx, rec.Config, manifest.Config.Size, bytes.NewReader(rawConfig)); err != nil {
		return err
	}
	for _, l := range manifest.Layers {
		if !l.MediaType.IsLayer() {
			return fmt.Errorf("unsupported layer media type %q: %w", l.MediaType, errdefs.ErrNotImplemented)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return err
		}
		err = cs.Write(ctx, digest.Digest(l.Digest.String()), l.Size, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return cs.Write(ctx, mdigest, int64(len(rawManifest)), bytes.NewReader(rawManifest))
}
