package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berthproject/berth/internal/testutil"
)

// TestServiceImageOps drives the image and container-filesystem routes
// of Berth issue 6 with the docker CLI through the privilege-separated
// service: history, diff, export, commit, save/load, import, prune,
// system prune, a missing pull, login and push with the CLI's own
// credentials (X-Registry-Auth; the service's config.json has none).
func TestServiceImageOps(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svcHome := t.TempDir()
	svc := startServiceWith(t, e, func(c *exec.Cmd) {
		c.Env = append(os.Environ(), "HOME="+svcHome, "DOCKER_CONFIG="+filepath.Join(svcHome, "docker"))
	})
	svc.requireSplit(t)
	cfg := t.TempDir()
	must := func(args ...string) string {
		t.Helper()
		r := svc.docker(t, cfg, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	mustIn := func(stdin string, args ...string) string {
		t.Helper()
		r := svc.dockerIn(t, cfg, stdin, args...)
		if r.code != 0 {
			t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	t.Cleanup(func() { svc.dockerQuiet(cfg, "rm", "-f", "dc") })
	must("pull", ref)
	id := strings.TrimSpace(must("image", "inspect", "-f", "{{.Id}}", ref))

	// history: newest step first, carrying the image's ID.
	hist := strings.Split(strings.TrimSpace(must("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}", ref)), "\n")
	if len(hist) == 0 || !strings.HasPrefix(hist[0], id+"|") {
		t.Errorf("docker history: %q (image %s)", hist, id)
	}
	if r := svc.docker(t, cfg, "history", "nosuchimage:1"); r.code != 1 || !strings.Contains(r.stderr, "No such image") {
		t.Errorf("history of a missing image: %d %q", r.code, r.stderr)
	}

	// diff: the file added and the one deleted.
	must("run", "--name", "dc", ref, "sh", "-c", "echo hi > /newfile; rm /bin/ls")
	diff := must("diff", "dc")
	for _, want := range []string{"A /newfile", "D /bin/ls"} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(diff) {
			t.Errorf("docker diff lacks %q:\n%s", want, diff)
		}
	}

	// export | tar t: the container's files, the new one included.
	exported := filepath.Join(t.TempDir(), "dc.tar")
	must("export", "-o", exported, "dc")
	list, err := exec.Command("tar", "tf", exported).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\.?/?newfile$`).Match(list) || !regexp.MustCompile(`(?m)^\.?/?bin/sh$`).Match(list) {
		t.Errorf("tar t of the export: %v\n%.2000s", err, list)
	}
	if r := svc.docker(t, cfg, "export", "-o", exported+".2", "nosuchcontainer"); r.code != 1 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("export of a missing container: %d %q", r.code, r.stderr)
	}

	// commit with a change, then run the committed image.
	must("commit", "-c", `CMD ["cat", "/newfile"]`, "-m", "snapshot", "-a", "tester", "dc", "committed:v1")
	if out := must("run", "--rm", "committed:v1"); out != "hi\n" {
		t.Errorf("run of the committed image: %q", out)
	}
	if out := must("image", "inspect", "-f", "{{.Comment}}|{{.Author}}", "committed:v1"); out != "snapshot|tester\n" {
		t.Errorf("committed image's comment and author: %q", out)
	}

	// save | load round trip.
	saved := filepath.Join(t.TempDir(), "saved.tar")
	must("save", "-o", saved, "committed:v1")
	committedID := strings.TrimSpace(must("image", "inspect", "-f", "{{.Id}}", "committed:v1"))
	must("rmi", "committed:v1")
	data, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	if out := mustIn(string(data), "load"); !strings.Contains(out, "Loaded image: committed:v1") {
		t.Errorf("docker load: %q", out)
	}
	if got := strings.TrimSpace(must("image", "inspect", "-f", "{{.Id}}", "committed:v1")); got != committedID {
		t.Errorf("loaded image ID %s, saved %s", got, committedID)
	}
	if out := must("run", "--rm", "committed:v1"); out != "hi\n" {
		t.Errorf("run of the loaded image: %q", out)
	}

	// import from stdin (the export above).
	tarData, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if out := mustIn(string(tarData), "import", "-c", `CMD ["cat", "/newfile"]`, "-", "imported:v1"); !strings.HasPrefix(out, "sha256:") {
		t.Errorf("docker import: %q", out)
	}
	if out := must("run", "--rm", "imported:v1"); out != "hi\n" {
		t.Errorf("run of the imported image: %q", out)
	}

	// image prune: a dangling image goes, named ones stay.
	dangling := strings.TrimSpace(must("commit", "dc"))
	out := must("image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+dangling) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("image prune: %q (dangling %s)", out, dangling)
	}
	if r := svc.docker(t, cfg, "image", "inspect", dangling); r.code == 0 {
		t.Errorf("pruned image %s still there", dangling)
	}
	must("image", "inspect", "imported:v1")
	must("rm", "dc")
	if r := svc.docker(t, cfg, "system", "prune", "-f"); r.code != 0 || !strings.Contains(r.stdout, "Total reclaimed space") {
		t.Errorf("system prune -f: exit %d %q %q", r.code, r.stdout, r.stderr)
	}

	// pull of a missing tag: the daemon's error, exit 1.
	missing := strings.TrimSuffix(ref, ":latest") + ":nosuchtag"
	if r := svc.docker(t, cfg, "pull", missing); r.code != 1 || !strings.Contains(r.stderr, "Error response from daemon:") {
		t.Errorf("pull of a missing tag: exit %d %q %q", r.code, r.stdout, r.stderr)
	} else {
		t.Logf("pull of a missing tag: %s", strings.TrimSpace(r.stderr))
	}

	// login and push to a registry that requires a password: the CLI's
	// credentials (X-Registry-Auth) are used, not the service's.
	priv := testutil.StartRegistry(t, testutil.WithHtpasswd("alice", "s3cret"))
	if r := svc.dockerIn(t, cfg, "wrong\n", "login", "-u", "alice", "--password-stdin", priv.Addr); r.code != 1 || !strings.Contains(r.stderr, "Error response from daemon:") {
		t.Errorf("login with a wrong password: exit %d %q", r.code, r.stderr)
	}
	if out := mustIn("s3cret\n", "login", "-u", "alice", "--password-stdin", priv.Addr); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("docker login: %q", out)
	}
	if _, err := os.Stat(filepath.Join(svcHome, "docker", "config.json")); err == nil {
		t.Error("the service stored credentials")
	}
	target := priv.Addr + "/pushed:v1"
	must("tag", "committed:v1", target)
	out = must("push", target)
	if n := strings.Count(out, "digest: sha256:"); n != 1 || !regexp.MustCompile(`(?m)^v1: digest: sha256:[0-9a-f]{64} size: \d+$`).MatchString(out) {
		t.Errorf("push output has %d digest lines, want one:\n%s", n, out)
	}
	t.Logf("docker push:\n%s", out)
	// The pushed image comes back through a pull with the same
	// credentials; without them the registry refuses.
	must("rmi", target)
	must("pull", target)
	// As from dockerd: exit 1 at once with "pull access denied", no
	// login prompt (which a 401 would make the CLI show).
	if r := svc.docker(t, t.TempDir(), "pull", priv.Addr+"/pushed:v1"); r.code != 1 ||
		!strings.Contains(r.stderr, "pull access denied") || !strings.Contains(r.stderr, "'docker login'") ||
		strings.Contains(r.stdout+r.stderr, "Username") {
		t.Errorf("pull without credentials: exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}
