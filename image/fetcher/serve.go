package fetcher

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// Serve is the fetcher's side of the protocol: it reads a request frame
// from in, does the registry I/O, writes blob streams and finally "done"
// (or one "error" frame) to out, and returns. transport carries registry
// traffic (nil: go-containerregistry's default). It returns an error only
// when the conversation itself breaks (in or out fails); pull failures go
// to the parent as error frames.
func Serve(ctx context.Context, in io.Reader, out io.Writer, transport http.RoundTripper) error {
	return serve(ctx, in, out, transport, nil)
}

// serve is Serve with the blob files of a push.
func serve(ctx context.Context, in io.Reader, out io.Writer, transport http.RoundTripper, files []*os.File) error {
	dec, enc := NewDecoder(in), NewEncoder(out)
	f, err := dec.Next()
	if err != nil {
		return err
	}
	if f.Type != TypeRequest {
		return enc.Encode(errorFrame(fmt.Errorf("fetcher: first frame is %q, want request: %w", f.Type, errdefs.ErrInvalidArgument)))
	}
	s := &server{dec: dec, enc: enc, req: *f.Request, transport: transport, files: files}
	var err2 error
	switch s.req.Op {
	case OpPush:
		err2 = s.push(ctx)
	case OpLogin:
		err2 = s.login(ctx)
	case OpTags:
		err2 = s.tags(ctx)
	default:
		if err2 = s.serve(ctx); err2 != nil && s.named != nil {
			err2 = classify(s.named, err2)
		}
	}
	if err2 != nil {
		return enc.Encode(errorFrame(err2))
	}
	return enc.Encode(Frame{Type: TypeDone})
}

type server struct {
	dec       *Decoder
	enc       *Encoder
	req       Request
	transport http.RoundTripper
	named     reference.Named
	nextID    uint32
	repo      name.Repository
	client    *http.Client // authenticated for repo
	files     []*os.File   // a push's blobs
}

func (s *server) serve(ctx context.Context) error {
	named, err := reference.ParseNormalizedNamed(s.req.Reference)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	s.named = named
	var nopts []name.Option
	if s.req.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(named.String(), nopts...)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	platform := v1.Platform{OS: s.req.OS, Architecture: s.req.Architecture, Variant: s.req.Variant}
	// One authenticated transport (ping, token) serves the manifests,
	// through go-containerregistry, and the layer blobs, fetched directly.
	repo := ref.Context()
	tr, err := transport.NewWithContext(ctx, repo.Registry, s.auth(), s.base(true), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return err
	}
	s.repo = repo
	s.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(tr), remote.WithPlatform(platform)}

	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return err
	}
	var img v1.Image
	switch {
	case desc.MediaType.IsIndex():
		if err := s.sendBytes(KindIndex, desc.Digest.String(), string(desc.MediaType), desc.Manifest); err != nil {
			return err
		}
		if img, err = desc.Image(); err != nil {
			if isNetwork(err) {
				return err
			}
			return fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", platform.String(), errdefs.ErrNotFound)
		}
	case desc.MediaType.IsImage():
		if img, err = desc.Image(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unsupported manifest media type %q: %w", desc.MediaType, errdefs.ErrNotImplemented)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	if err := s.sendBytes(KindManifest, d.String(), string(mt), raw); err != nil {
		return err
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := s.sendBytes(KindConfig, m.Config.Digest.String(), string(m.Config.MediaType), cfg); err != nil {
		return err
	}

	f, err := s.dec.Next()
	if err != nil {
		return err
	}
	if f.Type != TypeFetch {
		return fmt.Errorf("fetcher: got %q, want fetch: %w", f.Type, errdefs.ErrInvalidArgument)
	}
	g, ctx := errgroup.WithContext(ctx)
	n := s.req.Concurrency
	if n <= 0 {
		n = 3
	}
	g.SetLimit(n)
	for _, ds := range f.Digests {
		h, err := v1.NewHash(ds)
		if err != nil {
			return fmt.Errorf("fetch %q: %v: %w", ds, err, errdefs.ErrInvalidArgument)
		}
		s.nextID++
		id := s.nextID
		g.Go(func() error { return s.sendLayer(ctx, img, h, id) })
	}
	return g.Wait()
}

// auth is the request's credential as go-containerregistry takes it.
func (s *server) auth() authn.Authenticator {
	a := s.req.Auth
	if a == nil {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
}

// base is the unauthenticated transport to the registry, retrying
// flakes when retry is set (requests whose bodies stream from a file are
// not retried by the transport).
func (s *server) base(retry bool) http.RoundTripper {
	base := s.transport
	if base == nil {
		base = remote.DefaultTransport
		if s.req.Insecure {
			// An insecure registry may also be HTTPS with a certificate
			// nobody signed: Docker skips verification for it.
			t := remote.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
			base = t
		}
	}
	if retry {
		base = transport.NewRetry(base, transport.WithRetryBackoff(retryBackoff), transport.WithRetryPredicate(retryable),
			transport.WithRetryStatusCodes(retryStatusCodes...))
	}
	return transport.NewUserAgent(base, "berth")
}

// Retries of registry requests, as go-containerregistry's remote package
// does them by default: network flakes and these statuses, three times,
// after 1s and 3s.
var (
	retryBackoff     = remote.Backoff{Duration: time.Second, Factor: 3, Jitter: 0.1, Steps: 3}
	retryStatusCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, 499, 522}
)

func retryable(err error) bool {
	var temp interface{ Temporary() bool }
	return (errors.As(err, &temp) && temp.Temporary()) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// sendLayer streams layer blob h as stream id, straight from the
// registry. It does not hash the blob: the parent verifies every byte
// against the digest the manifest names, and hashing it here too would
// only cost time.
func (s *server) sendLayer(ctx context.Context, img v1.Image, h v1.Hash, id uint32) error {
	layer, err := img.LayerByDigest(h)
	if err != nil {
		return err
	}
	size, err := layer.Size()
	if err != nil {
		return err
	}
	mt, err := layer.MediaType()
	if err != nil {
		return err
	}
	u := url.URL{Scheme: s.repo.Scheme(), Host: s.repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/blobs/%s", s.repo.RepositoryStr(), h)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != size {
		return fmt.Errorf("GET %s: Content-Length %d does not match the manifest's size %d: %w", u.Path, resp.ContentLength, size, errdefs.ErrDataLoss)
	}
	return s.stream(ctx, id, KindLayer, h.String(), string(mt), size, resp.Body)
}

// checkRedirect follows a blob redirect (registries commonly send blobs
// from a CDN) unless it leads from the registry to another host that is
// an internal address.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	host := req.URL.Hostname()
	if host == via[0].URL.Hostname() {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() {
			return fmt.Errorf("redirect from %q to internal address %q refused", via[0].URL.Hostname(), host)
		}
	} else if strings.Trim(host, "0123456789abcdefxABCDEFX.") == "" {
		return fmt.Errorf("redirect from %q to numeric host %q refused", via[0].URL.Hostname(), host)
	}
	return nil
}

// sendBytes sends a small blob (index, manifest, config) as one stream.
func (s *server) sendBytes(kind, d, mediaType string, data []byte) error {
	s.nextID++
	return s.stream(context.Background(), s.nextID, kind, d, mediaType, int64(len(data)), bytes.NewReader(data))
}

// stream sends r as stream id: a blob frame, data frames, an end frame.
// A short or failing r ends it with an error before the end frame.
func (s *server) stream(ctx context.Context, id uint32, kind, d, mediaType string, size int64, r io.Reader) error {
	if err := s.send(Frame{Type: TypeBlob, ID: id, Kind: kind, Digest: d, Size: size, MediaType: mediaType}); err != nil {
		return err
	}
	chunk := chunkSize
	if size < int64(chunk) {
		chunk = max(int(size), 1)
	}
	df, err := newDataFrames(id, chunk)
	if err != nil {
		return err
	}
	var sent int64
	for sent < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf := df.Payload()
		if rest := size - sent; rest < int64(len(buf)) {
			buf = buf[:rest]
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if err := s.enc.encodeData(df, n); err != nil {
				return err
			}
			sent += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("%s %s: the registry sent %d of %d bytes: %w", kind, d, sent, size, errTruncated)
		}
		if err != nil {
			return err
		}
	}
	return s.send(Frame{Type: TypeEnd, ID: id})
}

func (s *server) send(f Frame) error { return s.enc.Encode(f) }

// errTruncated ends a blob whose body stopped before its size: a transfer
// cut short, which a retry may mend.
var errTruncated = fmt.Errorf("transfer cut short: %w", errdefs.ErrUnavailable)

func isNetwork(err error) bool {
	var terr *transport.Error
	var nerr net.Error
	return errors.As(err, &terr) || errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF)
}
