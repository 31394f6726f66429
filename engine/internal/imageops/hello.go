package imageops

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	"github.com/berthproject/berth/internal/hello"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Hello is the built-in hello image: one layer holding /hello (package
// internal/hello) for this host's architecture, Cmd ["/hello"]. Its bytes
// are the same on every build (fixed timestamps), so its ID is too.
func Hello() (v1.Image, error) {
	prog, err := hello.Program(goruntime.GOARCH)
	if err != nil {
		return nil, err
	}
	epoch := time.Unix(0, 0).UTC()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(prog)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	tw.Write(prog)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Cmd = []string{"/hello"}
	cf.Config.Labels = map[string]string{"org.opencontainers.image.title": "Berth hello"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("hello image: %w", err)
	}
	return img, nil
}
