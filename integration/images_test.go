package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// berthIO runs berth with stdin and extra environment.
func (e *env) berthIO(stdin io.Reader, extraEnv []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", e.root, "--runroot", e.runroot}, args...)...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("berth %v: %v", args, err)
	}
	return r
}

// fails runs berth, wants exit 1 and a one-line error containing want.
func (e *env) fails(want string, args ...string) {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 1 {
		e.t.Fatalf("berth %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, want) {
		e.t.Fatalf("berth %s: stderr %q, want one line with %q", strings.Join(args, " "), r.stderr, want)
	}
}

func (e *env) inspect(ref, format string) string {
	e.t.Helper()
	return strings.TrimSpace(e.ok("image", "inspect", "-f", format, ref))
}

func TestImagePushPullDigest(t *testing.T) {
	reg, ref := busybox(t)
	_, want := reg.Push(t, "busybox:latest", testutil.BusyboxImage(t))
	a := newEnv(t)
	a.ok("pull", ref)
	copyRef := reg.Addr + "/copy/busybox:v1"
	a.ok("tag", ref, copyRef)
	out := a.ok("push", copyRef)
	if !strings.Contains(out, "The push refers to repository ["+reg.Addr+"/copy/busybox]") ||
		!strings.Contains(out, ": Mounted from busybox\n") || // same registry: cross-repository mount
		!strings.Contains(out, "v1: digest: "+want+" size: ") {
		t.Fatalf("push output:\n%s", out)
	}
	if out := a.ok("push", copyRef); !strings.Contains(out, ": Layer already exists\n") {
		t.Fatalf("second push output:\n%s", out)
	}
	b := newEnv(t)
	b.ok("pull", copyRef)
	if got := b.inspect(copyRef, "{{index .RepoDigests 0}}"); got != reg.Addr+"/copy/busybox@"+want {
		t.Fatalf("pulled repo digest %s, want %s", got, want)
	}
	if a.inspect(copyRef, "{{.Id}}") != b.inspect(copyRef, "{{.Id}}") {
		t.Fatal("image IDs differ after push and pull")
	}
}

func TestImageTagRmiAndDangling(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	id := e.inspect(ref, "{{.Id}}")
	e.ok("tag", ref, "mine:1")
	out := e.ok("rmi", "mine:1")
	if out != "Untagged: mine:1\n" {
		t.Fatalf("rmi of one tag printed %q", out)
	}
	if got := e.inspect(ref, "{{.Id}}"); got != id {
		t.Fatalf("image %s gone after removing another tag", ref)
	}
	// Moving a name to another image leaves the old one dangling.
	e.ok("tag", ref, "moving:latest")
	e.berthIO(bytes.NewReader(rootfsTar(t, map[string]string{"hello.txt": "hi"})), nil, "import", "-", "other:1")
	e.ok("tag", "other:1", "moving:latest")
	dangling := strings.Fields(e.ok("images", "--filter", "dangling=true", "-q", "--no-trunc"))
	if len(dangling) != 0 {
		t.Fatalf("busybox still has a name, yet dangling: %v", dangling)
	}
	e.ok("rmi", ref)
	out = e.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
	if !strings.Contains(out, "moving:latest") || strings.Contains(out, strings.TrimPrefix(id, "sha256:")[:12]) {
		t.Fatalf("images after rmi:\n%s", out)
	}
	// Import over a name the old image shares with another: not dangling.
	e.berthIO(bytes.NewReader(rootfsTar(t, map[string]string{"hello.txt": "bye"})), nil, "import", "-", "other:1")
	if out := e.ok("images", "--filter", "dangling=true", "-q"); out != "" {
		t.Fatalf("image still named moving:latest listed as dangling: %q", out)
	}
	e.ok("rmi", "moving:latest")
	e.berthIO(bytes.NewReader(rootfsTar(t, map[string]string{"hello.txt": "third"})), nil, "import", "-", "other:1")
	out = e.ok("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}")
	if strings.TrimSpace(out) != "<none>:<none>" {
		t.Fatalf("dangling images after moving other:1: %q", out)
	}
	out = e.ok("image", "prune", "-f")
	if !strings.Contains(out, "Deleted Images:\ndeleted: sha256:") || !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("prune output:\n%s", out)
	}
	if out := e.ok("images", "-q", "--filter", "dangling=true"); out != "" {
		t.Fatalf("dangling images after prune: %q", out)
	}
	if out := e.ok("images", "-q"); len(strings.Fields(out)) != 1 {
		t.Fatalf("images after prune: %q", out)
	}
}

// rootfsTar makes a plain tar of regular files.
func rootfsTar(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImageSaveLoad(t *testing.T) {
	_, ref := busybox(t)
	a := newEnv(t)
	a.ok("pull", ref)
	id, manifest := a.inspect(ref, "{{.Id}}"), a.inspect(ref, "{{.Descriptor.digest}}")
	file := filepath.Join(t.TempDir(), "busybox.tar")
	a.ok("save", "-o", file, ref)

	names := tarNames(t, file)
	for _, want := range []string{"oci-layout", "index.json", "manifest.json", "blobs/sha256/" + strings.TrimPrefix(id, "sha256:")} {
		if !slices.Contains(names, want) {
			t.Fatalf("archive lacks %s: %v", want, names)
		}
	}

	b := newEnv(t)
	out := b.ok("load", "-i", file)
	if out != "Loaded image: "+ref+"\n" {
		t.Fatalf("load printed %q", out)
	}
	if b.inspect(ref, "{{.Id}}") != id || b.inspect(ref, "{{.Descriptor.digest}}") != manifest {
		t.Fatal("digests changed in save/load round trip")
	}

	// Through stdout and stdin.
	r := a.berth("save", ref) // stdout is a pipe here
	if r.code != 0 {
		t.Fatalf("save to stdout: %d %s", r.code, r.stderr)
	}
	c := newEnv(t)
	if lr := c.berthIO(strings.NewReader(r.stdout), nil, "load"); lr.code != 0 || lr.stdout != "Loaded image: "+ref+"\n" {
		t.Fatalf("load from stdin: exit %d, %q %q", lr.code, lr.stdout, lr.stderr)
	}
	if c.inspect(ref, "{{.Id}}") != id || c.inspect(ref, "{{.Descriptor.digest}}") != manifest {
		t.Fatal("digests changed in save/load round trip through pipes")
	}
	// The loaded image runs.
	if out := c.ok("run", "--rm", ref, "echo", "loaded"); out != "loaded\n" {
		t.Fatalf("run of loaded image printed %q", out)
	}
	// Loading by image ID without names gives an untagged image.
	d := newEnv(t)
	idFile := filepath.Join(t.TempDir(), "byid.tar")
	a.ok("save", "-o", idFile, strings.TrimPrefix(id, "sha256:")[:12])
	if out := d.ok("load", "-i", idFile); out != "Loaded image ID: "+id+"\n" {
		t.Fatalf("load of save-by-ID printed %q", out)
	}
	if out := d.ok("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); out != "<none>:<none> "+id[7:19]+"\n" {
		t.Fatalf("image loaded without a name is listed as %q", out)
	}
	d.fails("", "load", "-i", "/dev/null")
}

func tarNames(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
}

func TestImageArchiveInteropSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	reg, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	id := e.inspect(ref, "{{.Id}}")
	dir := t.TempDir()
	saved := filepath.Join(dir, "berth.tar")
	e.ok("save", "-o", saved, ref)

	// skopeo reads berth's archive both as an OCI layout and as a docker-archive.
	skopeo := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("skopeo", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	skopeo("copy", "oci-archive:"+saved, "dir:"+filepath.Join(dir, "fromoci"))
	skopeo("copy", "docker-archive:"+saved, "dir:"+filepath.Join(dir, "fromdocker"))
	var cfg struct{ Config struct{ Digest string } }
	data, err := os.ReadFile(filepath.Join(dir, "fromoci", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &cfg)
	if cfg.Config.Digest != id {
		t.Fatalf("skopeo read config %s from the OCI layout, want %s", cfg.Config.Digest, id)
	}

	// A docker-archive written by skopeo loads into berth.
	darchive := filepath.Join(dir, "skopeo.tar")
	skopeo("copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+darchive+":skopeo/busybox:v2")
	f := newEnv(t)
	if out := f.ok("load", "-i", darchive); out != "Loaded image: skopeo/busybox:v2\n" {
		t.Fatalf("load of skopeo docker-archive printed %q", out)
	}
	if got := f.inspect("skopeo/busybox:v2", "{{.Id}}"); got != id {
		t.Fatalf("skopeo docker-archive loaded as %s, want %s", got, id)
	}
	if out := f.ok("run", "--rm", "skopeo/busybox:v2", "echo", "ok"); out != "ok\n" {
		t.Fatalf("run printed %q", out)
	}
	// And an oci-archive written by skopeo.
	oarchive := filepath.Join(dir, "skopeo-oci.tar")
	skopeo("copy", "--src-tls-verify=false", "docker://"+ref, "oci-archive:"+oarchive+":"+reg.Addr+"/busybox:oci")
	g := newEnv(t)
	if out := g.ok("load", "-i", oarchive); out != "Loaded image: "+reg.Addr+"/busybox:oci\n" {
		t.Fatalf("load of skopeo oci-archive printed %q", out)
	}
	if got := g.inspect(reg.Addr+"/busybox:oci", "{{.Id}}"); got != id {
		t.Fatalf("skopeo oci-archive loaded as %s, want %s", got, id)
	}
}

func TestImageInspectHistoryImages(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	var resp []map[string]any
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", ref)), &resp); err != nil || len(resp) != 1 {
		t.Fatalf("inspect output is not a one-element JSON array: %v", err)
	}
	img := resp[0]
	if id, _ := img["Id"].(string); !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("Id %v", img["Id"])
	}
	if tags, _ := img["RepoTags"].([]any); len(tags) != 1 || tags[0] != ref {
		t.Fatalf("RepoTags %v", img["RepoTags"])
	}
	if ds, _ := img["RepoDigests"].([]any); len(ds) != 1 || !strings.Contains(ds[0].(string), "@sha256:") {
		t.Fatalf("RepoDigests %v", img["RepoDigests"])
	}
	if img["Architecture"] != runtime.GOARCH || img["Os"] != "linux" {
		t.Fatalf("platform %v/%v", img["Os"], img["Architecture"])
	}
	if size, _ := img["Size"].(float64); size < 100000 {
		t.Fatalf("Size %v", img["Size"])
	}
	if got := e.inspect(ref, "{{json .Config.Cmd}}"); got != `["sh"]` {
		t.Fatalf("Config.Cmd %s", got)
	}
	if got := e.inspect(ref, "{{len .RootFS.Layers}} {{.RootFS.Type}}"); got != "1 layers" {
		t.Fatalf("RootFS %s", got)
	}
	e.fails("No such image: nosuch:1", "image", "inspect", "nosuch:1")

	hist := strings.Split(strings.TrimSpace(e.ok("history", ref)), "\n")
	if len(hist) != 2 || !strings.HasPrefix(hist[0], "IMAGE") || !strings.Contains(hist[0], "CREATED BY") ||
		!strings.HasPrefix(hist[1], e.inspect(ref, "{{.Id}}")[7:19]) || !strings.Contains(hist[1], "berth testutil layer 0") {
		t.Fatalf("history:\n%s", strings.Join(hist, "\n"))
	}
	if out := e.ok("history", "-q", ref); strings.TrimSpace(out) != e.inspect(ref, "{{.Id}}")[7:19] {
		t.Fatalf("history -q: %q", out)
	}

	e.ok("tag", ref, "other/name:v2")
	out := e.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
	lines := strings.Fields(out)
	slices.Sort(lines)
	if want := []string{"other/name:v2", ref}; !slices.Equal(lines, sortStrings(want)) {
		t.Fatalf("images --format: %q", out)
	}
	if out := e.ok("images", "--filter", "reference=other/*", "--format", "{{.Repository}}"); out != "other/name\n" {
		t.Fatalf("reference filter: %q", out)
	}
	if out := e.ok("images", "--format", "table {{.Repository}}\t{{.Tag}}", "other/name"); !strings.HasPrefix(out, "REPOSITORY") || !strings.Contains(out, "other/name   v2") {
		t.Fatalf("table format: %q", out)
	}
	var row map[string]string
	first := strings.Split(e.ok("images", "--format", "json", "other/name"), "\n")[0]
	if err := json.Unmarshal([]byte(first), &row); err != nil || row["Tag"] != "v2" || len(row["ID"]) != 12 {
		t.Fatalf("json format: %q (%v)", first, err)
	}
	if out := e.ok("images", "--digests"); !strings.Contains(out, "DIGEST") || !strings.Contains(out, "sha256:") {
		t.Fatalf("--digests:\n%s", out)
	}
	if e.berth("images", "--filter", "bogus=1").code != 1 {
		t.Fatal("unknown filter accepted")
	}
	if out := e.ok("system", "df"); !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Images") {
		t.Fatalf("system df:\n%s", out)
	}
}

func sortStrings(s []string) []string { slices.Sort(s); return s }

func TestImageBadInput(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.fails("An image does not exist locally with the tag", "push", "127.0.0.1:1/nosuch:latest")
	e.fails("No such image: nosuch:1", "save", "-o", filepath.Join(t.TempDir(), "x.tar"), "nosuch:1")
	e.fails("No such image: nosuch:1", "tag", "nosuch:1", "x:1")
	e.fails("No such image: nosuch:1", "history", "nosuch:1")
	e.ok("pull", ref)
	// Docker's CLI checks a tag's reference itself and prints its error bare.
	if r := e.berth("tag", ref, "UPPER:1"); r.code != 1 || r.stderr != `Error parsing reference: "UPPER:1" is not a valid repository/tag: invalid reference format: repository name (library/UPPER) must be lowercase`+"\n" {
		t.Fatalf("tag UPPER:1: exit %d, stderr %q", r.code, r.stderr)
	}
	e.fails("not supported", "import", "-c", "RUN true", "/dev/null")
	e.fails("not a tar archive", "import", "/proc/self/cmdline")
}

func TestImageImportExport(t *testing.T) {
	_, ref := busybox(t)
	e := newEnv(t)
	e.ok("pull", ref)
	id := strings.TrimSpace(e.ok("create", ref, "sh", "-c", "echo hi > /made-here"))
	e.ok("start", "-a", id)
	dir := t.TempDir()
	exported := filepath.Join(dir, "rootfs.tar")
	e.ok("export", "-o", exported, id)
	names := tarNames(t, exported)
	for _, want := range []string{"bin/busybox", "made-here", "etc/passwd"} {
		if !slices.Contains(names, want) {
			t.Fatalf("export lacks %s", want)
		}
	}
	out := e.ok("import", "-c", `CMD ["/bin/sh", "-c", "cat /made-here"]`, "-c", "ENV A=b", "-c", "WORKDIR /tmp",
		"-c", "EXPOSE 80", "-c", `LABEL k="v w"`, "-m", "round trip", exported, "imported:1")
	if !strings.HasPrefix(out, "sha256:") || len(strings.TrimSpace(out)) != 71 {
		t.Fatalf("import printed %q", out)
	}
	if got := e.inspect("imported:1", `{{json .Config.Cmd}} {{.Config.WorkingDir}} {{index .Config.Labels "k"}} {{json .Config.ExposedPorts}} {{.Comment}}`); got != `["/bin/sh","-c","cat /made-here"] /tmp v w {"80/tcp":{}} round trip` {
		t.Fatalf("imported config: %s", got)
	}
	if out := e.ok("run", "--rm", "imported:1"); out != "hi\n" {
		t.Fatalf("run of imported image printed %q", out)
	}
	// stdin import, then export of a container of it through stdout.
	r := e.berthIO(bytes.NewReader(rootfsTar(t, map[string]string{"a": "1"})), nil, "import", "-")
	if r.code != 0 {
		t.Fatalf("import -: %d %s", r.code, r.stderr)
	}
	if out := e.ok("images", "--filter", "dangling=true", "-q", "--no-trunc"); strings.TrimSpace(out) != strings.TrimSpace(r.stdout) {
		t.Fatalf("unnamed import is not listed as dangling: %q vs %q", out, r.stdout)
	}
	c2 := strings.TrimSpace(e.ok("create", "imported:1"))
	er := e.berth("export", c2)
	if er.code != 0 || !strings.Contains(er.stdout, "made-here") {
		t.Fatalf("export to stdout: exit %d %s", er.code, er.stderr)
	}
	e.fails("No such container", "export", "-o", filepath.Join(dir, "x.tar"), "nosuch")
}
