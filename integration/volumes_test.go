package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// volumeNames is `volume ls -q` as a sorted list.
func (e *env) volumeNames(args ...string) []string {
	e.t.Helper()
	names := strings.Fields(e.ok(append([]string{"volume", "ls", "-q"}, args...)...))
	slices.Sort(names)
	return names
}

var anonName = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestVolumeVerbs(t *testing.T) {
	e := newEnv(t)
	if out := e.ok("volume", "create", "v1"); out != "v1\n" {
		t.Fatalf("create: %q", out)
	}
	e.ok("volume", "create", "--name", "v2", "--label", "k=v", "-d", "local", "-o", "o=1")
	unnamed := strings.TrimSpace(e.ok("volume", "create"))
	if !anonName.MatchString(unnamed) {
		t.Fatalf("create without a name printed %q", unnamed)
	}
	e.ok("volume", "rm", unnamed)
	// An anonymous volume: one a container made for a path (needs no
	// image to be created).
	e.ok("volume", "create", "--label", "com.docker.volume.anonymous=", "--name", strings.Repeat("ab", 32))
	anon := strings.Repeat("ab", 32)
	// Creating an existing volume is not an error and changes nothing.
	e.ok("volume", "create", "v1")
	if got := e.ok("volume", "ls"); !strings.HasPrefix(got, "DRIVER    VOLUME NAME\n") || !strings.Contains(got, "local     v1\n") || !strings.Contains(got, "local     v2\n") {
		t.Fatalf("ls:\n%s", got)
	}
	if got := e.volumeNames("--filter", "label=k=v"); !slices.Equal(got, []string{"v2"}) {
		t.Fatalf("ls --filter label: %v", got)
	}
	if got := e.volumeNames("--filter", "name=v"); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("ls --filter name: %v", got)
	}
	if got := e.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}", "--filter", "name=v2"); got != "v2 local k=v\n" {
		t.Fatalf("ls --format: %q", got)
	}
	var vols []map[string]any
	if err := json.Unmarshal([]byte(e.ok("volume", "inspect", "v2")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("inspect: %v %v", err, vols)
	}
	v := vols[0]
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range v {
			if !yield(k) {
				return
			}
		}
	})
	if !slices.Equal(keys, []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}) ||
		v["Name"] != "v2" || v["Driver"] != "local" || v["Scope"] != "local" ||
		v["Labels"].(map[string]any)["k"] != "v" || v["Options"].(map[string]any)["o"] != "1" {
		t.Fatalf("inspect shape: %v", v)
	}
	if fi, err := os.Stat(v["Mountpoint"].(string)); err != nil || !fi.IsDir() {
		t.Fatalf("Mountpoint: %v", err)
	}
	if got := e.ok("volume", "inspect", "-f", "{{.Name}} {{.Scope}}", "v1"); got != "v1 local\n" {
		t.Fatalf("inspect -f: %q", got)
	}
	e.wantFail(1, "no such volume", "volume", "inspect", "nosuch")
	e.wantFail(1, "includes invalid characters", "volume", "create", "bad/name")
	e.wantFail(1, "invalid filter", "volume", "ls", "--filter", "bogus=1")

	// prune without -a: only anonymous volumes; with -a every unused one.
	out := e.ok("volume", "prune", "-f")
	if out != "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 0B\n" {
		t.Fatalf("prune:\n%s", out)
	}
	if got := e.volumeNames(); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Fatalf("after prune: %v", got)
	}
	e.ok("volume", "prune", "-a", "-f", "--filter", "label=k=v")
	if got := e.volumeNames(); !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("after prune -a with a label filter: %v", got)
	}
	if out := e.ok("volume", "rm", "v1"); out != "v1\n" {
		t.Fatalf("rm: %q", out)
	}
	e.wantFail(1, "no such volume", "volume", "rm", "v1")
	e.ok("volume", "rm", "-f", "v1")
	if out := e.ok("volume", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Fatalf("empty prune: %q", out)
	}
}

func TestVolumeRun(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)

	// A named volume outlives its container and is shared.
	e.ok("run", "--rm", "-v", "data:/d", ref, "sh", "-c", "echo x > /d/f")
	if out := e.ok("run", "--rm", "-v", "data:/d:ro", ref, "cat", "/d/f"); out != "x\n" {
		t.Fatalf("second container reads %q", out)
	}
	if r := e.berth("run", "--rm", "-v", "data:/d:ro", ref, "touch", "/d/g"); r.code == 0 {
		t.Fatalf("write to a read-only volume succeeded")
	}
	if out := e.ok("run", "--rm", "--mount", "type=volume,source=data,target=/m,readonly", ref, "cat", "/m/f"); out != "x\n" {
		t.Fatalf("--mount type=volume reads %q", out)
	}

	// A fresh named volume gets the image's content at its path (copy-up),
	// with the directory's owner and mode; nocopy leaves it empty.
	e.ok("run", "--rm", "-v", "etcvol:/etc", ref, "true")
	mp := strings.TrimSpace(e.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "etcvol"))
	if data, err := os.ReadFile(filepath.Join(mp, "passwd")); err != nil || !strings.Contains(string(data), "root:") {
		t.Fatalf("copy-up: %v %q", err, data)
	}
	if out := e.ok("run", "--rm", "-v", "bare:/var:nocopy", ref, "ls", "-A", "/var"); out != "" {
		t.Fatalf("nocopy volume has %q", out)
	}
	// A volume that has content is not overwritten.
	e.ok("run", "--rm", "-v", "data:/etc", ref, "true")
	if out := e.ok("run", "--rm", "-v", "data:/d", ref, "ls", "/d"); !strings.HasPrefix(out, "f\n") || strings.Contains(out, "passwd") {
		t.Fatalf("non-empty volume got the image's content: %q", out)
	}

	// Inspect shows volume mounts as Docker does.
	e.ok("create", "--name", "c1", "-v", "data:/d", "-v", "/anon", ref, "true")
	var got []struct {
		Mounts []struct {
			Type, Name, Source, Destination, Driver string
			RW                                      bool
		}
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", "c1")), &got); err != nil || len(got) != 1 || len(got[0].Mounts) != 2 {
		t.Fatalf("inspect: %v %+v", err, got)
	}
	named, anon := got[0].Mounts[0], got[0].Mounts[1]
	if named.Type != "volume" || named.Name != "data" || named.Destination != "/d" || named.Driver != "local" || !named.RW || !strings.HasSuffix(named.Source, "/volumes/data/_data") {
		t.Fatalf("named mount: %+v", named)
	}
	if anon.Type != "volume" || !anonName.MatchString(anon.Name) || anon.Destination != "/anon" {
		t.Fatalf("anonymous mount: %+v", anon)
	}

	// A volume in use cannot go, not even with -f, nor by prune -a.
	e.wantFail(1, "volume is in use", "volume", "rm", "data")
	e.wantFail(1, "volume is in use", "volume", "rm", "-f", "data")
	e.ok("volume", "prune", "-a", "-f")
	if vs := e.volumeNames(); !slices.Contains(vs, "data") || !slices.Contains(vs, anon.Name) {
		t.Fatalf("prune removed volumes in use: %v", vs)
	}
	if out := e.ok("volume", "ls", "-q", "--filter", "dangling=false"); !strings.Contains(out, "data\n") || strings.Contains(out, "etcvol") {
		t.Fatalf("dangling=false: %q", out)
	}

	// rm -v removes the anonymous volume, not the named one.
	e.ok("rm", "-v", "c1")
	vs := e.volumeNames()
	if slices.Contains(vs, anon.Name) || !slices.Contains(vs, "data") {
		t.Fatalf("after rm -v: %v", vs)
	}
	// rm without -v keeps anonymous volumes.
	e.ok("create", "--name", "c2", "-v", "/keep", ref, "true")
	before := len(e.volumeNames())
	e.ok("rm", "c2")
	if after := len(e.volumeNames()); after != before {
		t.Fatalf("rm without -v removed volumes: %d → %d", before, after)
	}
	e.ok("volume", "prune", "-f")

	// run --rm removes its anonymous volumes, in the foreground and detached.
	before = len(e.volumeNames())
	e.ok("run", "--rm", "-v", "/anon", ref, "true")
	id := strings.TrimSpace(e.ok("run", "-d", "--rm", "-v", "/anon2", ref, "true"))
	e.berth("wait", id)
	for i := 0; i < 100 && len(e.volumeNames()) != before; i++ {
		e.ok("ps", "-a") // lets a slow monitor cleanup finish
	}
	if vs := e.volumeNames(); len(vs) != before {
		t.Fatalf("run --rm left volumes: %v", vs)
	}

	// Bad specs: one line, exit 125, nothing created.
	before = len(e.volumeNames())
	ps := e.ok("ps", "-aq")
	e.wantFail(125, "invalid characters for a local volume name", "run", "--rm", "-v", "ok1:/a", "-v", "b@d:/b", ref, "true")
	e.wantFail(125, "invalid volume specification", "run", "--rm", "-v", "x:rel", ref, "true")
	e.wantFail(125, "Duplicate mount point", "run", "--rm", "-v", "ok2:/a", "-v", "ok3:/a", ref, "true")
	e.wantFail(125, "invalid argument", "run", "--rm", "--mount", "type=volume,source=ok4", ref, "true")
	if vs := e.volumeNames(); len(vs) != before || e.ok("ps", "-aq") != ps {
		t.Fatalf("a bad spec created something: %v", vs)
	}
}
