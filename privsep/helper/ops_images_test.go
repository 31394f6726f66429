package helper

import (
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/privsep"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

var imageID64 = "sha256:" + id64

func TestDecodeImageOpsRefuses(t *testing.T) {
	wantRefused(t, []refusal{
		{"history bad ref", `{"op":"image.history","args":{"ref":"UPPER/Case"}}`, "invalid reference"},
		{"changes traversal", `{"op":"container.changes","args":{"ref":"../x"}}`, "not a valid name"},
		{"export slash", `{"op":"container.export","args":{"ref":"a/b"}}`, "not a valid name"},
		{"prune ids unfiltered", `{"op":"image.prune","args":{"ids":["` + imageID64 + `"]}}`, "without filtered"},
		{"prune short id", `{"op":"image.prune","args":{"filtered":true,"ids":["sha256:abc"]}}`, "not an image ID"},
		{"prune unknown field", `{"op":"image.prune","args":{"keep":"x"}}`, "unknown field"},
		{"login url", `{"op":"image.login","args":{"server":"http://evil/x","username":"u","password":"p"}}`, "invalid registry"},
		{"login NUL", `{"op":"image.login","args":{"server":"127.0.0.1:5000","username":"u\u0000","password":"p"}}`, "NUL"},
		{"save none", `{"op":"image.save","args":{"refs":[]}}`, "images"},
		{"save bad ref", `{"op":"image.save","args":{"refs":["a b"]}}`, "invalid reference"},
		{"load platform", `{"op":"image.load","args":{"platform":"../x"}}`, "platform"},
		{"import id as name", `{"op":"image.import","args":{"name":"abc123"}}`, "image ID"},
		{"import NUL change", `{"op":"image.import","args":{"changes":["CMD \u0000"]}}`, "NUL"},
		{"commit bad container", `{"op":"container.commit","args":{"ref":"../x"}}`, "not a valid name"},
		{"commit too many changes", `{"op":"container.commit","args":{"ref":"c","changes":[` + strings.Repeat(`"CMD x",`, maxChanges) + `"CMD x"]}}`, "changes"},
		{"commit long author", `{"op":"container.commit","args":{"ref":"c","author":"` + strings.Repeat("a", maxTextBytes+1) + `"}}`, "bytes"},
		{"pull credential NUL", `{"op":"image.pull","args":{"ref":"busybox","auth":{"username":"u\u0000"}}}`, "credential"},
		{"push credential field", `{"op":"image.push","args":{"ref":"busybox","auth":{"user":"u"}}}`, "unknown field"},
	})
}

func TestDecodeImageOpsAccepts(t *testing.T) {
	wantAccepted(t, []string{
		`{"op":"image.history","args":{"ref":"127.0.0.1:5000/busybox:latest"}}`,
		`{"op":"image.history","args":{"ref":"abc123"}}`,
		`{"op":"container.changes","args":{"ref":"web"}}`,
		`{"op":"container.export","args":{"ref":"/web"}}`,
		`{"op":"image.prune","args":{"all":true}}`,
		`{"op":"image.prune","args":{"filtered":true,"ids":["` + imageID64 + `"]}}`,
		`{"op":"image.login","args":{"server":"127.0.0.1:5000","username":"u","password":"p"}}`,
		`{"op":"image.login","args":{"server":"` + dockerHubServer + `","username":"u","password":"p"}}`,
		`{"op":"image.save","args":{"refs":["busybox","abc123"]}}`,
		`{"op":"image.load","args":{"platform":"linux/amd64"}}`,
		`{"op":"image.import","args":{"name":"imported:v1","changes":["CMD [\"sh\"]"],"source":"-"}}`,
		`{"op":"container.commit","args":{"ref":"web","reference":"web-snap:1","changes":["ENV A=1"],"comment":"c","author":"a","pause":true}}`,
		`{"op":"image.pull","args":{"ref":"busybox","auth":{"username":"u","password":"p"}}}`,
		`{"op":"image.push","args":{"ref":"127.0.0.1:5000/x:1","auth":{"identityToken":"t"}}}`,
	})
}

// Load and import read their archive from the descriptor the request
// carries: required, and a pipe or unix stream socket only.
func TestImageInput(t *testing.T) {
	for _, req := range []Request{
		{Op: privsep.OpImageLoad, Args: &privsep.LoadArgs{}},
		{Op: privsep.OpImageImport, Args: &privsep.ImportArgs{}},
	} {
		if _, err := TakeInput(req, -1); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s without a descriptor: %v", req.Op, err)
		}
		reg, err := os.CreateTemp(t.TempDir(), "f")
		if err != nil {
			t.Fatal(err)
		}
		fd, _ := unix.Dup(int(reg.Fd()))
		reg.Close()
		if _, err := TakeInput(req, fd); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s with a regular file: %v", req.Op, err)
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		fd, _ = unix.Dup(int(pr.Fd()))
		f, err := TakeInput(req, fd)
		if err != nil || f == nil {
			t.Errorf("%s with a pipe: %v", req.Op, err)
		} else {
			f.Close()
		}
		pr.Close()
		pw.Close()
	}
	// Save and export answer with frames: a descriptor is refused.
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	fd, _ := unix.Dup(int(pr.Fd()))
	pr.Close()
	if _, err := TakeInput(Request{Op: privsep.OpImageSave, Args: &privsep.SaveArgs{Refs: []string{"x"}}}, fd); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor on image.save: %v", err)
	}
}
