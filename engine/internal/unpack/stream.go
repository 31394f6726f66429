package unpack

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// Read-ahead of hashAhead: chunks of aheadChunk bytes, aheadChunks of them
// in flight.
const (
	aheadChunk  = 256 << 10
	aheadChunks = 4
)

// hashAhead is an io.Reader over r that also feeds every byte to a hash,
// with the work split in three: one goroutine reads (decompresses) r
// ahead in chunks, another hashes them, and the caller consumes them. A
// layer's unpack then costs about its slowest part instead of the sum.
// Close it before reading the hash.
type hashAhead struct {
	chunks    chan *aheadChunkBuf // reader → consumer; closed when the reader stops
	free      chan []byte
	stop      chan struct{}
	hashed    chan struct{} // closed when the hasher has finished
	closeOnce sync.Once
	cur       *aheadChunkBuf
	off       int
}

type aheadChunkBuf struct {
	b    []byte
	err  error // what r returned after b: io.EOF at the end
	refs atomic.Int32
}

func newHashAhead(r io.Reader, h hash.Hash) *hashAhead {
	a := &hashAhead{
		chunks: make(chan *aheadChunkBuf, aheadChunks),
		free:   make(chan []byte, aheadChunks),
		stop:   make(chan struct{}),
		hashed: make(chan struct{}),
	}
	for range aheadChunks {
		a.free <- make([]byte, aheadChunk)
	}
	toHash := make(chan *aheadChunkBuf, aheadChunks)
	go func() {
		defer close(a.hashed)
		for c := range toHash {
			h.Write(c.b)
			a.release(c)
		}
	}()
	go func() {
		defer close(toHash)
		defer close(a.chunks)
		for {
			var buf []byte
			select {
			case buf = <-a.free:
			case <-a.stop:
				return
			}
			n, err := io.ReadFull(r, buf)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			c := &aheadChunkBuf{b: buf[:n], err: err}
			c.refs.Store(2)
			toHash <- c // never blocks: at most aheadChunks buffers exist
			select {
			case a.chunks <- c:
			case <-a.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

// release returns c's buffer once both the hasher and the consumer are
// done with it.
func (a *hashAhead) release(c *aheadChunkBuf) {
	if c.refs.Add(-1) == 0 {
		a.free <- c.b[:cap(c.b)]
	}
}

func (a *hashAhead) Read(p []byte) (int, error) {
	for a.cur == nil || a.off == len(a.cur.b) {
		if a.cur != nil {
			if a.cur.err != nil {
				return 0, a.cur.err
			}
			a.release(a.cur)
			a.cur = nil
		}
		c, ok := <-a.chunks
		if !ok {
			return 0, io.ErrClosedPipe // closed
		}
		a.cur, a.off = c, 0
	}
	n := copy(p, a.cur.b[a.off:])
	a.off += n
	return n, nil
}

// Close stops the read-ahead and waits until the hash has taken in every
// byte read so far (after io.EOF: the whole stream). It may be called any
// number of times.
func (a *hashAhead) Close() error {
	a.closeOnce.Do(func() { close(a.stop) })
	<-a.hashed
	return nil
}

// decompress detects gzip, zstd or an uncompressed tar by magic number.
func decompress(r *bufio.Reader) (io.ReadCloser, error) {
	magic, err := r.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(r)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}
