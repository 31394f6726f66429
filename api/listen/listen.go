// Package listen opens the endpoints the API service serves on: unix
// sockets, loopback TCP, TCP with TLS client verification, and sockets
// passed by systemd (socket activation); Serve serves a handler on them
// with an idle timeout and an orderly stop.
package listen

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// DefaultSocket is where the service listens by default (rootful).
const DefaultSocket = "/run/berth/berth.sock"

// TLSOptions are dockerd's --tlsverify, --tlscacert, --tlscert and
// --tlskey: with Verify, clients must present a certificate signed by
// CACert.
type TLSOptions struct {
	Verify               bool
	CACert, Cert, Key    string
	WarnPlainLoopbackTCP func(addr string)
}

// Listen opens the endpoint host names: "unix:///path" (or a bare
// absolute path), "tcp://127.0.0.1:PORT", "fd://" (socket activation).
// Plain TCP is allowed only on loopback addresses; any other TCP address
// needs TLS client verification. A unix socket left by an earlier run is
// replaced; the socket gets mode 0660. Errors: errdefs.ErrInvalidArgument
// for a malformed or refused host.
func Listen(host string, t TLSOptions) ([]net.Listener, error) {
	if strings.HasPrefix(host, "/") {
		host = "unix://" + host
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("invalid host %q: %w", host, errdefs.ErrInvalidArgument)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if path == "" {
			path = u.Opaque
		}
		if path == "" {
			path = DefaultSocket
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
			return nil, err
		}
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		os.Chmod(path, 0o660)
		return []net.Listener{l}, nil
	case "tcp":
		h, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, fmt.Errorf("invalid host %q: %v: %w", host, err, errdefs.ErrInvalidArgument)
		}
		var cfg *tls.Config
		var m *TLSMaterial
		if t.Cert != "" || t.Verify {
			if m, err = LoadTLS(t); err != nil {
				return nil, err
			}
			if cfg, err = m.Config(); err != nil {
				return nil, err
			}
		}
		if !t.Verify {
			ip := net.ParseIP(h)
			if h != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return nil, fmt.Errorf("refusing to serve the API on %s without TLS client verification (--tlsverify): %w", u.Host, errdefs.ErrInvalidArgument)
			}
			if cfg == nil && t.WarnPlainLoopbackTCP != nil {
				t.WarnPlainLoopbackTCP(u.Host)
			}
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			return []net.Listener{&TLSListener{Listener: tls.NewListener(l, cfg), Raw: l.(*net.TCPListener), Material: m}}, nil
		}
		return []net.Listener{l}, nil
	case "fd":
		ls, err := ActivationListeners()
		if err != nil {
			return nil, err
		}
		if len(ls) == 0 {
			return nil, fmt.Errorf("fd:// given but no sockets were passed (LISTEN_FDS): %w", errdefs.ErrInvalidArgument)
		}
		return ls, nil
	}
	return nil, fmt.Errorf("invalid host %q: want unix://, tcp:// or fd://: %w", host, errdefs.ErrInvalidArgument)
}

// TLSMaterial is the PEM content of --tlscert, --tlskey and --tlscacert
// and whether client certificates are required: what a server needs to
// terminate TLS. The root service reads it from the files and hands it to
// the unprivileged API server, which never opens them itself.
type TLSMaterial struct {
	CertPEM, KeyPEM, CAPEM []byte
	Verify                 bool
}

// LoadTLS reads the files named by t. Errors: errdefs.ErrInvalidArgument
// when --tlscert/--tlskey (or --tlscacert with Verify) is missing; the
// read error of a file otherwise.
func LoadTLS(t TLSOptions) (*TLSMaterial, error) {
	if t.Cert == "" || t.Key == "" {
		return nil, fmt.Errorf("TLS needs --tlscert and --tlskey: %w", errdefs.ErrInvalidArgument)
	}
	if t.Verify && t.CACert == "" {
		return nil, fmt.Errorf("--tlsverify needs --tlscacert: %w", errdefs.ErrInvalidArgument)
	}
	m := &TLSMaterial{Verify: t.Verify}
	var err error
	if m.CertPEM, err = os.ReadFile(t.Cert); err != nil {
		return nil, err
	}
	if m.KeyPEM, err = os.ReadFile(t.Key); err != nil {
		return nil, err
	}
	if t.CACert != "" {
		if m.CAPEM, err = os.ReadFile(t.CACert); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Config is the server's tls.Config (TLS 1.2 or later; with Verify, a
// client certificate signed by the CA is required, as dockerd's
// --tlsverify). Errors: errdefs.ErrInvalidArgument for a key pair or CA
// that does not parse.
func (m *TLSMaterial) Config() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(m.CertPEM, m.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if m.Verify {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(m.CAPEM) {
			return nil, fmt.Errorf("no certificate in --tlscacert: %w", errdefs.ErrInvalidArgument)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// TLSListener is a TCP endpoint served with TLS: Listener terminates it
// in this process; Raw is the bare TCP socket and Material what a process
// given Raw needs to terminate TLS itself.
type TLSListener struct {
	net.Listener
	Raw      *net.TCPListener
	Material *TLSMaterial
}

// ActivationListeners returns the sockets systemd passed (LISTEN_PID is
// this process, LISTEN_FDS of them from fd 3 on), and unsets those
// variables so that children do not take them. None passed: nil.
func ActivationListeners() ([]net.Listener, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	var out []net.Listener
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("socket activation: fd %d: %w", fd, err)
		}
		out = append(out, l)
	}
	return out, nil
}
