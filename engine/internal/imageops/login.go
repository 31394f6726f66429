package imageops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// DockerHubServer is the key Docker's config.json uses for Docker Hub.
const DockerHubServer = "https://index.docker.io/v1/"

// NormalizeServer turns a `docker login` server argument into the key
// Docker's config.json uses: DockerHubServer for "" and Docker Hub's
// aliases, else the host[:port] without scheme or trailing path.
func NormalizeServer(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s = strings.TrimSuffix(s, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHubServer
	}
	return s
}

// VerifyLogin checks username and password against server's /v2/
// endpoint with the registry's own scheme (HTTP basic, or the bearer token
// flow), as `docker login` does before it saves anything. Refused
// credentials give errdefs.ErrUnauthenticated; an unreachable registry
// errdefs.ErrUnavailable.
func (im *Images) VerifyLogin(ctx context.Context, server, username, password string) error {
	host := NormalizeServer(server)
	if host == DockerHubServer {
		host = name.DefaultRegistry
	}
	var opts []name.Option
	if im.insecureHost(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return fmt.Errorf("invalid registry %q: %v: %w", server, err, errdefs.ErrInvalidArgument)
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: username, Password: password})
	rt, err := transport.NewWithContext(ctx, reg, auth, remote.DefaultTransport, nil)
	if err != nil {
		return loginError(host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(host, err)
	}
	return nil
}

func loginError(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden {
			return fmt.Errorf("login to %s failed: unauthorized: incorrect username or password: %w", host, errdefs.ErrUnauthenticated)
		}
		return fmt.Errorf("login to %s failed: %s: %w", host, registryMessage(terr), errdefs.ErrUnknown)
	}
	msg := oneLine(err)
	if strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "UNAUTHORIZED") {
		return fmt.Errorf("login to %s failed: unauthorized: incorrect username or password: %w", host, errdefs.ErrUnauthenticated)
	}
	return fmt.Errorf("login to %s failed: %s: %w", host, msg, errdefs.ErrUnavailable)
}

// DockerConfigPath is the credentials file Docker and Berth share:
// $DOCKER_CONFIG/config.json, else ~/.docker/config.json.
func DockerConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// readDockerConfig reads the config file as raw top-level keys, so that
// keys Berth does not know survive a rewrite. A missing file is empty.
func readDockerConfig(path string) (map[string]json.RawMessage, map[string]map[string]any, error) {
	top := map[string]json.RawMessage{}
	auths := map[string]map[string]any{}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return top, auths, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return top, auths, nil
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("%s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if raw, ok := top["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return nil, nil, fmt.Errorf("%s: auths: %v: %w", path, err, errdefs.ErrInvalidArgument)
		}
	}
	return top, auths, nil
}

func writeDockerConfig(path string, top map[string]json.RawMessage, auths map[string]map[string]any) error {
	raw, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = raw
	data, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.json-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SaveCredentials stores username and password for server in Docker's
// config.json format at path ("" for DockerConfigPath()): an "auths"
// entry whose "auth" is base64("user:password"). Other keys and entries
// are kept; the file is replaced atomically with mode 0600.
func SaveCredentials(path, server, username, password string) error {
	if path == "" {
		path = DockerConfigPath()
	}
	top, auths, err := readDockerConfig(path)
	if err != nil {
		return err
	}
	auths[NormalizeServer(server)] = map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte(username + ":" + password))}
	return writeDockerConfig(path, top, auths)
}

// RemoveCredentials deletes server's entry from the config file at path
// ("" for DockerConfigPath()). It reports whether there was one.
func RemoveCredentials(path, server string) (bool, error) {
	if path == "" {
		path = DockerConfigPath()
	}
	top, auths, err := readDockerConfig(path)
	if err != nil {
		return false, err
	}
	key := NormalizeServer(server)
	if _, ok := auths[key]; !ok {
		return false, nil
	}
	delete(auths, key)
	return true, writeDockerConfig(path, top, auths)
}
