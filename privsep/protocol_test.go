package privsep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestFrameLimits(t *testing.T) {
	var b bytes.Buffer
	hdr := make([]byte, 4)
	binary.BigEndian.PutUint32(hdr, MaxRequest+1)
	b.Write(hdr)
	if _, err := ReadFrame(&b, MaxRequest); !errdefs.IsInvalidArgument(err) {
		t.Errorf("oversized frame: %v, want invalid argument", err)
	}
	b.Reset()
	binary.BigEndian.PutUint32(hdr, 10)
	b.Write(hdr)
	b.WriteString("short")
	if _, err := ReadFrame(&b, MaxRequest); err == nil {
		t.Error("truncated frame accepted")
	}
	b.Reset()
	WriteFrame(&b, []byte(`{"op":"options"}`))
	body, err := ReadFrame(&b, MaxRequest)
	if err != nil || string(body) != `{"op":"options"}` {
		t.Errorf("round trip: %q %v", body, err)
	}
}

func TestErrorCategoriesCross(t *testing.T) {
	for _, c := range categories {
		r := ErrorReply(&RemoteError{Message: "m", Category: c.cat})
		if r.Category != c.name {
			t.Errorf("%v: sent as %q, want %q", c.cat, r.Category, c.name)
		}
		if err := replyError(r); categoryOf(err) != c.name || !errors.Is(err, c.cat) {
			t.Errorf("%q: received as %q", c.name, categoryOf(err))
		}
	}
	if r := ErrorReply(errors.New("plain")); r.Category != "unknown" {
		t.Errorf("an error without a category is sent as %q", r.Category)
	}
}
