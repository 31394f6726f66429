package engine

import (
	"github.com/berthproject/berth/engine/internal/unpack"
	digest "github.com/opencontainers/go-digest"
)

// Layer unpacking (during a pull, and for images whose layers went
// missing) is package unpack's; the engine only wires it.

// unpacker is what package unpack needs of the engine.
func (e *Engine) unpacker() *unpack.Unpacker {
	return &unpack.Unpacker{Snaps: e.snaps, Content: e.content, Scratch: e.opts.RunRoot}
}

// chainIDs returns the chain ID of every layer prefix (OCI image spec,
// "Layer ChainID"), base first: the names of the committed snapshots.
func chainIDs(diffIDs []digest.Digest) []digest.Digest { return unpack.ChainIDs(diffIDs) }
