package privsep

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

func TestDecodeVerbsRefuses(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"top traversal", `{"op":"container.top","args":{"ref":"../x","psArgs":[]}}`, "not a valid name"},
		{"top shell chars", `{"op":"container.top","args":{"ref":"web","psArgs":["-o","pid;rm -rf /"]}}`, "invalid ps argument"},
		{"top too many", `{"op":"container.top","args":{"ref":"web","psArgs":[` + strings.Repeat(`"a",`, 40) + `"a"]}}`, "ps arguments"},
		{"stats none", `{"op":"container.stats","args":{"refs":[],"interval":0}}`, "containers"},
		{"stats interval", `{"op":"container.stats","args":{"refs":["web"],"interval":60000000000}}`, "interval"},
		{"stats bad ref", `{"op":"container.stats","args":{"refs":["a/b"]}}`, "not a valid name"},
		{"pause bad ref", `{"op":"container.pause","args":{"ref":""}}`, "not a valid name"},
		{"rename bad name", `{"op":"container.rename","args":{"ref":"web","name":"a b"}}`, "Invalid container name"},
		{"rename empty", `{"op":"container.rename","args":{"ref":"web","name":""}}`, "Invalid container name"},
		{"stat NUL path", `{"op":"container.path-stat","args":{"ref":"web","path":"/etc\u0000x"}}`, "invalid path"},
		{"stat empty path", `{"op":"container.path-stat","args":{"ref":"web","path":""}}`, "invalid path"},
		{"copy-from rename slash", `{"op":"container.copy-from","args":{"ref":"web","path":"/etc","rename":"../x"}}`, "invalid entry name"},
		{"copy-from rename dotdot", `{"op":"container.copy-from","args":{"ref":"web","path":"/etc","rename":".."}}`, "invalid entry name"},
		{"copy-to long path", `{"op":"container.copy-to","args":{"ref":"web","path":"/` + strings.Repeat("a", 5000) + `"}}`, "invalid path"},
		{"copy-to unknown field", `{"op":"container.copy-to","args":{"ref":"web","path":"/tmp","data":"x"}}`, "unknown field"},
		{"connect bad ip", `{"op":"network.connect","args":{"network":"n","container":"web","ip":"::1"}}`, "IPv4"},
		{"connect bad alias", `{"op":"network.connect","args":{"network":"n","container":"web","aliases":["a b"]}}`, "alias"},
		{"connect no container", `{"op":"network.connect","args":{"network":"n","container":""}}`, "not a valid name"},
		{"disconnect traversal", `{"op":"network.disconnect","args":{"network":"../n","container":"web"}}`, "not a valid name"},
		{"push id", `{"op":"image.push","args":{"ref":"` + id64 + `"}}`, "image ID"},
		{"push bad ref", `{"op":"image.push","args":{"ref":"a b:c"}}`, "invalid reference"},
	}
	for _, c := range cases {
		_, err := DecodeRequest([]byte(c.body), conf)
		if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v; want invalid argument containing %q", c.name, err, c.want)
		}
	}
}

func TestDecodeVerbsAccepts(t *testing.T) {
	cases := []string{
		`{"op":"container.top","args":{"ref":"web","psArgs":["-o","pid,comm,%cpu"]}}`,
		`{"op":"container.top","args":{"ref":"web","psArgs":null}}`,
		`{"op":"container.stats","args":{"refs":["web","3f2a"],"interval":1000000000}}`,
		`{"op":"container.pause","args":{"ref":"web"}}`,
		`{"op":"container.unpause","args":{"ref":"web"}}`,
		`{"op":"container.rename","args":{"ref":"web","name":"/web2"}}`,
		`{"op":"container.path-stat","args":{"ref":"web","path":"relative/../x","followLink":true}}`,
		`{"op":"container.copy-from","args":{"ref":"web","path":"/etc/.","rename":".","keepOwner":true}}`,
		`{"op":"container.copy-to","args":{"ref":"web","path":"/tmp/"}}`,
		`{"op":"network.connect","args":{"network":"net1","container":"web","ip":"10.1.2.3","aliases":["db","db.local"]}}`,
		`{"op":"network.disconnect","args":{"network":"net1","container":"web","force":true}}`,
		`{"op":"image.push","args":{"ref":"127.0.0.1:5000/x/y:v1"}}`,
	}
	for _, body := range cases {
		req, err := DecodeRequest([]byte(body), conf)
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		again, err := EncodeRequest(req.Op, req.Args)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeRequest(again, conf); err != nil {
			t.Errorf("re-encoded %s: %v", again, err)
		}
	}
}

// The descriptor a request frame carries is checked against its op:
// only copy-to takes one, and it must be a pipe or a unix stream socket.
func TestRequestInput(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	dup := func(f *os.File) int {
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	if _, err := requestInput(OpContainerGet, dup(pr)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor on container.get: %v", err)
	}
	if _, err := requestInput(OpContainerCopyTo, -1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to without a descriptor: %v", err)
	}
	reg, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := requestInput(OpContainerCopyTo, dup(reg)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to with a regular file: %v", err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uf, _ := udp.(*net.UDPConn).File()
	udp.Close()
	if _, err := requestInput(OpContainerCopyTo, dup(uf)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to with a UDP socket: %v", err)
	}
	uf.Close()
	f, err := requestInput(OpContainerCopyTo, dup(pr))
	if err != nil || f == nil {
		t.Fatalf("copy-to with a pipe: %v", err)
	}
	f.Close()
	pr.Close()
}
