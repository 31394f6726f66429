package integration

import (
	"strings"
	"testing"
)

// TestParityUsageErrors: command-line errors print Docker 28's three-part
// text (message, "Usage:  ..." line, "Run/See '... --help' for more
// information") with Docker's exit codes.
func TestParityUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 1, "berth: unknown command: berth frobnicate\n\nRun 'berth --help' for more information\n"},
		{[]string{"image", "frob"}, 1, "berth: unknown command: berth image frob\n\nUsage:  berth image\n\nRun 'berth image --help' for more information\n"},
		{[]string{"logs"}, 1, "berth: 'berth logs' requires 1 argument\n\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information\n"},
		{[]string{"rmi"}, 1, "berth: 'berth rmi' requires at least 1 argument\n\nUsage:  berth rmi [OPTIONS] IMAGE [IMAGE...]\n\nSee 'berth rmi --help' for more information\n"},
		{[]string{"run", "--bogus", "x"}, 125, "unknown flag: --bogus\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information\n"},
	} {
		r := e.berth(c.args...)
		if r.code != c.code || r.stderr != c.want || r.stdout != "" {
			t.Errorf("berth %v: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", c.args, r.code, r.stdout, r.stderr, c.code, c.want)
		}
	}
}

// TestParityImageVerbs: tag's client-side reference errors are Docker's,
// printed without "Error:"; image inspect lists RepoTags sorted; ps shows
// a container's image ID once its reference names another image (or
// none); start of an unknown container ends with Docker's summary; port
// names the port as given.
func TestParityImageVerbs(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	repo := strings.TrimSuffix(ref, ":latest")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tag", ref, "Bad:Tag"}, `Error parsing reference: "Bad:Tag" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase` + "\n"},
		{[]string{"tag", "Bad:Src", "x"}, `Error parsing reference: "Bad:Src" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase` + "\n"},
		{[]string{"tag", ref, "x@sha256:" + strings.Repeat("a", 64)}, "refusing to create a tag with a digest reference\n"},
	} {
		if r := e.berth(c.args...); r.code != 1 || r.stderr != c.want {
			t.Errorf("berth %v: exit %d, stderr %q; want exit 1, %q", c.args, r.code, r.stderr, c.want)
		}
	}

	// Tagged in reverse order: inspect still lists them sorted.
	e.ok("tag", ref, repo+":zz")
	e.ok("tag", ref, repo+":aa")
	got := strings.TrimSpace(e.ok("image", "inspect", "--format", "{{json .RepoTags}}", ref))
	if want := `["` + repo + `:aa","` + repo + `:latest","` + repo + `:zz"]`; got != want {
		t.Errorf("RepoTags %s, want %s", got, want)
	}
	rows := strings.Fields(e.ok("images", "--format", "{{.Tag}}", repo))
	if strings.Join(rows, " ") != "aa latest zz" {
		t.Errorf("images tags %q, want aa latest zz", rows)
	}

	id := strings.TrimSpace(e.ok("image", "inspect", "--format", "{{.Id}}", ref))
	e.ok("create", "--network", "none", "--pull", "never", "--name", "p1", repo+":zz", "true")
	ps := func(args ...string) string {
		return strings.TrimSpace(e.ok(append([]string{"ps", "-a", "--filter", "name=p1", "--format", "{{.Image}}"}, args...)...))
	}
	if got := ps(); got != repo+":zz" {
		t.Errorf("ps image %q while the tag names the image, want %q", got, repo+":zz")
	}
	e.ok("rmi", repo+":zz")
	if got, want := ps(), strings.TrimPrefix(id, "sha256:")[:12]; got != want {
		t.Errorf("ps image %q after the tag went, want %q", got, want)
	}
	if got := ps("--no-trunc"); got != id {
		t.Errorf("ps --no-trunc image %q after the tag went, want %q", got, id)
	}

	r := e.berth("start", "nope", "p1")
	if want := "Error: No such container: nope\nError: failed to start containers: nope\n"; r.code != 1 || r.stderr != want || r.stdout != "p1\n" {
		t.Errorf("start nope p1: exit %d, stdout %q, stderr %q; want 1, %q, %q", r.code, r.stdout, r.stderr, "p1\n", want)
	}
	if r := e.berth("port", "p1", "80"); r.code != 1 || r.stderr != "Error: No public port '80' published for p1\n" {
		t.Errorf("port p1 80: exit %d, stderr %q", r.code, r.stderr)
	}
	e.ok("rm", "-f", "p1")
}
