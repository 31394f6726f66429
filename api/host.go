package api

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/monitor"
)

// localHost is the Host of an in-process server: the container's files
// under the backend's RunRoot, read and written directly.
type localHost struct{ b Backend }

func (h localHost) containerFile(id, name string) string {
	return filepath.Join(h.b.Options().RunRoot, "containers", id, name)
}

func (h localHost) ExitStatus(id string) (int, bool) {
	n, _, err := monitor.ExitStatus(filepath.Join(h.b.Options().RunRoot, "exits"), id)
	return n, err == nil
}

func (h localHost) LogExists(id string) bool {
	_, err := os.Stat(h.b.LogPath(id))
	return err == nil
}

func (h localHost) FollowLog(ctx context.Context, id string, since time.Time, fn func(monitor.LogEntry) error) error {
	return monitor.ReadLog(ctx, h.b.LogPath(id), monitor.LogOptions{Follow: true, Tail: -1, Since: since, Done: func() bool {
		c, err := h.b.Container(ctx, id)
		return err != nil || c.State.Status != engine.StatusRunning
	}}, fn)
}

func (h localHost) DialAttach(ctx context.Context, id string) (net.Conn, error) {
	// The engine dials through /proc/self/fd: a long RunRoot would
	// exceed the 108 bytes of a socket address.
	if e, ok := h.b.(interface {
		DialAttach(id string) (*net.UnixConn, error)
	}); ok {
		return e.DialAttach(id)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unixpacket", h.containerFile(id, "attach"))
}
