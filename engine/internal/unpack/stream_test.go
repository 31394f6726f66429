package unpack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// TestHashAhead: the reader yields exactly the stream and, once closed,
// the hash covers all of it, whatever the chunking; a read error comes
// through after the bytes before it; closing early stops the read-ahead.
func TestHashAhead(t *testing.T) {
	for _, size := range []int{0, 1, aheadChunk - 1, aheadChunk, 3*aheadChunk + 17, 11 * aheadChunk} {
		data := make([]byte, size)
		rand.NewChaCha8([32]byte{byte(size)}).Read(data)
		h := sha256.New()
		a := newHashAhead(iotest.HalfReader(bytes.NewReader(data)), h)
		var r io.Reader = a
		if size < 2*aheadChunk {
			r = iotest.OneByteReader(a) // the consumer reads less than a chunk at a time
		}
		got, err := io.ReadAll(r)
		a.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: read %d bytes, %v", size, len(got), err)
		}
		if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("size %d: hash mismatch", size)
		}
	}

	boom := errors.New("boom")
	data := bytes.Repeat([]byte("x"), aheadChunk+5)
	a := newHashAhead(io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom)), sha256.New())
	got, err := io.ReadAll(a)
	if !errors.Is(err, boom) || !bytes.Equal(got, data) {
		t.Fatalf("read error: got %d bytes, %v", len(got), err)
	}
	a.Close()

	// Closing before the end: the read-ahead stops; Read then fails.
	a = newHashAhead(bytes.NewReader(make([]byte, 20*aheadChunk)), sha256.New())
	if _, err := io.ReadFull(a, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close()
	for {
		if _, err := a.Read(make([]byte, aheadChunk)); err != nil {
			break
		}
	}
}
