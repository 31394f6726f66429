// Package helper is the privileged side of the service's privilege
// split (package privsep; SPEC.md there): it reads each call's request
// frame, decodes it strictly and validates it (DecodeRequest, Validate,
// TakeInput), and runs it on the engine, the volume store and the event
// log. It imports no HTTP, TLS or registry client code; its requests come
// from the unprivileged API server's privsep.Client.
package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/internal/idletrim"
	"github.com/berthproject/berth/privsep"
	"github.com/berthproject/berth/volume"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// Helper is the privileged side: it runs validated requests on Engine,
// Volumes and Events. It holds no HTTP, TLS or registry client code of its
// own; a pull runs engine.Pull, whose registry I/O happens in the
// unprivileged fetcher child (image/fetcher).
type Helper struct {
	Engine  *engine.Engine
	Volumes *volume.Store // nil: volume requests give errdefs.ErrNotImplemented
	Events  *events.Log   // nil: event.append is dropped, event.read sends nothing
	// MaxCalls bounds the short calls served at once (0: 256); a call
	// beyond it waits for a slot. Streaming calls (see streaming) do not
	// count against it, and no more than MaxCalls calls may be reading
	// their request at once.
	MaxCalls int
	// MaxStreams bounds the streaming calls served at once (0: 4096): a
	// streaming call beyond it is refused at once with
	// errdefs.ErrUnavailable (HTTP 503), never queued.
	MaxStreams int
	// Logf reports calls that failed at the protocol level; nil: log.Printf.
	Logf func(format string, args ...any)

	execs execTable // running exec'd processes (exec.go)
	trim  idletrim.Trimmer
}

// requestTimeout bounds the wait for a call's request frame.
const requestTimeout = 30 * time.Second

// Serve accepts calls on ctrl (the helper's end of the SOCK_SEQPACKET
// control socketpair) until the peer closes it or ctx ends, and returns
// nil then. Each control message must be one byte carrying exactly one
// SOCK_STREAM unix socket (SCM_RIGHTS); any other message is dropped and
// its descriptors closed. Calls run concurrently; Serve waits for them
// before it returns.
func (h *Helper) Serve(ctx context.Context, ctrl *net.UnixConn) error {
	if h.Logf == nil {
		h.Logf = log.Printf
	}
	max, maxStreams := h.MaxCalls, h.MaxStreams
	if max <= 0 {
		max = 256
	}
	if maxStreams <= 0 {
		maxStreams = 4096
	}
	lim := &limits{reading: make(chan struct{}, max), short: make(chan struct{}, max), streams: make(chan struct{}, maxStreams)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ctrl.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room to notice (and close) a few extra fds
	for {
		n, oobn, flags, _, err := ctrl.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 && oobn == 0 {
			if ctx.Err() != nil || err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		fds := privsep.ParseRights(oob[:oobn])
		if n != 1 || len(fds) != 1 || flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
			privsep.CloseFDs(fds)
			h.Logf("privsep: dropped a malformed control message (%d bytes, %d fds)", n, len(fds))
			continue
		}
		conn, err := privsep.CallConn(fds[0])
		if err != nil {
			h.Logf("privsep: %v", err)
			continue
		}
		lim.reading <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			h.call(ctx, conn, lim)
		}()
	}
}

// sender writes reply frames on one call connection.
type sender struct {
	mu   sync.Mutex
	conn *net.UnixConn
	err  error
	in   *os.File // the descriptor the request carried (TakeInput), else nil
}

func (s *sender) send(r privsep.Reply, fd int) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.err = privsep.WriteFrameFD(s.conn, body, fd)
	return s.err
}

// stream is an io.Writer sending its bytes as frames of one kind.
func (s *sender) stream(kind string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		for off := 0; off < len(p); off += privsep.MaxChunk {
			end := min(off+privsep.MaxChunk, len(p))
			if err := s.send(privsep.Reply{Kind: kind, Data: p[off:end]}, -1); err != nil {
				return off, err
			}
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// limits are the helper's concurrency bounds (SPEC.md, "Concurrency"):
// a slot in reading while a call's request is read, then one in short or
// in streams while it runs.
type limits struct {
	reading, short, streams chan struct{}
}

// streaming reports whether req may run for as long as its client
// likes (a followed log or event stream, an exec'd process) or moves an
// unbounded byte stream: such calls are bounded by MaxStreams, not
// MaxCalls, so that they never hold up short calls.
func streaming(req Request) bool {
	switch a := req.Args.(type) {
	case *privsep.LogsArgs:
		return a.Follow
	case *privsep.EventReadArgs:
		return a.Follow
	}
	switch req.Op {
	case privsep.OpContainerFollow, privsep.OpExecStart, privsep.OpImagePull, privsep.OpImagePush,
		privsep.OpContainerCopyFrom, privsep.OpContainerCopyTo, privsep.OpImageSave, privsep.OpImageLoad,
		privsep.OpImageImport, privsep.OpContainerExport:
		return true
	}
	return false
}

// admit takes a slot for req: a streaming call gets one at once or is
// refused with errdefs.ErrUnavailable; a short call waits for one (false
// when ctx ends first). release gives it back.
func (l *limits) admit(ctx context.Context, req Request) (release func(), err error) {
	if streaming(req) {
		select {
		case l.streams <- struct{}{}:
			return func() { <-l.streams }, nil
		default:
			return nil, fmt.Errorf("too many streaming requests (%d: events, followed logs, attach, exec, copy, pull/push) are open: %w", cap(l.streams), errdefs.ErrUnavailable)
		}
	}
	select {
	case l.short <- struct{}{}:
		return func() { <-l.short }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// call serves one call: request, validation, the op, the result.
func (h *Helper) call(ctx context.Context, conn *net.UnixConn, lim *limits) {
	defer h.trim.Touch() // an idle helper gives its garbage back
	s := &sender{conn: conn}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	body, inFD, err := privsep.ReadFrameFD(conn, privsep.MaxRequest)
	<-lim.reading
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			s.send(privsep.ErrorReply(err), -1)
		}
		return
	}
	req, err := DecodeRequest(body, confOf(h.Engine))
	if err == nil {
		s.in, err = TakeInput(req, inFD)
	} else {
		privsep.CloseFDs([]int{inFD})
	}
	if err != nil {
		s.send(privsep.ErrorReply(err), -1)
		return
	}
	if s.in != nil {
		defer s.in.Close()
	}
	release, err := lim.admit(ctx, req)
	if err != nil {
		s.send(privsep.ErrorReply(err), -1)
		return
	}
	defer release()
	conn.SetReadDeadline(time.Time{})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The client sends nothing after its request: EOF (or anything else)
	// means it has gone, and the call is cancelled.
	go func() {
		var b [1]byte
		conn.Read(b[:])
		cancel()
	}()
	fd := -1
	res, err := h.run(ctx, req, s, &fd)
	if fd >= 0 {
		defer unix.Close(fd)
	}
	if err != nil {
		s.send(privsep.ErrorReply(err), -1)
		return
	}
	data, err := json.Marshal(res)
	if err != nil {
		s.send(privsep.ErrorReply(err), -1)
		return
	}
	s.send(privsep.Reply{Kind: privsep.KindResult, Result: data}, fd)
}
