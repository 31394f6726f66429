package engine

import (
	"context"

	"github.com/berthproject/berth/engine/internal/imageops"
	"github.com/berthproject/berth/image"
	"github.com/distribution/reference"
)

// BuiltinHello is the name of the built-in hello image. It is made locally
// on first use and never looked up in a registry.
const BuiltinHello = "localhost/hello:latest"

func isBuiltin(named reference.Named) bool { return named.String() == BuiltinHello }

// builtin makes, stores and registers the built-in hello image.
func (e *Engine) builtin(ctx context.Context, named reference.Named) (image.Record, error) {
	img, err := imageops.Hello()
	if err != nil {
		return image.Record{}, err
	}
	rec, err := image.Write(ctx, e.content, named.String(), img)
	if err != nil {
		return image.Record{}, err
	}
	return rec, e.register(ctx, rec)
}
