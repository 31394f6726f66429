package privsep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/monitor"
	"github.com/berthproject/berth/network"
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
	// MaxCalls bounds the calls served at once (0: 256); a call beyond it
	// waits for a slot.
	MaxCalls int
	// Logf reports calls that failed at the protocol level; nil: log.Printf.
	Logf func(format string, args ...any)

	execs execTable // running exec'd processes (exec.go)
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
	max := h.MaxCalls
	if max <= 0 {
		max = 256
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ctrl.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	slots := make(chan struct{}, max)
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
		fds := parseRights(oob[:oobn])
		if n != 1 || len(fds) != 1 || flags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
			closeFDs(fds)
			h.Logf("privsep: dropped a malformed control message (%d bytes, %d fds)", n, len(fds))
			continue
		}
		conn, err := streamConn(fds[0])
		if err != nil {
			h.Logf("privsep: %v", err)
			continue
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer conn.Close()
			h.call(ctx, conn)
		}()
	}
}

// parseRights returns the descriptors an SCM_RIGHTS message carried.
func parseRights(oob []byte) []int {
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

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// streamConn turns a received descriptor into a connection after checking
// that it is a unix SOCK_STREAM socket.
func streamConn(fd int) (*net.UnixConn, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	dom, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || err2 != nil || typ != unix.SOCK_STREAM || dom != unix.AF_UNIX {
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

// sender writes reply frames on one call connection.
type sender struct {
	mu   sync.Mutex
	conn *net.UnixConn
	err  error
	in   *os.File // the descriptor the request carried (requestInput), else nil
}

func (s *sender) send(r Reply, fd int) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if fd >= 0 {
		frame := make([]byte, 4, 4+len(body))
		frame[0], frame[1], frame[2], frame[3] = byte(len(body)>>24), byte(len(body)>>16), byte(len(body)>>8), byte(len(body))
		frame = append(frame, body...)
		_, _, s.err = s.conn.WriteMsgUnix(frame, unix.UnixRights(fd), nil)
	} else {
		s.err = writeFrame(s.conn, body)
	}
	return s.err
}

// stream is an io.Writer sending its bytes as frames of one kind.
func (s *sender) stream(kind string) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		for off := 0; off < len(p); off += chunk {
			end := min(off+chunk, len(p))
			if err := s.send(Reply{Kind: kind, Data: p[off:end]}, -1); err != nil {
				return off, err
			}
		}
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// call serves one call: request, validation, the op, the result.
func (h *Helper) call(ctx context.Context, conn *net.UnixConn) {
	s := &sender{conn: conn}
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	body, inFD, err := readFrameFD(conn, MaxRequest)
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			s.send(errorReply(err), -1)
		}
		return
	}
	conf := Confinement{Root: h.Engine.Options().Root, RunRoot: h.Engine.Options().RunRoot}
	req, err := DecodeRequest(body, conf)
	if err == nil && isExec(req.Op) {
		s.in, err = execInput(req, inFD)
	} else if err == nil {
		s.in, err = requestInput(req.Op, inFD)
	} else {
		closeFDs([]int{inFD})
	}
	if err != nil {
		s.send(errorReply(err), -1)
		return
	}
	if s.in != nil {
		defer s.in.Close()
	}
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
		s.send(errorReply(err), -1)
		return
	}
	data, err := json.Marshal(res)
	if err != nil {
		s.send(errorReply(err), -1)
		return
	}
	s.send(Reply{Kind: KindResult, Result: data}, fd)
}

// run executes one validated request. Requests that change state run to
// completion even when the client goes away (as the API handlers ask).
func (h *Helper) run(ctx context.Context, req Request, s *sender, fd *int) (any, error) {
	if res, err, ok := h.runVerb(ctx, req, s); ok {
		return res, err
	}
	if res, err, ok := h.runExec(ctx, req, s); ok {
		return res, err
	}
	e := h.Engine
	keep := context.WithoutCancel(ctx)
	switch a := req.Args.(type) {
	case *CreateArgs:
		return e.Create(keep, engine.CreateOptions{
			Name: a.Name, Image: a.Image, Run: a.Run, AutoRemove: a.AutoRemove, Pull: a.Pull,
			Progress: s.stream(KindProgress), Network: a.Network, Restart: a.Restart,
			StopSignal: a.StopSignal, StopTimeout: a.StopTimeout, LogMaxSize: a.LogMaxSize, Labels: a.Labels,
		})
	case *ListArgs:
		return e.Containers(ctx, a.All)
	case *StopArgs:
		return nil, e.StopWithSignal(keep, a.Ref, a.Signal, a.Timeout)
	case *KillArgs:
		return nil, e.Kill(keep, a.Ref, syscall.Signal(a.Signal))
	case *RemoveArgs:
		if req.Op == OpImageRemove {
			return e.RemoveImage(keep, a.Ref, a.Force)
		}
		return nil, e.Remove(keep, a.Ref, a.Force)
	case *LogsArgs:
		return nil, e.Logs(ctx, a.Ref, engine.LogOptions{Follow: a.Follow, Tail: a.Tail, Since: a.Since, Until: a.Until, Timestamps: a.Timestamps},
			s.stream(KindStdout), s.stream(KindStderr))
	case *FollowArgs:
		return nil, h.followLog(ctx, a, s)
	case *ResizeArgs:
		return nil, h.resize(a)
	case *PullArgs:
		return e.Pull(keep, a.Ref, engine.PullOptions{Platform: a.Platform, Progress: s.stream(KindProgress)})
	case *TagArgs:
		return nil, e.Tag(keep, a.Source, a.Target)
	case *NetworkCreateArgs:
		return h.network(keep, func(m *network.Manager) (any, error) {
			n, err := m.Create(keep, a.Options)
			return view(n), err
		})
	case *VolumeCreateArgs:
		return h.volumes(func(v *volume.Store) (any, error) { return v.Create(a.Name, a.Driver, a.Labels, a.Options) })
	case *VolumeRemoveArgs:
		return h.volumes(func(v *volume.Store) (any, error) { return nil, v.Remove(a.Name, a.InUse) })
	case *EventAppendArgs:
		if h.Events == nil {
			return nil, nil
		}
		return nil, h.Events.Append(a.Event)
	case *EventReadArgs:
		if h.Events == nil {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, h.Events.Read(ctx, events.ReadOptions{Since: a.Since, Until: a.Until, Follow: a.Follow}, func(ev events.Event) error {
			return s.send(Reply{Kind: KindEvent, Event: &ev}, -1)
		})
	case *IDArgs:
		return h.byID(ctx, req.Op, a.ID, fd)
	case *RefArgs:
		return h.byRef(ctx, keep, req.Op, a.Ref)
	case *NoArgs:
		return h.noArgs(ctx, keep, req.Op)
	}
	return nil, fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
}

func (h *Helper) noArgs(ctx, keep context.Context, op Op) (any, error) {
	switch op {
	case OpOptions:
		return h.Engine.Options(), nil
	case OpImageList:
		return h.Engine.Images(ctx)
	case OpNetworkDefault:
		return h.network(keep, func(m *network.Manager) (any, error) {
			n, err := m.EnsureDefault(keep)
			return view(n), err
		})
	case OpNetworkList:
		return h.network(ctx, func(m *network.Manager) (any, error) {
			ns, err := m.List(ctx)
			out := make([]NetworkView, 0, len(ns))
			for _, n := range ns {
				out = append(out, view(n))
			}
			return out, err
		})
	case OpNetworkPrune:
		return h.network(keep, func(m *network.Manager) (any, error) {
			names, err := m.Prune(keep)
			return PruneResult{Names: names}, err
		})
	case OpVolumeList:
		return h.volumes(func(v *volume.Store) (any, error) {
			vs, err := v.List()
			return VolumeList{Volumes: vs}, err
		})
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

func (h *Helper) byRef(ctx, keep context.Context, op Op, ref string) (any, error) {
	e := h.Engine
	switch op {
	case OpContainerGet:
		return e.Container(ctx, ref)
	case OpContainerStart:
		return nil, e.StartDetached(keep, ref)
	case OpImageInspect:
		r, err := e.InspectImage(ctx, ref)
		return ImageInspectResult{Image: r}, err
	case OpNetworkInspect:
		return h.network(ctx, func(m *network.Manager) (any, error) {
			n, err := m.Inspect(ctx, ref)
			return view(n), err
		})
	case OpNetworkRemove:
		return h.network(keep, func(m *network.Manager) (any, error) { return nil, m.Remove(keep, ref) })
	case OpVolumeGet:
		return h.volumes(func(v *volume.Store) (any, error) { return v.Get(ref) })
	case OpVolumeSize:
		return h.volumes(func(v *volume.Store) (any, error) { return VolumeSizeResult{Size: v.Size(ref)}, nil })
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

// containerFile is a file of the container's bundle directory, named from
// a validated ID.
func (h *Helper) containerFile(id, name string) string {
	return filepath.Join(h.Engine.Options().RunRoot, "containers", id, name)
}

func (h *Helper) byID(ctx context.Context, op Op, id string, fd *int) (any, error) {
	e := h.Engine
	switch op {
	case OpContainerExit:
		code, _, err := monitor.ExitStatus(filepath.Join(e.Options().RunRoot, "exits"), id)
		if errdefs.IsNotFound(err) {
			return ExitResult{}, nil
		}
		return ExitResult{Code: code, OK: err == nil}, err
	case OpContainerLogReady:
		_, err := os.Lstat(e.LogPath(id))
		return err == nil, nil
	case OpContainerStdin:
		path := h.containerFile(id, "attach")
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("container %s has no attach socket yet: %w", id, errdefs.ErrNotFound)
		}
		// Dialled through /proc/self/fd (a long RunRoot exceeds the 108
		// bytes of a socket address).
		c, err := e.DialAttach(id)
		if err != nil {
			return nil, fmt.Errorf("attach to %s: %v: %w", id, err, errdefs.ErrUnavailable)
		}
		defer c.Close()
		// File is a duplicate; the call closes *fd after sending it.
		f, err := c.File()
		if err != nil {
			return nil, err
		}
		defer f.Close()
		*fd, err = unix.Dup(int(f.Fd()))
		return nil, err
	case OpNetworkEndpoints:
		return h.network(ctx, func(m *network.Manager) (any, error) { return m.Endpoints(ctx, id) })
	}
	return nil, fmt.Errorf("no handler for %s: %w", op, errdefs.ErrNotImplemented)
}

// followLog streams the container's log from Since until the container
// no longer runs.
func (h *Helper) followLog(ctx context.Context, a *FollowArgs, s *sender) error {
	e := h.Engine
	return monitor.ReadLog(ctx, e.LogPath(a.ID), monitor.LogOptions{Follow: true, Tail: -1, Since: a.Since, Done: func() bool {
		c, err := e.Container(ctx, a.ID)
		return err != nil || c.State.Status != engine.StatusRunning
	}}, func(le monitor.LogEntry) error {
		return s.send(Reply{Kind: KindLog, Entry: &LogEntry{Time: le.Time, Stream: le.Stream, Data: le.Data}}, -1)
	})
}

// resize writes "1 H W" to the monitor's control FIFO, opened without
// following symlinks and only if it is a FIFO.
func (h *Helper) resize(a *ResizeArgs) error {
	fd, err := unix.Open(h.containerFile(a.ID, "ctl"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("resize %s: %v: %w", a.ID, err, errdefs.ErrUnavailable)
	}
	f := os.NewFile(uintptr(fd), "ctl")
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("resize %s: control file is not a FIFO: %w", a.ID, errdefs.ErrFailedPrecondition)
	}
	_, err = f.WriteString("1 " + strconv.Itoa(a.Height) + " " + strconv.Itoa(a.Width) + "\n")
	return err
}

func (h *Helper) network(ctx context.Context, fn func(*network.Manager) (any, error)) (any, error) {
	m, err := h.Engine.Networks()
	if err != nil {
		return nil, err
	}
	return fn(m)
}

func (h *Helper) volumes(fn func(*volume.Store) (any, error)) (any, error) {
	if h.Volumes == nil {
		return nil, fmt.Errorf("volumes are not available: %w", errdefs.ErrNotImplemented)
	}
	return fn(h.Volumes)
}

func view(n network.Network) NetworkView {
	return NetworkView{Network: n, Endpoints: n.Endpoints}
}
