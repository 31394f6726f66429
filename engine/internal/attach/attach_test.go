package attach

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// monitorPair is a SOCK_SEQPACKET pair: the caller's end as Copy gets it
// and the monitor's end as a raw fd.
func monitorPair(t *testing.T) (*net.UnixConn, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "client")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); unix.Close(fds[1]) })
	return c.(*net.UnixConn), fds[1]
}

func TestCopySplitsStreams(t *testing.T) {
	conn, mon := monitorPair(t)
	for _, m := range [][]byte{append([]byte{pipeStdout}, "out1 "...), append([]byte{pipeStderr}, "err"...), {1, 'x'}, append([]byte{pipeStdout}, "out2"...)} {
		if _, err := unix.Write(mon, m); err != nil {
			t.Fatal(err)
		}
	}
	unix.Shutdown(mon, unix.SHUT_WR)
	var out, errOut bytes.Buffer
	got, err := Copy(t.Context(), conn, false, Streams{Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1 out2" || errOut.String() != "err" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if got != (Result{Stdout: 9, Stderr: 3}) {
		t.Errorf("result %+v", got)
	}
	// What the log holds beyond what was read is written, per stream.
	out.Reset()
	errOut.Reset()
	got.WriteMissed([]byte("out1 out2 lost"), []byte("err"), Streams{Stdout: &out, Stderr: &errOut})
	if out.String() != " lost" || errOut.Len() != 0 {
		t.Errorf("replay: stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestCopyDetachKeys(t *testing.T) {
	conn, mon := monitorPair(t)
	keys, err := ParseDetachKeys("ctrl-a,x")
	if err != nil || !bytes.Equal(keys, []byte{1, 'x'}) {
		t.Fatalf("keys %v %v", keys, err)
	}
	in := io.MultiReader(bytes.NewReader([]byte("hi\x01y\x01x")), blockingReader{})
	_, err = Copy(t.Context(), conn, true, Streams{Stdin: in, DetachKeys: keys})
	if !errors.Is(err, ErrDetached) {
		t.Fatalf("Copy: %v, want ErrDetached", err)
	}
	// The partial match (ctrl-a then y) went on; the keys did not.
	var sent []byte
	buf := make([]byte, 64)
	for {
		n, err := unix.Read(mon, buf)
		if n <= 0 || err != nil {
			break
		}
		sent = append(sent, buf[:n]...)
	}
	if string(sent) != "hi\x01y" {
		t.Errorf("container stdin got %q", sent)
	}
}

// blockingReader never returns: input that stays open.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

func TestParseDetachKeysInvalid(t *testing.T) {
	if b, err := ParseDetachKeys(""); err != nil || !bytes.Equal(b, []byte{16, 17}) {
		t.Errorf("default: %v %v", b, err)
	}
	if _, err := ParseDetachKeys("ctrl-"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("ctrl-: %v", err)
	}
}

func TestDialMissing(t *testing.T) {
	if _, err := Dial(filepath.Join(t.TempDir(), "attach")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Dial: %v, want os.ErrNotExist", err)
	}
}
