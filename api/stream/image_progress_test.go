package stream

import (
	"bufio"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

// A pull whose only output so far is "Pulling from" has not started the
// stream: its failure can still get its own status.
func TestHeldPullProgress(t *testing.T) {
	rec := httptest.NewRecorder()
	pw := NewProgress(rec)
	h := HoldPull(pw)
	h.Write([]byte("latest: Pulling from busybox\n"))
	if pw.Fail("manifest unknown") {
		t.Fatal("stream started before anything was resolved")
	}
	h.Write([]byte("abcdefabcdef: Pulling fs layer\n"))
	if !pw.Fail("later") {
		t.Fatal("stream not started after a layer line")
	}
	body := rec.Body.String()
	if !strings.Contains(body, "Pulling from busybox") || strings.Index(body, "Pulling from") > strings.Index(body, "Pulling fs layer") {
		t.Errorf("held line lost or reordered: %s", body)
	}
}

// Push output: one digest line as the push printed it, then Docker's aux.
func TestPushOutput(t *testing.T) {
	rec := httptest.NewRecorder()
	out := NewPushOutput(NewProgress(rec))
	d := digest.FromString("m")
	out.Write([]byte("The push refers to repository [127.0.0.1:5000/x]\nabcdefabcdef: Pushed\nv1: digest: " + d.String() + " size: 405\n"))
	out.Finish("v1", d.String(), 405)
	var digests, auxes int
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		var m struct {
			Status string
			Aux    *struct {
				Tag, Digest string
				Size        int64
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if strings.Contains(m.Status, "digest:") {
			digests++
			if m.Status != "v1: digest: "+d.String()+" size: 405" {
				t.Errorf("digest line %q", m.Status)
			}
		}
		if m.Aux != nil {
			auxes++
			if m.Aux.Tag != "v1" || m.Aux.Digest != d.String() || m.Aux.Size != 405 {
				t.Errorf("aux %+v", *m.Aux)
			}
		}
	}
	if digests != 1 || auxes != 1 {
		t.Errorf("%d digest lines and %d aux messages, want 1 and 1:\n%s", digests, auxes, rec.Body)
	}
}
