package helper

import (
	"net"
	"os"
	"testing"

	"github.com/berthproject/berth/privsep"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// The descriptor a request frame carries is checked against its op:
// only copy-to takes one, and it must be a pipe or a unix stream socket.
func TestRequestInput(t *testing.T) {
	get := Request{Op: privsep.OpContainerGet, Args: &privsep.RefArgs{Ref: "web"}}
	copyTo := Request{Op: privsep.OpContainerCopyTo, Args: &privsep.CopyToArgs{Ref: "web", Path: "/tmp"}}
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
	if _, err := TakeInput(get, dup(pr)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor on container.get: %v", err)
	}
	if _, err := TakeInput(copyTo, -1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to without a descriptor: %v", err)
	}
	reg, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if _, err := TakeInput(copyTo, dup(reg)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to with a regular file: %v", err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uf, _ := udp.(*net.UDPConn).File()
	udp.Close()
	if _, err := TakeInput(copyTo, dup(uf)); !errdefs.IsInvalidArgument(err) {
		t.Errorf("copy-to with a UDP socket: %v", err)
	}
	uf.Close()
	f, err := TakeInput(copyTo, dup(pr))
	if err != nil || f == nil {
		t.Fatalf("copy-to with a pipe: %v", err)
	}
	f.Close()
	pr.Close()
}

// The descriptor rules of the exec ops: exec.start with stdin takes
// exactly the read end of a pipe; everything else takes none.
func TestExecInput(t *testing.T) {
	start := func(stdin bool) Request {
		return Request{Op: privsep.OpExecStart, Args: &privsep.ExecStartArgs{ID: id64, Container: id64, Cmd: []string{"sh"}, Stdin: stdin}}
	}
	pipe := func() (r, w int) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		return p[0], p[1]
	}
	r, w := pipe()
	defer unix.Close(w)
	f, err := TakeInput(start(true), r)
	if err != nil || f == nil {
		t.Fatalf("read end of a pipe refused: %v", err)
	}
	f.Close()
	if _, err := TakeInput(start(true), -1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("stdin without a descriptor: %v", err)
	}
	r2, w2 := pipe()
	defer unix.Close(r2)
	if _, err := TakeInput(start(true), w2); !errdefs.IsInvalidArgument(err) {
		t.Errorf("write end accepted as stdin: %v", err)
	}
	if unix.Close(w2) == nil {
		t.Error("a refused descriptor was left open")
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[1])
	if _, err := TakeInput(start(true), sp[0]); !errdefs.IsInvalidArgument(err) {
		t.Errorf("socket accepted as stdin: %v", err)
	}
	r3, w3 := pipe()
	defer unix.Close(w3)
	if _, err := TakeInput(start(false), r3); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor accepted without stdin: %v", err)
	}
	r4, w4 := pipe()
	defer unix.Close(w4)
	if _, err := TakeInput(Request{Op: privsep.OpExecResize, Args: &privsep.ResizeArgs{ID: id64}}, r4); !errdefs.IsInvalidArgument(err) {
		t.Errorf("descriptor accepted by exec.resize: %v", err)
	}
	if f, err := TakeInput(start(false), -1); f != nil || err != nil {
		t.Errorf("no stdin, no descriptor: %v %v", f, err)
	}
}
