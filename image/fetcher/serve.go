package fetcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

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
	dec, enc := NewDecoder(in), NewEncoder(out)
	f, err := dec.Next()
	if err != nil {
		return err
	}
	if f.Type != TypeRequest {
		return enc.Encode(errorFrame(fmt.Errorf("fetcher: first frame is %q, want request: %w", f.Type, errdefs.ErrInvalidArgument)))
	}
	s := &server{dec: dec, enc: enc, req: *f.Request, transport: transport}
	if err := s.serve(ctx); err != nil {
		if s.named != nil {
			err = classify(s.named, err)
		}
		return enc.Encode(errorFrame(err))
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
	auth := authn.Anonymous
	if a := s.req.Auth; a != nil {
		auth = authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
	}
	platform := v1.Platform{OS: s.req.OS, Architecture: s.req.Architecture, Variant: s.req.Variant}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithUserAgent("berth"), remote.WithPlatform(platform)}
	if s.transport != nil {
		opts = append(opts, remote.WithTransport(s.transport))
	}

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
	rc, err := layer.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.stream(ctx, id, KindLayer, h.String(), string(mt), size, rc)
}

// sendBytes sends a small blob (index, manifest, config) as one stream.
func (s *server) sendBytes(kind, d, mediaType string, data []byte) error {
	s.nextID++
	return s.stream(context.Background(), s.nextID, kind, d, mediaType, int64(len(data)), bytes.NewReader(data))
}

// stream sends r as stream id: a blob frame, data frames, an end frame.
// go-containerregistry verifies a layer's digest as it is read, so a
// mismatch shows up as a read error before the end frame.
func (s *server) stream(ctx context.Context, id uint32, kind, d, mediaType string, size int64, r io.Reader) error {
	if err := s.send(Frame{Type: TypeBlob, ID: id, Kind: kind, Digest: d, Size: size, MediaType: mediaType}); err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if err := s.send(Frame{Type: TypeData, ID: id, Payload: buf[:n]}); err != nil {
				return err
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return s.send(Frame{Type: TypeEnd, ID: id})
}

func (s *server) send(f Frame) error { return s.enc.Encode(f) }

func isNetwork(err error) bool {
	var terr *transport.Error
	var nerr net.Error
	return errors.As(err, &terr) || errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF)
}
