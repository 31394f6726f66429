package testutil

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestRegistryAuthOptions: each auth option gives a registry that refuses
// anonymous access with its scheme's challenge, accepts the configured
// account (Push, then a read with go-containerregistry's client) and
// refuses a wrong password.
func TestRegistryAuthOptions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opt       RegistryOption
		challenge string
	}{
		{"htpasswd", WithHtpasswd("alice", "s3cret"), `Basic realm="berth-test"`},
		{"token", WithTokenAuth("bob", "hunter2"), `Bearer realm="http://localhost:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := StartRegistry(t, tc.opt)
			resp, err := http.Get(r.URL() + "/v2/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(got, tc.challenge) {
				t.Fatalf("anonymous GET /v2/: %s, challenge %q, want 401 %q…", resp.Status, got, tc.challenge)
			}
			ref, _ := r.Push(t, "img:1", LayeredImage(t, [][]TarEntry{{{Name: "f", Content: []byte("x")}}}, v1.Config{}))
			tag, _ := name.NewTag(ref, name.Insecure)
			if _, err := remote.Head(tag, remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password})); err != nil {
				t.Fatalf("read with the account: %v", err)
			}
			var terr *transport.Error
			if _, err := remote.Head(tag, remote.WithAuth(&authn.Basic{Username: r.Username, Password: "wrong"})); !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
				t.Fatalf("read with a wrong password: %v, want 401", err)
			}
			if _, err := remote.Head(tag); err == nil {
				t.Fatal("anonymous read succeeded")
			}
			if tc.name == "token" && r.TokensIssued() == 0 {
				t.Fatal("token server issued no token")
			}
		})
	}
}
