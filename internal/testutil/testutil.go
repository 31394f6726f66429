// Package testutil holds fixtures for Berth's integration tests and
// benchmarks: a real registry process (Debian's docker-registry, the
// distribution v2 server), images built from Debian's static busybox or from
// in-memory tar entries, and small gates such as RequiresRoot.
//
// Everything here is real: no fake registry, no mocked HTTP. Fixtures that
// need a host binary skip the test with the apt-get command that installs it.
// All network traffic stays on 127.0.0.1.
package testutil

import (
	"net"
	"os"
	"testing"
)

// RequiresRoot skips t unless the effective uid is 0.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("test requires root (euid 0)")
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// binds port 0, reads the port the kernel chose and closes the listener.
// Another process may take the port before the caller binds it, so callers
// that start servers should retry on "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: find free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testutil: find free port: %v", err)
	}
	return port
}
