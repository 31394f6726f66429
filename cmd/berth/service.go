package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/internal/unpriv"

	"github.com/berthproject/berth/api"
	"github.com/berthproject/berth/api/listen"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/privsep"
	"github.com/berthproject/berth/privsep/helper"
	"github.com/berthproject/berth/volume"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// berthVersion is what the API service reports as its version.
var berthVersion = "0.1.0-dev"

// addSystemService puts `service` under the `system` group, making the
// group if no other file has.
func addSystemService(root *cobra.Command, g *globals) {
	cli.Group(root, "system", "Manage Berth").AddCommand(newSystemServiceCmd(g))
	root.AddCommand(newServiceServerCmd())
}

// newSystemServiceCmd is `berth system service [URI]`: the Docker Engine
// API over this engine, on a unix socket (default /run/berth/berth.sock),
// loopback TCP, TCP with TLS client verification, or sockets passed by
// systemd (LISTEN_FDS). With --timeout N it exits after N idle seconds.
func newSystemServiceCmd(g *globals) *cobra.Command {
	var hosts []string
	var timeout int
	var t listen.TLSOptions
	cmd := &cobra.Command{
		Use:   "service [OPTIONS] [URI]",
		Short: "Serve the Docker Engine API",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Descriptors this process inherited (its launcher's strays)
			// must not reach the API server or the runtimes it starts.
			if err := cloexecInherited(); err != nil {
				return err
			}
			hosts = append(hosts, args...)
			t.WarnPlainLoopbackTCP = func(addr string) {
				fmt.Fprintf(os.Stderr, "WARNING: serving the API on tcp://%s without TLS: any local user can control the engine\n", addr)
			}
			var listeners []net.Listener
			closeAll := func() {
				for _, l := range listeners {
					l.Close()
				}
			}
			activated, err := listen.ActivationListeners()
			if err != nil {
				return err
			}
			listeners = append(listeners, activated...)
			if len(hosts) == 0 && len(listeners) == 0 {
				hosts = []string{"unix://" + listen.DefaultSocket}
			}
			for _, h := range hosts {
				ls, err := listen.Listen(h, t)
				if err != nil {
					closeAll()
					return err
				}
				listeners = append(listeners, ls...)
			}
			defer closeAll()
			if os.Geteuid() == 0 && os.Getenv("BERTH_SERVICE_NO_PRIVSEP") == "" {
				files, tlsOf, err := listenerFiles(listeners)
				if err != nil {
					return err
				}
				// Once the API server has the sockets, this process keeps
				// none of them open; it removes the unix socket files at exit.
				for _, l := range listeners {
					if ul, ok := l.(*net.UnixListener); ok {
						ul.SetUnlinkOnClose(false)
						defer os.Remove(ul.Addr().String())
					}
				}
				return serveSplit(ctx, g, files, tlsOf, timeout, closeAll)
			}
			e, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer e.Close()
			vols, err := volume.Open(e.Options().Root)
			if err != nil {
				return err
			}
			srv := api.New(api.Options{
				Backend: e, Version: berthVersion, Events: events.Open(e.Options().Root),
				Volumes: vols, IdleTimeout: time.Duration(timeout) * time.Second, Debug: os.Getenv("BERTH_API_DEBUG") != "",
			})
			return srv.Serve(ctx, listeners...)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&hosts, "host", "H", nil, "Endpoint to serve: unix:///path, tcp://127.0.0.1:PORT, fd:// (repeatable)")
	f.IntVarP(&timeout, "timeout", "t", 0, "Exit after this many idle seconds (0: never)")
	f.BoolVar(&t.Verify, "tlsverify", false, "Require TLS client certificates signed by --tlscacert")
	f.StringVar(&t.CACert, "tlscacert", "", "CA certificate that client certificates must be signed by")
	f.StringVar(&t.Cert, "tlscert", "", "TLS certificate of the server")
	f.StringVar(&t.Key, "tlskey", "", "TLS key of the server")
	return cmd
}

// cloexecInherited marks every descriptor from 3 on close-on-exec, so
// that no child (the API server, a runtime, a monitor) inherits one this
// process was started with; what a child gets is passed explicitly
// (exec.Cmd.ExtraFiles: the control socket, the listeners, the TLS
// hand-off pipe). Socket-activated listeners are unaffected: they are
// used in this process and passed on as duplicates.
func cloexecInherited() error {
	err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	if err != unix.ENOSYS && err != unix.EINVAL {
		return fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
	}
	for _, ent := range ents {
		if fd, err := strconv.Atoi(ent.Name()); err == nil && fd >= 3 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
	return nil
}

// serviceUID is the uid and gid the API server runs as when the service
// is started as root (Debian's nobody/nogroup).
const serviceUID = 65534

// listenerFiles duplicates the listeners' descriptors for a child. A TLS
// endpoint passes its bare TCP socket; tlsOf maps its index to the key
// material the child needs to terminate TLS itself.
func listenerFiles(ls []net.Listener) (files []*os.File, tlsOf map[int]*listen.TLSMaterial, err error) {
	tlsOf = map[int]*listen.TLSMaterial{}
	for i, l := range ls {
		if tl, ok := l.(*listen.TLSListener); ok {
			l, tlsOf[i] = tl.Raw, tl.Material
		}
		fl, ok := l.(interface{ File() (*os.File, error) })
		if !ok {
			closeFiles(files)
			return nil, nil, fmt.Errorf("endpoint %s cannot be passed to the API server process", l.Addr())
		}
		f, err := fl.File()
		if err != nil {
			closeFiles(files)
			return nil, nil, err
		}
		files = append(files, f)
	}
	return files, tlsOf, nil
}

// tlsHandoff is what the root service writes to the API server on a pipe
// (the fd after the listeners): which listeners are TLS endpoints and the
// PEM material to terminate them with.
type tlsHandoff struct {
	Listeners map[int]*listen.TLSMaterial
}

// maxTLSHandoff bounds what the API server reads from that pipe.
const maxTLSHandoff = 1 << 20

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// serveSplit is the root service: the API server runs as a child (the
// hidden `service-server` verb) with uid/gid serviceUID, no groups, every
// capability set empty and no_new_privs, on the listeners bound here; this
// process stays as the privileged helper and serves the child's requests
// (package privsep/helper) until the child exits.
func serveSplit(ctx context.Context, g *globals, listeners []*os.File, tlsOf map[int]*listen.TLSMaterial, timeout int, closeListeners func()) error {
	defer closeFiles(listeners)
	e, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer e.Close()
	vols, err := volume.Open(e.Options().Root)
	if err != nil {
		return err
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	mine, theirs := os.NewFile(uintptr(sp[0]), "privsep"), os.NewFile(uintptr(sp[1]), "privsep")
	nc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return err
	}
	ctrl := nc.(*net.UnixConn)
	defer ctrl.Close()

	cmd := exec.Command("/proc/self/exe", "service-server", "--listeners", strconv.Itoa(len(listeners)), "--timeout", strconv.Itoa(timeout))
	cmd.ExtraFiles = append([]*os.File{theirs}, listeners...)
	// The TLS material goes over a pipe, never in argv or the environment.
	hr, hw, err := os.Pipe()
	if err != nil {
		theirs.Close()
		return err
	}
	defer hr.Close()
	cmd.ExtraFiles = append(cmd.ExtraFiles, hr)
	handoff, _ := json.Marshal(tlsHandoff{Listeners: tlsOf})
	if len(handoff) > maxTLSHandoff {
		hw.Close()
		theirs.Close()
		return fmt.Errorf("TLS certificate and key files are larger than %d bytes", maxTLSHandoff)
	}
	go func() { hw.Write(handoff); hw.Close() }()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	if v := os.Getenv("BERTH_API_DEBUG"); v != "" {
		cmd.Env = append(cmd.Env, "BERTH_API_DEBUG="+v)
	}
	exited, err := unpriv.Start(cmd, serviceUID, serviceUID)
	theirs.Close()
	if err != nil {
		return fmt.Errorf("start the API server process: %w", err)
	}
	closeFiles(listeners)
	listeners = nil
	closeListeners()

	hctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	h := &helper.Helper{Engine: e, Volumes: vols, Events: events.Open(e.Options().Root)}
	served := make(chan error, 1)
	go func() { served <- h.Serve(hctx, ctrl) }()

	var werr error
	select {
	case werr = <-exited:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case werr = <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			werr = <-exited
		}
	}
	stop()
	<-served
	var ee *exec.ExitError
	if errors.As(werr, &ee) && ctx.Err() != nil {
		return nil
	}
	if werr != nil {
		return fmt.Errorf("API server process: %w", werr)
	}
	return nil
}

// newServiceServerCmd is the hidden `berth service-server`: the
// unprivileged half of a root service. It serves the Docker Engine API on
// the listeners passed as fds 4.. with a privsep.Client (fd 3) as its
// backend. It refuses to run as root or with any capability.
func newServiceServerCmd() *cobra.Command {
	var n, timeout int
	cmd := &cobra.Command{
		Use:    "service-server",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() == 0 || os.Getuid() == 0 {
				return errors.New("service-server runs only unprivileged, started by `berth system service`")
			}
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				return err
			}
			f := os.NewFile(3, "privsep")
			nc, err := net.FileConn(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("privsep socket: %w", err)
			}
			ctrl, ok := nc.(*net.UnixConn)
			if !ok {
				return errors.New("fd 3 is not a unix socket")
			}
			handoff, err := readTLSHandoff(os.NewFile(uintptr(4+n), "tls"))
			if err != nil {
				return err
			}
			var listeners []net.Listener
			for i := 0; i < n; i++ {
				lf := os.NewFile(uintptr(4+i), "listener")
				l, err := net.FileListener(lf)
				lf.Close()
				if err != nil {
					return fmt.Errorf("listener %d: %w", i, err)
				}
				if ul, ok := l.(*net.UnixListener); ok {
					ul.SetUnlinkOnClose(false) // the helper owns the socket file
				}
				if m := handoff.Listeners[i]; m != nil {
					cfg, err := m.Config()
					if err != nil {
						return err
					}
					l = tls.NewListener(l, cfg)
				}
				listeners = append(listeners, l)
			}
			ctx := cmd.Context()
			c, err := privsep.NewClient(ctx, ctrl)
			if err != nil {
				return err
			}
			srv := api.New(api.Options{
				Backend: c, Networks: c.NetworkManager(), Volumes: c.VolumeStore(), Events: c.EventLog(), Host: c.Host(),
				Version: berthVersion, IdleTimeout: time.Duration(timeout) * time.Second, Debug: os.Getenv("BERTH_API_DEBUG") != "",
			})
			return srv.Serve(ctx, listeners...)
		},
	}
	cmd.Flags().IntVar(&n, "listeners", 0, "number of listening sockets passed from fd 4 on")
	cmd.Flags().IntVar(&timeout, "timeout", 0, "exit after this many idle seconds")
	return cmd
}

// readTLSHandoff reads the root service's tlsHandoff from f (bounded by
// maxTLSHandoff) and closes it.
func readTLSHandoff(f *os.File) (tlsHandoff, error) {
	defer f.Close()
	var h tlsHandoff
	data, err := io.ReadAll(io.LimitReader(f, maxTLSHandoff+1))
	if err != nil {
		return h, fmt.Errorf("TLS hand-off: %w", err)
	}
	if len(data) > maxTLSHandoff {
		return h, errors.New("TLS hand-off too large")
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("TLS hand-off: %w", err)
	}
	return h, nil
}

var _ api.Backend = (*privsep.Client)(nil)
