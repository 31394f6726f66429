package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, both signed by the CA, as PEM files in dir.
func tlsFiles(t *testing.T, dir string) (ca, cert, key, clientCert, clientKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "berth test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP, name string) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return write(name+"-cert.pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	cert, key = leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, "server")
	clientCert, clientKey = leaf(3, x509.ExtKeyUsageClientAuth, nil, "client")
	return
}

// listeningInode is the socket inode of the TCP socket listening on
// 127.0.0.1:port.
func listeningInode(t *testing.T, port int) string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == local && f[3] == "0A" {
			return f[9]
		}
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
	return ""
}

// TestServiceTLS serves the API on TCP with TLS client verification from
// a root service: TLS is terminated by the unprivileged API server (it
// holds the listening socket, the root helper does not), the docker CLI
// with a client certificate works, and a client without one is refused.
func TestServiceTLS(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	dir := t.TempDir()
	ca, cert, key, ccert, ckey := tlsFiles(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := startService(t, e, "-H", "tcp://"+addr, "--tlsverify", "--tlscacert", ca, "--tlscert", cert, "--tlskey", key)
	s.requireSplit(t)
	if strings.Contains(s.log.String(), "WARNING") {
		t.Errorf("service warned:\n%s", s.log)
	}

	inode := listeningInode(t, port)
	if !socketInodes(t, s.serverPid(t))[inode] {
		t.Errorf("the API server process does not hold the TLS listening socket %s", inode)
	}
	if socketInodes(t, s.cmd.Process.Pid)[inode] {
		t.Errorf("the root helper still holds the TLS listening socket %s", inode)
	}

	cmd := exec.Command("/usr/bin/docker", "--tlsverify", "--tlscacert", ca, "--tlscert", ccert, "--tlskey", ckey,
		"-H", "tcp://"+addr, "version", "--format", "{{.Server.Os}}")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "linux" {
		t.Fatalf("docker version over TLS: %v\n%s", err, out)
	}

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caPEM)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err == nil {
		// TLS 1.3 reports a missing client certificate at the first read.
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /_ping HTTP/1.0\r\n\r\n")
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
}
