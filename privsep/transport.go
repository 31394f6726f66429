package privsep

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// The transport both sides share: length-prefixed frames, the descriptors
// that ride on them (SCM_RIGHTS), and the call connections the control
// socket carries.

// WriteFrame writes body with its length prefix (uint32 big-endian).
func WriteFrame(w io.Writer, body []byte) error {
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame of at most max bytes. A longer frame gives
// errdefs.ErrInvalidArgument without reading its body; a truncated one
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	return readBody(r, binary.BigEndian.Uint32(hdr[:]), max)
}

// readBody reads a frame's body of n bytes, refusing n over max.
func readBody(r io.Reader, n uint32, max int) ([]byte, error) {
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d: %w", n, max, errdefs.ErrInvalidArgument)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// ReadFrameFD reads one frame of at most max bytes from conn and the
// descriptor (if any) sent with its first bytes; -1 for none. Extra
// descriptors are closed, and so is the descriptor when the frame cannot
// be read. A longer frame gives errdefs.ErrInvalidArgument without
// reading its body.
func ReadFrameFD(conn *net.UnixConn, max int) ([]byte, int, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(hdr[:], oob)
	if err != nil {
		return nil, -1, err
	}
	if n == 0 {
		return nil, -1, io.ErrUnexpectedEOF
	}
	fd := -1
	if fds := ParseRights(oob[:oobn]); len(fds) > 0 {
		fd = fds[0]
		CloseFDs(fds[1:])
	}
	if n < 4 {
		if _, err := io.ReadFull(conn, hdr[n:]); err != nil {
			CloseFDs([]int{fd})
			return nil, -1, err
		}
	}
	body, err := readBody(conn, binary.BigEndian.Uint32(hdr[:]), max)
	if err != nil {
		CloseFDs([]int{fd})
		return nil, -1, err
	}
	return body, fd, nil
}

// WriteFrameFD writes body with its length prefix, sending fd (if ≥ 0)
// with the 4-byte prefix alone (SCM_RIGHTS), so that the descriptor rides
// on bytes a single sendmsg surely delivers. fd stays the caller's.
func WriteFrameFD(conn *net.UnixConn, body []byte, fd int) error {
	if fd < 0 {
		return WriteFrame(conn, body)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, _, err := conn.WriteMsgUnix(hdr[:], unix.UnixRights(fd), nil); err != nil {
		return err
	}
	_, err := conn.Write(body)
	return err
}

// ParseRights returns the descriptors an SCM_RIGHTS message carried.
func ParseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

// CloseFDs closes the descriptors, skipping negative ones.
func CloseFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// IsUnixStream reports whether fd is an AF_UNIX SOCK_STREAM socket.
func IsUnixStream(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	dom, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && err2 == nil && typ == unix.SOCK_STREAM && dom == unix.AF_UNIX
}

// CallConn turns a received call descriptor into a connection after
// checking that it is a unix SOCK_STREAM socket
// (errdefs.ErrInvalidArgument otherwise, and fd is closed).
func CallConn(fd int) (*net.UnixConn, error) {
	if !IsUnixStream(fd) {
		unix.Close(fd)
		return nil, fmt.Errorf("received a descriptor that is not a unix stream socket: %w", errdefs.ErrInvalidArgument)
	}
	f := os.NewFile(uintptr(fd), "privsep-call")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("received socket is not a unix connection: %w", errdefs.ErrInvalidArgument)
	}
	return uc, nil
}
