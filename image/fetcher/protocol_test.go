package fetcher

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

const testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func validFrames() []Frame {
	return []Frame{
		{Type: TypeRequest, Request: &Request{Reference: "docker.io/library/busybox:latest", OS: "linux", Architecture: "amd64", Auth: &Auth{Username: "u", Password: "p"}}},
		{Type: TypeBlob, ID: 1, Kind: KindManifest, Digest: testDigest, Size: 3, MediaType: "application/vnd.oci.image.manifest.v1+json"},
		{Type: TypeData, ID: 1, Payload: []byte("abc")},
		{Type: TypeEnd, ID: 1},
		{Type: TypeFetch, Digests: []string{testDigest}},
		{Type: TypeError, Category: "not-found", Message: "manifest for x not found"},
		{Type: TypeDone},
		{Type: TypeRequest, Request: &Request{Op: OpPush, Reference: "127.0.0.1:5000/x:1", Concurrency: 5, Auth: &Auth{Auth: "dTpw"}, Push: &PushRequest{
			Manifest: Blob{Digest: testDigest, Size: 400, MediaType: "application/vnd.oci.image.manifest.v1+json"},
			Config:   Blob{Digest: testDigest, Size: 20, MediaType: "application/vnd.oci.image.config.v1+json"},
			Layers:   []Blob{{Digest: testDigest, Size: 3, MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", MountFrom: []string{"library/busybox"}}},
		}}},
		{Type: TypeRequest, Request: &Request{Op: OpLogin, Registry: "127.0.0.1:5000", Auth: &Auth{Username: "u", Password: "p"}}},
		{Type: TypeRequest, Request: &Request{Op: OpTags, Reference: "127.0.0.1:5000/x"}},
		{Type: TypeProgress, Digest: testDigest, Status: StatusPushing, Current: 1, Size: 3},
		{Type: TypeProgress, Digest: testDigest, Status: StatusMounted, From: "library/busybox"},
		{Type: TypeTags, Tags: []string{"latest", "1.36", "v_2-rc.1"}},
	}
}

func encodeAll(t testing.TB, frames []Frame) []byte {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, f := range frames {
		if err := enc.Encode(f); err != nil {
			t.Fatalf("encode %+v: %v", f, err)
		}
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	frames := validFrames()
	dec := NewDecoder(bytes.NewReader(encodeAll(t, frames)))
	for _, want := range frames {
		got, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

// rawFrame builds a frame by hand, bypassing the encoder's checks.
func rawFrame(header string, payload []byte) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[:4], uint32(len(header)))
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(append(b, header...), payload...)
}

func TestDecoderRejects(t *testing.T) {
	huge := make([]byte, 8)
	binary.BigEndian.PutUint32(huge[:4], MaxHeader+1)
	bigPayload := make([]byte, 8)
	binary.BigEndian.PutUint32(bigPayload[:4], 10)
	binary.BigEndian.PutUint32(bigPayload[4:], MaxPayload+1)
	cases := map[string][]byte{
		"header too long":         huge,
		"payload too long":        bigPayload,
		"empty header":            make([]byte, 8),
		"not json":                rawFrame("{nope", nil),
		"unknown field":           rawFrame(`{"type":"done","evil":1}`, nil),
		"unknown type":            rawFrame(`{"type":"exec"}`, nil),
		"trailing json":           rawFrame(`{"type":"done"}{"type":"done"}`, nil),
		"payload on blob":         rawFrame(`{"type":"blob","id":1,"kind":"layer","digest":"`+testDigest+`"}`, []byte("x")),
		"blob bad digest":         rawFrame(`{"type":"blob","id":1,"kind":"layer","digest":"sha256:zz"}`, nil),
		"blob unknown kind":       rawFrame(`{"type":"blob","id":1,"kind":"rootfs","digest":"`+testDigest+`"}`, nil),
		"blob negative size":      rawFrame(`{"type":"blob","id":1,"kind":"layer","digest":"`+testDigest+`","size":-1}`, nil),
		"blob stream 0":           rawFrame(`{"type":"blob","kind":"layer","digest":"`+testDigest+`"}`, nil),
		"empty data":              rawFrame(`{"type":"data","id":1}`, nil),
		"request without ref":     rawFrame(`{"type":"request","request":{}}`, nil),
		"fetch bad digest":        rawFrame(`{"type":"fetch","digests":["../../etc"]}`, nil),
		"unknown op":              rawFrame(`{"type":"request","request":{"op":"exec","reference":"x"}}`, nil),
		"push without blobs":      rawFrame(`{"type":"request","request":{"op":"push","reference":"x"}}`, nil),
		"push bad digest":         rawFrame(`{"type":"request","request":{"op":"push","reference":"x","push":{"manifest":{"digest":"../x","size":1,"mediaType":"m"},"config":{"digest":"`+testDigest+`","size":1,"mediaType":"c"}}}}`, nil),
		"push negative size":      rawFrame(`{"type":"request","request":{"op":"push","reference":"x","push":{"manifest":{"digest":"`+testDigest+`","size":-1,"mediaType":"m"},"config":{"digest":"`+testDigest+`","size":1,"mediaType":"c"}}}}`, nil),
		"push bad mount source":   rawFrame(`{"type":"request","request":{"op":"push","reference":"x","push":{"manifest":{"digest":"`+testDigest+`","size":1,"mediaType":"m"},"config":{"digest":"`+testDigest+`","size":1,"mediaType":"c"},"layers":[{"digest":"`+testDigest+`","size":1,"mediaType":"l","mountFrom":["../etc"]}]}}}`, nil),
		"pull with push":          rawFrame(`{"type":"request","request":{"reference":"x","push":{"manifest":{"digest":"`+testDigest+`","size":1,"mediaType":"m"},"config":{"digest":"`+testDigest+`","size":1,"mediaType":"c"}}}}`, nil),
		"login without registry":  rawFrame(`{"type":"request","request":{"op":"login"}}`, nil),
		"login with a path":       rawFrame(`{"type":"request","request":{"op":"login","registry":"evil.com/x"}}`, nil),
		"login with reference":    rawFrame(`{"type":"request","request":{"op":"login","registry":"h","reference":"x"}}`, nil),
		"tags without reference":  rawFrame(`{"type":"request","request":{"op":"tags"}}`, nil),
		"negative concurrency":    rawFrame(`{"type":"request","request":{"reference":"x","concurrency":-1}}`, nil),
		"progress unknown status": rawFrame(`{"type":"progress","digest":"`+testDigest+`","status":"\u001b[2J"}`, nil),
		"progress bad digest":     rawFrame(`{"type":"progress","digest":"x","status":"Pushed"}`, nil),
		"progress negative":       rawFrame(`{"type":"progress","digest":"`+testDigest+`","status":"Pushing","current":-1}`, nil),
		"progress from on pushed": rawFrame(`{"type":"progress","digest":"`+testDigest+`","status":"Pushed","from":"a"}`, nil),
		"mounted bad from":        rawFrame(`{"type":"progress","digest":"`+testDigest+`","status":"Mounted from","from":"A\nB"}`, nil),
		"mounted no from":         rawFrame(`{"type":"progress","digest":"`+testDigest+`","status":"Mounted from"}`, nil),
		"tags empty":              rawFrame(`{"type":"tags"}`, nil),
		"tags bad":                rawFrame(`{"type":"tags","tags":["ok","\u001b]0;x"]}`, nil),
		"tags too many":           rawFrame(`{"type":"tags","tags":[`+strings.TrimSuffix(strings.Repeat(`"t",`, maxTagsPerFrame+1), ",")+`]}`, nil),
		"error too long":          rawFrame(`{"type":"error","message":"`+strings.Repeat("x", maxMessage+1)+`"}`, nil),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := NewDecoder(bytes.NewReader(data)).Next()
			if !errdefs.IsDataLoss(err) {
				t.Fatalf("got %v, want a data-loss error", err)
			}
		})
	}
	// A stream cut inside a frame.
	whole := encodeAll(t, validFrames()[:1])
	if _, err := NewDecoder(bytes.NewReader(whole[:len(whole)-1])).Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
}

func TestEncoderRefusesInvalid(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, f := range []Frame{
		{Type: "exec"},
		{Type: TypeData, ID: 1},
		{Type: TypeData, ID: 1, Payload: make([]byte, MaxPayload+1)},
		{Type: TypeBlob, ID: 1, Kind: KindLayer, Digest: "nope"},
	} {
		if err := enc.Encode(f); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Encode(%+v): %v, want invalid argument", f.Type, err)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("refused frames wrote %d bytes", buf.Len())
	}
}

// FuzzDecoder feeds the parent's frame decoder arbitrary bytes: it must
// never panic, and whatever it accepts must re-encode to a frame that
// decodes to the same value.
func FuzzDecoder(f *testing.F) {
	f.Add(encodeAll(f, validFrames()))
	for _, fr := range validFrames() {
		f.Add(encodeAll(f, []Frame{fr}))
	}
	f.Add(rawFrame(`{"type":"blob","id":4294967295,"kind":"layer","digest":"`+testDigest+`","size":9223372036854775807}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := NewDecoder(bytes.NewReader(data))
		for range 64 {
			fr, err := dec.Next()
			if err != nil {
				return
			}
			var buf bytes.Buffer
			if err := NewEncoder(&buf).Encode(fr); err != nil {
				t.Fatalf("decoded frame does not re-encode: %+v: %v", fr, err)
			}
			again, err := NewDecoder(&buf).Next()
			if err != nil {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
			if !reflect.DeepEqual(normalize(fr), normalize(again)) {
				t.Fatalf("round trip changed the frame:\n%+v\n%+v", fr, again)
			}
		}
	})
}

// normalize makes empty and nil slices compare equal.
func normalize(f Frame) Frame {
	if len(f.Digests) == 0 {
		f.Digests = nil
	}
	if len(f.Tags) == 0 {
		f.Tags = nil
	}
	if f.Request != nil && f.Request.Push != nil {
		r, p := *f.Request, *f.Request.Push
		if len(p.Layers) == 0 {
			p.Layers = nil
		}
		p.Layers = slices.Clone(p.Layers)
		for i := range p.Layers {
			if len(p.Layers[i].MountFrom) == 0 {
				p.Layers[i].MountFrom = nil
			}
		}
		r.Push = &p
		f.Request = &r
	}
	if len(f.Payload) == 0 {
		f.Payload = nil
	}
	return f
}

func TestErrorCategoriesSurviveTheWire(t *testing.T) {
	for _, c := range Categories {
		orig := fmt.Errorf("pulling x: something: %w", c.Err)
		var buf bytes.Buffer
		if err := NewEncoder(&buf).Encode(errorFrame(orig)); err != nil {
			t.Fatal(err)
		}
		fr, err := NewDecoder(&buf).Next()
		if err != nil {
			t.Fatal(err)
		}
		got := Err(fr)
		if !errors.Is(got, c.Err) {
			t.Errorf("%s: decoded error %v does not match its category", c.Name, got)
		}
		if got.Error() != orig.Error() {
			t.Errorf("%s: text %q, want %q", c.Name, got, orig)
		}
	}
	if got := Err(Frame{Type: TypeError, Category: "martian", Message: "m"}); !errdefs.IsUnknown(got) {
		t.Errorf("unknown category decodes as %v", got)
	}
	if !errdefs.IsCanceled(Err(errorFrame(context.Canceled))) {
		t.Error("context.Canceled does not survive")
	}
}
