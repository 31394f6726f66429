package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sync/errgroup"
)

// pushProgressInterval spaces a layer's "Pushing" frames.
const pushProgressInterval = 100 * time.Millisecond

// defaultPushConcurrency is how many layers upload at once, as Docker
// does (max-concurrent-uploads).
const defaultPushConcurrency = 5

// push uploads the blobs the parent passed: the layers the registry
// lacks (mounting them from another repository when it can), then the
// config, then the manifest under the reference's tag.
func (s *server) push(ctx context.Context) error {
	p := s.req.Push
	if len(s.files) < p.Files() {
		return fmt.Errorf("push: %d blob files for %d blobs: %w", len(s.files), p.Files(), errdefs.ErrInvalidArgument)
	}
	named, err := reference.ParseNormalizedNamed(s.req.Reference)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	tagged, ok := named.(reference.Tagged)
	if !ok {
		return fmt.Errorf("push %s: a push needs a tag: %w", s.req.Reference, errdefs.ErrInvalidArgument)
	}
	repo, err := name.NewRepository(named.Name(), s.nameOptions()...)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, l := range p.Layers {
		for _, from := range l.MountFrom {
			if sc := repo.Registry.Repo(from).Scope(transport.PullScope); !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	fail := func(err error) error { return s.pushError(ctx, named, repo.Registry, err) }
	tr, err := transport.NewWithContext(ctx, repo.Registry, s.auth(), s.base(false), scopes)
	if err != nil {
		return fail(err)
	}
	up := &uploader{s: s, client: &http.Client{Transport: tr, CheckRedirect: checkRedirect}, repo: repo}
	if err := up.layers(ctx, p.Layers, s.files[2:]); err != nil {
		return fail(err)
	}
	if err := up.blob(ctx, p.Config, s.files[1], nil); err != nil {
		return fail(err)
	}
	if err := up.manifest(ctx, tagged.Tag(), p.Manifest, s.files[0]); err != nil {
		return fail(err)
	}
	return nil
}

func (s *server) nameOptions() []name.Option {
	if s.req.Insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// uploader does one push's registry requests.
type uploader struct {
	s      *server
	client *http.Client // authenticated for repo, push scope
	repo   name.Repository
}

// layers uploads layers (base first) concurrently, reporting them top
// first as Docker does: "Preparing" for all, "Waiting" for those beyond
// the concurrency, then each one's outcome.
func (up *uploader) layers(ctx context.Context, layers []Blob, files []*os.File) error {
	n := up.s.req.Concurrency
	if n <= 0 {
		n = defaultPushConcurrency
	}
	for _, l := range slices.Backward(layers) {
		if err := up.progress(l, StatusPreparing, 0, ""); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	slots := make(chan struct{}, n)
	for i, l := range slices.Backward(layers) {
		started := false
		select {
		case slots <- struct{}{}:
			started = true
		default:
			if err := up.progress(l, StatusWaiting, 0, ""); err != nil {
				return err
			}
		}
		g.Go(func() error {
			if !started {
				select {
				case slots <- struct{}{}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			defer func() { <-slots }()
			return up.layer(gctx, l, files[i])
		})
	}
	return g.Wait()
}

// layer uploads one layer unless the registry has it or can mount it.
func (up *uploader) layer(ctx context.Context, l Blob, f *os.File) error {
	exists, err := up.exists(ctx, l.Digest)
	if err != nil {
		return err
	}
	if exists {
		return up.progress(l, StatusExists, 0, "")
	}
	var loc string
	for i, from := range l.MountFrom {
		mounted, next, err := up.mount(ctx, l.Digest, from)
		if err != nil {
			return err
		}
		if mounted {
			return up.progress(l, StatusMounted, 0, from)
		}
		if next == "" {
			continue
		}
		if i == len(l.MountFrom)-1 {
			loc = next // the registry started a plain upload instead: use it
			break
		}
		if resp, err := up.do(ctx, http.MethodDelete, next, nil, 0, nil, http.StatusNoContent, http.StatusAccepted); err == nil { // cancel it, try the next source
			resp.Body.Close()
		}
	}
	var last time.Time
	report := func(n int64) {
		if now := time.Now(); now.Sub(last) >= pushProgressInterval || n == l.Size {
			last = now
			_ = up.progress(l, StatusPushing, n, "")
		}
	}
	if err := up.upload(ctx, loc, l, f, report); err != nil {
		return err
	}
	return up.progress(l, StatusPushed, 0, "")
}

// blob uploads b (the config) unless the registry has it.
func (up *uploader) blob(ctx context.Context, b Blob, f *os.File, report func(int64)) error {
	exists, err := up.exists(ctx, b.Digest)
	if err != nil || exists {
		return err
	}
	return up.upload(ctx, "", b, f, report)
}

func (up *uploader) progress(b Blob, status string, current int64, from string) error {
	f := Frame{Type: TypeProgress, Digest: b.Digest, Status: status, From: from}
	if status == StatusPushing {
		f.Current, f.Size = current, b.Size
	}
	return up.s.send(f)
}

func (up *uploader) url(path string) string {
	u := url.URL{Scheme: up.repo.Scheme(), Host: up.repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/%s", up.repo.RepositoryStr(), path)}
	return u.String()
}

// do sends one request and checks its status against want; the caller
// closes the body.
func (up *uploader) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr map[string]string, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := up.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, want...); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}

// exists asks the registry (HEAD) whether the repository has blob d.
func (up *uploader) exists(ctx context.Context, d string) (bool, error) {
	resp, err := up.do(ctx, http.MethodHead, up.url("blobs/"+d), nil, 0, nil, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// mount asks the registry to mount blob d from repository from. It
// reports whether it did, or else the upload the registry started.
func (up *uploader) mount(ctx context.Context, d, from string) (bool, string, error) {
	q := url.Values{"mount": {d}, "from": {from}}
	resp, err := up.do(ctx, http.MethodPost, up.url("blobs/uploads/")+"?"+q.Encode(), nil, 0, nil, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode != http.StatusUnauthorized {
			return false, "", nil // not mountable from there: upload it
		}
		return false, "", err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, "", nil
	}
	loc, err := location(resp)
	return false, loc, err
}

// upload sends b's bytes from f: a new upload session (unless loc is
// one), one PATCH with the whole blob, then the PUT that commits it
// under its digest. report, when set, follows the bytes sent.
func (up *uploader) upload(ctx context.Context, loc string, b Blob, f *os.File, report func(int64)) error {
	if loc == "" {
		resp, err := up.do(ctx, http.MethodPost, up.url("blobs/uploads/"), nil, 0, nil, http.StatusAccepted)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if loc, err = location(resp); err != nil {
			return err
		}
	}
	var body io.Reader = io.NewSectionReader(f, 0, b.Size)
	if report != nil {
		body = &countingReader{r: body, report: report}
	}
	octet := map[string]string{"Content-Type": "application/octet-stream"}
	if b.Size > 0 {
		resp, err := up.do(ctx, http.MethodPatch, loc, body, b.Size, octet, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if loc, err = location(resp); err != nil {
			return err
		}
	}
	u, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("upload location %q: %v: %w", loc, err, errdefs.ErrUnknown)
	}
	q := u.Query()
	q.Set("digest", b.Digest)
	u.RawQuery = q.Encode()
	resp, err := up.do(ctx, http.MethodPut, u.String(), http.NoBody, 0, octet, http.StatusCreated)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// manifest PUTs the manifest, byte for byte as the parent stored it,
// under tag.
func (up *uploader) manifest(ctx context.Context, tag string, m Blob, f *os.File) error {
	resp, err := up.do(ctx, http.MethodPut, up.url("manifests/"+tag), io.NewSectionReader(f, 0, m.Size), m.Size,
		map[string]string{"Content-Type": m.MediaType}, http.StatusCreated, http.StatusOK)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// location is the absolute URL a registry's Location header names,
// resolved against the request's.
func location(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", fmt.Errorf("%s %s: no Location in the registry's answer: %w", resp.Request.Method, resp.Request.URL.Path, errdefs.ErrUnknown)
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", fmt.Errorf("%s %s: Location %q: %v: %w", resp.Request.Method, resp.Request.URL.Path, l, err, errdefs.ErrUnknown)
	}
	return u.String(), nil
}

// countingReader reports the bytes read so far after each read.
type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.report(c.n)
	}
	return n, err
}

// pushError is classifyOp for a push, with Docker's words for a registry
// that wants credentials nobody gave: "no basic auth credentials" for
// HTTP basic auth, else the registry's "unauthorized: …".
func (s *server) pushError(ctx context.Context, named reference.Named, reg name.Registry, err error) error {
	var terr *transport.Error
	if s.req.Auth == nil && errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		if ch, perr := transport.Ping(ctx, reg, s.base(false)); perr == nil && strings.EqualFold(ch.Scheme, "basic") {
			return fmt.Errorf("pushing %s: no basic auth credentials: %w", reference.FamiliarString(named), errdefs.ErrUnauthenticated)
		}
	}
	return classifyOp("pushing", named, err)
}

// login checks the request's credential against the registry's /v2/
// endpoint, with whatever scheme it asks for (HTTP basic, or a bearer
// token from its token server).
func (s *server) login(ctx context.Context) error {
	host := s.req.Registry
	reg, err := name.NewRegistry(host, s.nameOptions()...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
	}
	tr, err := transport.NewWithContext(ctx, reg, s.auth(), s.base(true), nil)
	if err != nil {
		return loginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr, CheckRedirect: checkRedirect}).Do(req)
	if err != nil {
		return loginError(host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(host, err)
	}
	return nil
}

// loginError: refused credentials → ErrUnauthenticated, an unreachable
// registry → ErrUnavailable, in one line naming the registry.
func loginError(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden {
			return fmt.Errorf("login to %s failed: unauthorized: incorrect username or password: %w", host, errdefs.ErrUnauthenticated)
		}
		return fmt.Errorf("login to %s failed: %s: %w", host, registryMessage(terr), errdefs.ErrUnknown)
	}
	return fmt.Errorf("login to %s failed: %s: %w", host, oneLine(err), errdefs.ErrUnavailable)
}

// tags lists the repository's tags, sending them in frames of up to
// maxTagsPerFrame. Names that are not valid tags are left out.
func (s *server) tags(ctx context.Context) error {
	named, err := reference.ParseNormalizedNamed(s.req.Reference)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	repo, err := name.NewRepository(named.Name(), s.nameOptions()...)
	if err != nil {
		return fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	tags, err := listTags(ctx, repo, s.auth(), s.base(true))
	if err != nil {
		return classifyOp("listing tags of", named, err)
	}
	tags = slices.DeleteFunc(tags, func(t string) bool { return !tagRegexp.MatchString(t) })
	for batch := range slices.Chunk(tags, maxTagsPerFrame) {
		if err := s.send(Frame{Type: TypeTags, Tags: batch}); err != nil {
			return err
		}
	}
	return nil
}

func listTags(ctx context.Context, repo name.Repository, auth authn.Authenticator, base http.RoundTripper) ([]string, error) {
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return remote.List(repo, remote.WithContext(ctx), remote.WithTransport(tr))
}

// classifyOp turns the registry and network errors of an operation
// (verb: "pushing", "listing tags of") into one line naming the image and
// an errdefs category: 401/403 → ErrUnauthenticated, 404 → ErrNotFound,
// 5xx and unreachable → ErrUnavailable. Errors already in a category keep
// it.
func classifyOp(verb string, named reference.Named, err error) error {
	fam := reference.FamiliarString(named)
	var terr *transport.Error
	var nerr net.Error
	switch {
	case errors.As(err, &terr):
		msg := registryMessage(terr)
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s %s: %s: %w", verb, fam, msg, errdefs.ErrUnauthenticated)
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s %s: %s: %w", verb, fam, msg, errdefs.ErrNotFound)
		case terr.StatusCode >= 500:
			return fmt.Errorf("%s %s: registry answered %d: %s: %w", verb, fam, terr.StatusCode, msg, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("%s %s: %s: %w", verb, fam, msg, errdefs.ErrUnknown)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &nerr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s %s: registry unreachable: %s: %w", verb, fam, oneLine(err), errdefs.ErrUnavailable)
	}
	for _, c := range Categories {
		if errors.Is(err, c.Err) {
			return fmt.Errorf("%s %s: %w", verb, fam, err)
		}
	}
	return fmt.Errorf("%s %s: %s: %w", verb, fam, oneLine(err), errdefs.ErrUnknown)
}

// registryMessage is a registry error as Docker prints it: the first
// error's code in lower case and its message ("unauthorized:
// authentication required"), or the status line when the body had none.
func registryMessage(terr *transport.Error) string {
	if len(terr.Errors) == 0 {
		if terr.StatusCode == http.StatusUnauthorized {
			return "unauthorized: authentication required"
		}
		return oneLine(terr)
	}
	e := terr.Errors[0]
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	return strings.ToLower(strings.ReplaceAll(string(e.Code), "_", " ")) + ": " + msg
}
