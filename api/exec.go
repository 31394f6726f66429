package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthproject/berth/api/internal/wire"
	"github.com/berthproject/berth/api/stream"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/common"
	containertypes "github.com/moby/moby/api/types/container"
)

// execerOf is the backend's own Execer (the privilege-separated client),
// else engine.Exec in this process, else nil (exec answers 501).
func execerOf(b Backend) stream.Execer {
	if ex, ok := b.(stream.Execer); ok {
		return ex
	}
	if e, ok := b.(stream.EngineExec); ok {
		return stream.NewLocal(e)
	}
	return nil
}

// createExec is POST /containers/{id}/exec: the body is Docker's
// ExecCreateRequest; the answer 201 {"Id"}. The instance lives in this
// server's memory (as in dockerd); 404 for an unknown container, 409 when
// it is not running or is paused, 400 without a command.
func (s *Server) createExec(w http.ResponseWriter, r *http.Request) {
	var req containertypes.ExecCreateRequest
	if err := wire.DecodeOptional(r, &req); err != nil {
		wire.Error(w, err)
		return
	}
	if len(req.Cmd) == 0 {
		wire.Error(w, wire.Invalid("No exec command specified"))
		return
	}
	for _, kv := range req.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" || strings.ContainsRune(kv, 0) {
			wire.Error(w, wire.Invalid("invalid environment variable: "+kv))
			return
		}
	}
	if s.execer == nil {
		wire.Error(w, wire.Err(errdefs.ErrNotImplemented, "exec is not available with this backend"))
		return
	}
	c, ok := s.container(w, r)
	if !ok {
		return
	}
	switch {
	case c.State.Paused:
		wire.Error(w, wire.Err(errdefs.ErrConflict, "container "+c.ID+" is paused, unpause the container before exec"))
		return
	case c.State.Status != engine.StatusRunning:
		wire.Error(w, wire.Err(errdefs.ErrConflict, "container "+c.ID+" is not running"))
		return
	}
	x, err := s.execs.Add(stream.Config{
		ContainerID: c.ID, Cmd: req.Cmd, Env: req.Env, User: req.User, WorkingDir: req.WorkingDir,
		Tty: req.Tty, Privileged: req.Privileged, ConsoleSize: req.ConsoleSize,
		AttachStdin: req.AttachStdin, AttachStdout: req.AttachStdout, AttachStderr: req.AttachStderr,
	})
	if err != nil {
		wire.Error(w, err)
		return
	}
	s.recordExec(x, "exec_create", nil)
	wire.JSON(w, http.StatusCreated, common.IDResponse{ID: x.ID})
}

// recordExec appends Docker's exec event: "ACTION: CMD ARGS" on the
// container, with the exec's ID (and more attributes).
func (s *Server) recordExec(x *stream.Exec, action string, attrs map[string]string) {
	cmd := strings.Join(strings.Fields(strings.Join(x.Config.Cmd, " ")), " ")
	if len(cmd) > 150 {
		cmd = cmd[:150]
	}
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["execID"] = x.ID
	action += ": " + strings.ToValidUTF8(cmd, "")
	if c, err := s.b.Container(context.Background(), x.Config.ContainerID); err == nil {
		s.recordContainer(c, action, attrs)
		return
	}
	s.record("container", action, x.Config.ContainerID, attrs)
}

// startExec is POST /exec/{id}/start with Docker's ExecStartRequest.
// Detached: 200 once the process runs. Attached: the connection is
// hijacked (101 UPGRADED when the client asks for an upgrade, else 200)
// and carries the process's streams, multiplexed without a TTY, until it
// exits; a start failure is written on the stream, as dockerd does, and
// its exit code (126, or 127 for a missing command) recorded.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.Get(r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	var req containertypes.ExecStartRequest
	if err := wire.DecodeOptional(r, &req); err != nil {
		wire.Error(w, err)
		return
	}
	if err := x.Begin(); err != nil {
		wire.Error(w, err)
		return
	}
	if req.ConsoleSize != nil && x.Config.ConsoleSize == nil {
		x.Resize(int(req.ConsoleSize[0]), int(req.ConsoleSize[1]))
	}
	s.recordExec(x, "exec_start", nil)
	ctx := context.WithoutCancel(r.Context())
	if req.Detach {
		if err := x.RunDetached(ctx, s.execer); err != nil {
			s.recordExec(x, "exec_die", map[string]string{"exitCode": strconv.Itoa(stream.StartExitCode(err))})
			if errors.Is(err, runtime.ErrCommandNotFound) || errors.Is(err, runtime.ErrCommandNotExecutable) {
				err = wire.Invalid(wire.Message(err)) // dockerd: a bad command is the request's fault
			}
			wire.Error(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	tty := x.Config.Tty
	conn, in, err := stream.Hijack(w, r, stream.ContentType(tty), MaxVersion)
	if err != nil {
		s.opts.Logf("api: exec %s: hijack: %v", x.ID, err)
		return
	}
	defer conn.Close()
	if err := x.RunAttached(ctx, s.execer, conn, in); err != nil {
		stream.NewMux(conn, !tty, nil).Stream(stream.Stdout).Write([]byte(wire.Message(err) + "\r\n"))
	}
	code := 0
	if c := x.Inspect().ExitCode; c != nil {
		code = *c
	}
	s.recordExec(x, "exec_die", map[string]string{"exitCode": strconv.Itoa(code)})
	stream.CloseWrite(conn)
}

// resizeExec is POST /exec/{id}/resize?h=H&w=W: the TTY of the exec's
// process (remembered until it runs).
func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.Get(r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	h, wd, err := wire.TermSize(r)
	if err != nil {
		wire.Error(w, err)
		return
	}
	if err := x.Resize(int(h), int(wd)); err != nil {
		wire.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// inspectExec is GET /exec/{id}/json.
func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) {
	x, err := s.execs.Get(r.PathValue("id"))
	if err != nil {
		wire.Error(w, err)
		return
	}
	wire.JSON(w, http.StatusOK, x.Inspect())
}
