package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	scheme         string // "", "htpasswd" or "token"
	user, password string
}

// WithHtpasswd makes the registry require HTTP basic authentication for
// every request (docker-registry's htpasswd access controller, realm
// "berth-test"), with one account: user and password, stored bcrypt-hashed.
// Anonymous requests get 401 with `WWW-Authenticate: Basic realm=...`.
func WithHtpasswd(user, password string) RegistryOption {
	return func(o *registryOptions) { o.scheme, o.user, o.password = "htpasswd", user, password }
}

// WithTokenAuth makes the registry use the distribution token flow
// (docker-registry's token access controller): requests without a valid
// bearer token get 401 with `WWW-Authenticate: Bearer
// realm="http://localhost:PORT/token",service="berth-test-registry",scope=...`.
// The realm is a token server that StartRegistry runs on 127.0.0.1 for the
// test, named "localhost" (from /etc/hosts, no DNS) because
// go-containerregistry refuses a realm that is a loopback or private IP
// literal other than the registry's own host:port. It issues ES256-signed JWTs (a self-signed certificate, the
// registry's rootcertbundle, in the JWS `x5c` header) granting every
// requested scope to user/password, given as HTTP basic credentials on a
// GET (answered with `{"token": ...}`) or as an OAuth2 password grant on a
// POST (answered with `{"access_token": ...}`); anything else gets 401.
func WithTokenAuth(user, password string) RegistryOption {
	return func(o *registryOptions) { o.scheme, o.user, o.password = "token", user, password }
}

// Token service and issuer names the token registry is configured with.
const (
	TokenService = "berth-test-registry"
	TokenIssuer  = "berth-test-issuer"
)

// authConfig writes the files an auth scheme needs into dir, starts the
// token server if any, and returns the registry's `auth:` section.
func authConfig(t testing.TB, o registryOptions, dir string) (string, *tokenServer, error) {
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	switch o.scheme {
	case "":
		return "", nil, nil
	case "htpasswd":
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		if err != nil {
			return "", nil, err
		}
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(o.user+":"+string(hash)+"\n"), 0o600); err != nil {
			return "", nil, err
		}
		return "auth:\n  htpasswd:\n    realm: berth-test\n    path: " + q(path) + "\n", nil, nil
	case "token":
		ts, certPEM, err := newTokenServer(o.user, o.password)
		if err != nil {
			return "", nil, err
		}
		t.Cleanup(ts.srv.Close)
		path := filepath.Join(dir, "token-root.pem")
		if err := os.WriteFile(path, certPEM, 0o600); err != nil {
			return "", nil, err
		}
		return "auth:\n  token:\n    realm: " + q(ts.realm()) + "\n    service: " + TokenService +
			"\n    issuer: " + TokenIssuer + "\n    rootcertbundle: " + q(path) + "\n", ts, nil
	}
	return "", nil, fmt.Errorf("unknown auth scheme %q", o.scheme)
}

// realm is the token endpoint's URL as the registry advertises it.
func (ts *tokenServer) realm() string {
	return fmt.Sprintf("http://localhost:%d/token", ts.srv.Listener.Addr().(*net.TCPAddr).Port)
}

// tokenServer is the token endpoint of a WithTokenAuth registry.
type tokenServer struct {
	srv            *httptest.Server
	user, password string
	key            *ecdsa.PrivateKey
	certDER        []byte
	issued         atomic.Int64
}

func newTokenServer(user, password string) (*tokenServer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth test token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ts := &tokenServer{user: user, password: password, key: key, certDER: der}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ts.serveToken)
	ts.srv = httptest.NewServer(mux)
	return ts, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serveToken answers a token request (distribution token spec: GET with
// basic credentials; OAuth2 spec: POST with grant_type=password).
func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	var user, password, service string
	var scopes []string
	field := "token"
	switch r.Method {
	case http.MethodGet:
		user, password, _ = r.BasicAuth()
		service = r.URL.Query().Get("service")
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "password" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		user, password, service = r.PostForm.Get("username"), r.PostForm.Get("password"), r.PostForm.Get("service")
		scopes = strings.Fields(r.PostForm.Get("scope"))
		field = "access_token"
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if service != TokenService {
		http.Error(w, `{"errors":[{"code":"DENIED","message":"unknown service"}]}`, http.StatusBadRequest)
		return
	}
	if user == "" || subtle.ConstantTimeCompare([]byte(user+"\x00"+password), []byte(ts.user+"\x00"+ts.password)) != 1 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test-token"`)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, s := range scopes {
		// type:name:actions; the name may hold a port's colon.
		typ, rest, ok1 := strings.Cut(s, ":")
		i := strings.LastIndexByte(rest, ':')
		if !ok1 || i < 0 {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"bad scope"}]}`, http.StatusBadRequest)
			return
		}
		grants = append(grants, access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
	}
	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	tok, err := ts.sign(map[string]any{
		"iss": TokenIssuer, "sub": user, "aud": service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Second).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": grants,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ts.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{field: tok, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

// sign makes a compact JWS (ES256) of claims whose header carries the
// signing certificate in x5c, as docker-registry 2.8 verifies it.
func (ts *tokenServer) sign(claims any) (string, error) {
	enc := func(v any) (string, error) {
		b, err := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b), err
	}
	h, err := enc(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}})
	if err != nil {
		return "", err
	}
	c, err := enc(claims)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(h + "." + c))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
