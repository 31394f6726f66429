package imageops

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthproject/berth/image"
	"github.com/containerd/errdefs"
	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/google/go-containerregistry/pkg/name"
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
// flow), as `docker login` does before it saves anything. The check runs
// in the unprivileged fetcher when the caller is root (image.VerifyLogin).
// Refused credentials give errdefs.ErrUnauthenticated; an unreachable
// registry errdefs.ErrUnavailable.
func (im *Images) VerifyLogin(ctx context.Context, server, username, password string) error {
	host := NormalizeServer(server)
	if host == DockerHubServer {
		host = name.DefaultRegistry
	}
	return image.VerifyLogin(ctx, host, username, password, image.RemoteOptions{Insecure: im.insecureHost(host)})
}

// credentialHelper is the helper program suffix ("pass" for
// docker-credential-pass) config.json names for key: its credHelpers
// entry, else its credsStore, else "" (the file itself holds the
// credential), as Docker chooses.
func credentialHelper(top map[string]json.RawMessage, key string) (string, error) {
	var helpers map[string]string
	var store string
	if raw, ok := top["credHelpers"]; ok {
		if err := json.Unmarshal(raw, &helpers); err != nil {
			return "", fmt.Errorf("config.json: credHelpers: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if raw, ok := top["credsStore"]; ok {
		if err := json.Unmarshal(raw, &store); err != nil {
			return "", fmt.Errorf("config.json: credsStore: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if h, ok := helpers[key]; ok {
		return h, nil
	}
	return store, nil
}

// helperProgram runs docker-credential-HELPER from PATH, in this
// process's context: the helper is the user's own trusted program.
func helperProgram(helper string) client.ProgramFunc {
	return client.NewShellProgramFunc("docker-credential-" + helper)
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

// SaveCredentials stores username and password for server as Docker
// does with the config file at path ("" for DockerConfigPath()): when the
// file names a credential helper for server (credHelpers, else
// credsStore), `docker-credential-HELPER store` gets them on its stdin
// and the file keeps an empty "auths" entry; otherwise the entry's "auth"
// is base64("user:password"). Other keys and entries are kept; the file
// is replaced atomically with mode 0600. A helper that fails (or is not
// on PATH) gives errdefs.ErrUnavailable with Docker's text ("error
// storing credentials - err: …") and nothing is written.
func SaveCredentials(path, server, username, password string) error {
	if path == "" {
		path = DockerConfigPath()
	}
	top, auths, err := readDockerConfig(path)
	if err != nil {
		return err
	}
	key := NormalizeServer(server)
	helper, err := credentialHelper(top, key)
	if err != nil {
		return err
	}
	if helper != "" {
		if err := client.Store(helperProgram(helper), &credentials.Credentials{ServerURL: key, Username: username, Secret: password}); err != nil {
			return fmt.Errorf("%s: %w", oneLine(err), errdefs.ErrUnavailable)
		}
		auths[key] = map[string]any{}
		return writeDockerConfig(path, top, auths)
	}
	auths[key] = map[string]any{"auth": base64.StdEncoding.EncodeToString([]byte(username + ":" + password))}
	return writeDockerConfig(path, top, auths)
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// RemoveCredentials deletes server's entry from the config file at path
// ("" for DockerConfigPath()) and, when the file names a credential
// helper for server, erases it from the helper (`docker-credential-HELPER
// erase`; a helper that does not hold it is not an error). It reports
// whether the file had an entry.
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
	helper, err := credentialHelper(top, key)
	if err != nil {
		return false, err
	}
	if helper != "" {
		if err := client.Erase(helperProgram(helper), key); err != nil && !strings.Contains(err.Error(), credentials.NewErrCredentialsNotFound().Error()) {
			return false, fmt.Errorf("%s: %w", oneLine(err), errdefs.ErrUnavailable)
		}
	}
	delete(auths, key)
	return true, writeDockerConfig(path, top, auths)
}
