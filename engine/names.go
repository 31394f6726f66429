package engine

import (
	"crypto/rand"
	"encoding/hex"
)

// newID returns a 64-hex-digit container ID, as Docker's.
func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
