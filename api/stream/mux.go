// Package stream holds the API server's long-running responses and their
// plumbing: Docker's multiplexed ("stdcopy") frames, connection hijacking,
// container attach (output from the log, stdin to the monitor) and wait,
// pull and push progress as jsonmessages, and exec instances (the
// in-memory table behind /containers/{id}/exec and /exec/{id}/…, and the
// Execer that runs them).
package stream

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Stream numbers of Docker's multiplexed frames (the first header byte).
const (
	Stdin  = 0
	Stdout = 1
	Stderr = 2
)

// Mux writes Docker's multiplexed frames to one writer: an 8-byte header
// [stream, 0, 0, 0, size (big-endian uint32)] then size bytes. Without
// multiplexing it writes raw bytes (a TTY's single stream). Writes of the
// streams it hands out are serialised. Safe for concurrent use.
type Mux struct {
	mu    sync.Mutex
	w     io.Writer
	mux   bool
	flush func()
}

// NewMux returns a Mux over w: multiplexed frames when mux is true, raw
// bytes otherwise. flush, when not nil, runs after every write (an HTTP
// response's Flush).
func NewMux(w io.Writer, mux bool, flush func()) *Mux {
	return &Mux{w: w, mux: mux, flush: flush}
}

// Stream returns the writer of stream n (Stdout or Stderr). An empty
// write sends nothing (a zero-size frame would end some clients' reads).
func (m *Mux) Stream(n byte) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if len(p) == 0 {
			return 0, nil
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.mux {
			var hdr [8]byte
			hdr[0] = n
			binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
			if _, err := m.w.Write(hdr[:]); err != nil {
				return 0, err
			}
		}
		k, err := m.w.Write(p)
		if m.flush != nil {
			m.flush()
		}
		return k, err
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ContentType is the media type of a container's or exec's output:
// raw for a TTY, multiplexed otherwise (as dockerd answers).
func ContentType(tty bool) string {
	if tty {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}

// Hijack takes over the request's connection and sends the status line
// and headers itself: "101 UPGRADED" with Connection/Upgrade headers when
// the client asked for an upgrade (Connection: Upgrade, Upgrade: tcp, as
// the docker CLI and docker-py do), else "200 OK"; then contentType and
// Api-Version apiVersion. It returns the connection and a reader of what
// the client sends next (bytes already buffered by the HTTP server
// included). The caller closes the connection.
func Hijack(w http.ResponseWriter, r *http.Request, contentType, apiVersion string) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	status := "HTTP/1.1 200 OK\r\n"
	extra := ""
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") || strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
		status = "HTTP/1.1 101 UPGRADED\r\n"
		extra = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	hdr := status + "Content-Type: " + contentType + "\r\n" + extra +
		"Api-Version: " + apiVersion + "\r\nDocker-Experimental: false\r\nOstype: linux\r\n\r\n"
	if _, err := conn.Write([]byte(hdr)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// CloseWrite half-closes conn when it can (TCP and unix connections), so
// the client reads EOF while its own writes still arrive.
func CloseWrite(conn net.Conn) {
	if c, ok := conn.(interface{ CloseWrite() error }); ok {
		c.CloseWrite()
	}
}
