package image

import (
	"github.com/google/go-containerregistry/pkg/authn"
)

// Credential is one registry credential a client supplied for a single
// request (the Docker API's X-Registry-Auth header), in docker
// config.json's terms: Username and Password, or Auth
// (base64("user:password")), or an IdentityToken or RegistryToken. It is
// an authn.Keychain that answers with itself for every registry, so it
// can stand wherever PullOptions.Keychain or PushOptions.Keychain is
// asked for; the pull or push then uses it instead of the caller's
// config.json. It crosses process boundaries as JSON (the privsep
// request, the fetcher's request frame) but never prints: String and
// GoString hide it so a log line cannot leak it.
type Credential struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identityToken,omitempty"`
	RegistryToken string `json:"registryToken,omitempty"`
}

// Empty reports whether c carries nothing (anonymous access).
func (c Credential) Empty() bool { return c == Credential{} }

// Resolve implements authn.Keychain: c for any registry, anonymous when
// c is empty.
func (c Credential) Resolve(authn.Resource) (authn.Authenticator, error) {
	if c.Empty() {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password, Auth: c.Auth, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}), nil
}

// String hides the credential.
func (c Credential) String() string { return "[credential redacted]" }

// GoString hides the credential (%#v).
func (c Credential) GoString() string { return c.String() }

// CredentialOf is the Credential kc is, or nil when kc is not one (nil,
// config.json's keychain, a helper's): the part of a keychain that can be
// sent to another process.
func CredentialOf(kc authn.Keychain) *Credential {
	switch c := kc.(type) {
	case Credential:
		return &c
	case *Credential:
		return c
	}
	return nil
}
