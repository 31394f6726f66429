package helper

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/privsep"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// pair returns both ends of a SOCK_SEQPACKET socketpair.
func pair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conv := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "sp")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conv(fds[0]), conv(fds[1])
}

// helper starts a Helper over a fresh engine and returns a client of it.
func startHelper(t *testing.T) (*privsep.Client, *net.UnixConn, string) {
	t.Helper()
	return startHelperWith(t, nil)
}

// startHelperWith is startHelper with set applied to the Helper first.
func startHelperWith(t *testing.T, set func(*Helper)) (*privsep.Client, *net.UnixConn, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the engine's roots)")
	}
	dir := t.TempDir()
	ctx := t.Context()
	e, err := engine.Open(ctx, engine.Options{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	vols, err := volume.Open(e.Options().Root)
	if err != nil {
		t.Fatal(err)
	}
	srvEnd, cliEnd := pair(t)
	h := &Helper{Engine: e, Volumes: vols, Events: events.Open(e.Options().Root), Logf: t.Logf}
	if set != nil {
		set(h)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(context.Background(), srvEnd) }()
	t.Cleanup(func() {
		cliEnd.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return when the client closed the control socket")
		}
	})
	c, err := privsep.NewClient(ctx, cliEnd)
	if err != nil {
		t.Fatal(err)
	}
	return c, cliEnd, e.Options().Root
}

func TestRoundTrip(t *testing.T) {
	c, _, root := startHelper(t)
	if c.Options().Root != root {
		t.Errorf("options: root %q, want %q", c.Options().Root, root)
	}
	vs := c.VolumeStore()
	v, err := vs.Create("rt", "", map[string]string{"k": "v"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(root, "volumes", "rt", "_data") {
		t.Errorf("mountpoint %q", v.Mountpoint)
	}
	if _, err := os.Stat(v.Mountpoint); err != nil {
		t.Errorf("volume not made by the helper: %v", err)
	}
	if got, err := vs.Get("rt"); err != nil || got.Labels["k"] != "v" {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := c.Container(t.Context(), "nosuch"); !errdefs.IsNotFound(err) {
		t.Errorf("missing container: %v, want not found", err)
	}
	if _, err := c.Container(t.Context(), "../../etc"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("traversal ref: %v, want invalid argument", err)
	}
	if _, err := c.InspectContainer(t.Context(), "nosuch", true); !errdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing container: %v, want not found", err)
	}
	if err := c.RemoveWithVolumes(t.Context(), "nosuch", true); !errdefs.IsNotFound(err) {
		t.Errorf("rm -v of a missing container: %v, want not found", err)
	}
	if err := c.ResizeTTY(t.Context(), "nosuch", 24, 80); !errdefs.IsNotFound(err) {
		t.Errorf("resize of a missing container: %v, want not found", err)
	}
	if code, ok := c.Host().ExitStatus("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"); ok || code != 0 {
		t.Errorf("exit status of nothing: %d %v", code, ok)
	}
	if _, err := c.Push(t.Context(), "x", engine.PushOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("push of an image not stored: %v, want not found", err)
	}
	names, _, err := vs.Prune(func(volume.Volume) bool { return false })
	if err != nil || len(names) != 1 || names[0] != "rt" {
		t.Errorf("prune: %v %v", names, err)
	}
}

// rawCall sends body as a call's request frame (bypassing the client's
// checks) and returns the helper's first reply.
func rawCall(t *testing.T, ctrl *net.UnixConn, frame []byte) privsep.Reply {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ctrl.WriteMsgUnix([]byte{'c'}, unix.UnixRights(fds[1]), nil); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "call")
	defer f.Close()
	f.Write(frame)
	body, err := privsep.ReadFrame(f, privsep.MaxReply)
	if err != nil {
		t.Fatal(err)
	}
	var r privsep.Reply
	if err := privsep.DecodeStrict(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHelperRefusesOnTheWire(t *testing.T) {
	c, ctrl, _ := startHelper(t)
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], privsep.MaxRequest+1)
	if r := rawCall(t, ctrl, hdr[:]); r.Kind != privsep.KindError || r.Category != "invalid-argument" {
		t.Errorf("oversized frame: %+v", r)
	}
	var b []byte
	body := []byte(`{"op":"host.exec","args":{"cmd":"sh"}}`)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	if r := rawCall(t, ctrl, append(b, body...)); r.Kind != privsep.KindError || r.Category != "invalid-argument" {
		t.Errorf("unknown op: %+v", r)
	}
	// Malformed control messages are dropped; the helper keeps serving.
	p := make([]int, 2)
	if err := unix.Pipe(p); err != nil {
		t.Fatal(err)
	}
	ctrl.WriteMsgUnix([]byte{'c'}, unix.UnixRights(p[0]), nil)       // not a socket
	ctrl.WriteMsgUnix([]byte{'c'}, unix.UnixRights(p[0], p[1]), nil) // two descriptors
	ctrl.WriteMsgUnix([]byte{'c'}, nil, nil)                         // none
	ctrl.WriteMsgUnix([]byte("cc"), unix.UnixRights(p[1]), nil)      // two bytes
	unix.Close(p[0])
	unix.Close(p[1])
	if _, err := c.VolumeStore().List(); err != nil {
		t.Errorf("helper stopped serving after malformed control messages: %v", err)
	}
}
