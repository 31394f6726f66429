package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// apiGet is GET path on the service: the status and the body.
func apiGet(t *testing.T, s *service, path string) (int, string) {
	t.Helper()
	resp, err := s.client().Get("http://berth" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// apiPost is POST path with a JSON body on the service.
func apiPost(t *testing.T, s *service, path, body string) (int, string) {
	t.Helper()
	resp, err := s.client().Post("http://berth"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestServiceListFilters: GET /containers/json and /images/json apply
// Docker's filters through the service, refuse unknown keys and bad
// values with 400 as Docker does, and the docker CLI's ps and images
// filters work against it.
func TestServiceListFilters(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	repo, _, _ := strings.Cut(ref, "/busybox")
	repo += "/busybox"
	e.ok("tag", ref, repo+":v2")
	e.ok("volume", "create", "fvol")
	e.ok("run", "-d", "--name", "srv", "-p", "127.0.0.1::80", "-v", "fvol:/data", ref, "sleep", "300")
	e.ok("create", "--name", "idle", "--network", "none", ref)
	svc := startService(t, e)
	cfg := t.TempDir()

	names := func(filters string) []string {
		t.Helper()
		code, body := apiGet(t, svc, "/containers/json?all=1&filters="+url.QueryEscape(filters))
		if code != http.StatusOK {
			t.Fatalf("filters %s: %d %s", filters, code, body)
		}
		var list []struct{ Names []string }
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, strings.TrimPrefix(c.Names[0], "/"))
		}
		slices.Sort(out)
		return out
	}
	hostPort := strings.TrimSpace(e.ok("port", "srv", "80"))
	_, hostPort, _ = strings.Cut(hostPort, ":")
	for filters, want := range map[string][]string{
		`{"name":["sr"]}`:                        {"srv"},
		`{"name":["^/?idle$"]}`:                  {"idle"},
		`{"network":["none"]}`:                   {"idle"},
		`{"network":["bridge"]}`:                 {"srv"},
		`{"volume":["fvol"]}`:                    {"srv"},
		`{"volume":["/data"]}`:                   {"srv"},
		`{"publish":["` + hostPort + `"]}`:       {"srv"},
		`{"publish":["` + hostPort + `/udp"]}`:   nil,
		`{"expose":["80/tcp"]}`:                  {"srv"},
		`{"ancestor":["` + ref + `"]}`:           {"idle", "srv"},
		`{"ancestor":["` + repo + `:v2"]}`:       {"idle", "srv"}, // the same image ID
		`{"before":["idle"]}`:                    {"srv"},
		`{"since":["srv"]}`:                      {"idle"},
		`{"health":["none"]}`:                    {"idle", "srv"},
		`{"health":["healthy"]}`:                 nil,
		`{"status":["created"]}`:                 {"idle"},
		`{"label":["nosuch"]}`:                   nil,
		`{"status":["running"],"name":["idle"]}`: nil,
	} {
		if got := names(filters); !slices.Equal(got, want) {
			t.Errorf("containers %s: %q, want %q", filters, got, want)
		}
	}

	tags := func(filters string) []string {
		t.Helper()
		code, body := apiGet(t, svc, "/images/json?filters="+url.QueryEscape(filters))
		if code != http.StatusOK {
			t.Fatalf("filters %s: %d %s", filters, code, body)
		}
		var list []struct{ RepoTags []string }
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, img := range list {
			out = append(out, img.RepoTags...)
		}
		slices.Sort(out)
		return out
	}
	for filters, want := range map[string][]string{
		`{"reference":["` + repo + `"]}`:    {ref, repo + ":v2"},
		`{"reference":["` + repo + `:v2"]}`: {repo + ":v2"},
		`{"reference":["*/nosuch"]}`:        nil,
		`{"dangling":["false"]}`:            {ref, repo + ":v2"},
		`{"dangling":["true"]}`:             nil,
	} {
		if got := tags(filters); !slices.Equal(got, want) {
			t.Errorf("images %s: %q, want %q", filters, got, want)
		}
	}

	for _, c := range []struct{ path, filters, want string }{
		{"/containers/json", `{"bogus":["1"]}`, "invalid filter 'bogus'"},
		{"/containers/json", `{"status":["bogus"]}`, "invalid filter 'status=bogus'"},
		{"/containers/json", `{"exited":["x"]}`, "invalid filter 'exited=x'"},
		{"/containers/json", `{"health":["maybe"]}`, "Unrecognised filter value for health: maybe"},
		{"/images/json", `{"bogus":["1"]}`, "invalid filter 'bogus'"},
		{"/images/json", `{"dangling":["maybe"]}`, "invalid filter 'dangling=maybe'"},
	} {
		code, body := apiGet(t, svc, c.path+"?filters="+url.QueryEscape(c.filters))
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s, want 400 %q", c.path, c.filters, code, body, c.want)
		}
	}
	if code, body := apiGet(t, svc, "/containers/json?filters="+url.QueryEscape(`{"before":["nosuch"]}`)); code != http.StatusNotFound {
		t.Errorf("before an unknown container: %d %s", code, body)
	}

	// The docker CLI through the service.
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"ps", "-a", "--filter", "name=sr", "--format", "{{.Names}}"}, 0, "srv\n"},
		{[]string{"ps", "-a", "--filter", "network=none", "--format", "{{.Names}}"}, 0, "idle\n"},
		{[]string{"ps", "--filter", "publish=" + hostPort, "--format", "{{.Names}}"}, 0, "srv\n"},
		{[]string{"images", "--filter", "reference=" + repo, "--format", "{{.Tag}}"}, 0, "latest\nv2\n"},
		{[]string{"ps", "--filter", "bogus=1"}, 1, "invalid filter 'bogus'"},
		{[]string{"images", "--filter", "dangling=maybe"}, 1, "invalid filter 'dangling=maybe'"},
	} {
		r := svc.docker(t, cfg, c.args...)
		got := r.stdout
		if c.code != 0 {
			got = r.stderr
		}
		if r.code != c.code || (c.code == 0 && sortedLines(got) != c.out) || (c.code != 0 && !strings.Contains(got, c.out)) {
			t.Errorf("docker %v: exit %d, out %q err %q; want %d %q", c.args, r.code, r.stdout, r.stderr, c.code, c.out)
		}
	}
	// berth's own images shares the reference filter.
	if out := e.ok("images", "--filter", "reference="+repo, "--format", "{{.Tag}}"); sortedLines(out) != "latest\nv2\n" {
		t.Errorf("berth images --filter reference=%s: %q", repo, out)
	}
	e.wantFail(1, "invalid filter 'dangling=maybe'", "images", "--filter", "dangling=maybe")
}

// sortedLines is s's lines sorted, each ending in "\n".
func sortedLines(s string) string {
	lines := strings.Fields(s)
	slices.Sort(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestServiceCreateValidation: POST /containers/create refuses, with
// Docker's 400 and message, a Mounts bind of a missing source and
// negative resource limits; a missing HostConfig.Binds source is made.
// Through the privilege split: the create request carries the Binds
// sources the helper may create.
func TestServiceCreateValidation(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	svc := startService(t, e)
	svc.requireSplit(t)
	missing := filepath.Join(t.TempDir(), "nope")
	for _, c := range []struct{ hostConfig, want string }{
		{`{"Mounts":[{"Type":"bind","Source":"` + missing + `","Target":"/x"}]}`, `invalid mount config for type \"bind\": bind source path does not exist: ` + missing},
		{`{"Memory":-5}`, "Minimum memory limit allowed is 6MB"},
		{`{"Memory":1024}`, "Minimum memory limit allowed is 6MB"},
		{`{"NanoCPUs":-1}`, "range of CPUs is from 0.01 to"},
		{`{"Memory":10000000,"MemorySwap":5000000}`, "Minimum memoryswap limit should be larger than memory limit"},
		{`{"Runtime":"bogus"}`, "unknown or invalid runtime name: bogus"},
		{`{"Runtime":"/bin/sh"}`, "unknown or invalid runtime name: /bin/sh"},
	} {
		code, body := apiPost(t, svc, "/containers/create", `{"Image":"`+ref+`","HostConfig":`+c.hostConfig+`}`)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("create with %s: %d %s, want 400 %q", c.hostConfig, code, body, c.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatalf("a refused create made %s", missing)
	}
	code, body := apiPost(t, svc, "/containers/create?name=binds", `{"Image":"`+ref+`","HostConfig":{"Binds":["`+missing+`:/x"]}}`)
	if code != http.StatusCreated {
		t.Fatalf("create with a missing Binds source: %d %s", code, body)
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Fatalf("Binds source not made: %v", err)
	}
}
