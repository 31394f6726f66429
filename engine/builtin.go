package engine

import "github.com/berthproject/berth/engine/internal/imageops"

// BuiltinHello is the name of the built-in hello image. It is made locally
// on first use and never looked up in a registry.
const BuiltinHello = imageops.BuiltinHello
