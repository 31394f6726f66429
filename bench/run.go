package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/internal/hello"
	"github.com/berthproject/berth/internal/testutil"
	brt "github.com/berthproject/berth/runtime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// runImage is one row of the run benchmark.
type runImage struct {
	name, label string
	ref         string   // what berth runs
	cmd         []string // command after the image; nil for the image's Cmd
	img         v1.Image // the same image, unpacked into a directory for runc
	pull        bool     // pull ref into berth's root before measuring
}

// benchRun measures `berth run --rm --network none IMG CMD` against
// `runc run` on a bundle holding the same rootfs and a config.json from
// berth's own runtime.Spec, alternating, n times each after one untimed
// warm-up of each.
func benchRun(t *benchTB, env *benchEnv, ri runImage, n int) result {
	ctx := t.Context()
	dir := t.TempDir()
	br := newBerthRoot(env.berth, dir)
	t.Cleanup(br.removeContainers)
	runcRoot := filepath.Join(dir, "runc-state")
	t.Cleanup(func() {
		if _, err := os.Stat(runcRoot); err == nil {
			forceRemove([]string{"runc", "--root", runcRoot, "list", "-q"}, []string{"runc", "--root", runcRoot, "delete", "-f"})
		}
	})

	if ri.pull {
		_, err := run(ctx, br.bin, br.args("pull", "-q", "--tls-verify=false", ri.ref)...)
		t.check(err, "berth pull")
	}
	bundle := filepath.Join(dir, "bundle")
	rootfs := filepath.Join(bundle, "rootfs")
	t.check(os.MkdirAll(rootfs, 0o755), "mkdir")
	flat := mutate.Extract(ri.img)
	_, err := archive.Apply(ctx, rootfs, flat)
	flat.Close()
	t.check(err, "unpack rootfs for runc")
	cf, err := ri.img.ConfigFile()
	t.check(err, "image config")
	c := cf.Config
	imgCfg := ocispec.ImageConfig{Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User}

	berthArgs := br.args(append([]string{"run", "--rm", "--network", "none", ri.ref}, ri.cmd...)...)
	runBerth := func() (time.Duration, error) { return run(ctx, br.bin, berthArgs...) }
	seq := 0
	runRunc := func() (time.Duration, error) {
		seq++
		id := fmt.Sprintf("benchrunc%06d", seq)
		// berth makes its config.json on the timed path; runc's is made
		// here, untimed: the baseline is runc alone.
		if err := writeSpec(bundle, rootfs, id, imgCfg, ri.cmd); err != nil {
			return 0, err
		}
		return run(ctx, "runc", "--root", runcRoot, "run", "--bundle", bundle, id)
	}

	log.Printf("%s: warm-up, then %d runs each of berth and runc, alternating", ri.name, n)
	bs, rs := alternate(t, n, runBerth, runRunc)
	return result{
		name: ri.name, what: ri.label, baseline: "runc run (same rootfs as a plain dir, same spec)",
		berth: bs, base: rs, targets: []target{{1.5, "issue 2"}, {1.25, "issue 4"}},
	}
}

// writeSpec writes bundle/config.json for container id as berth's engine
// does at start: runtime.Spec with a 12-character hostname, a cgroup under
// /berth, a private network namespace and no terminal.
func writeSpec(bundle, rootfs, id string, img ocispec.ImageConfig, cmd []string) error {
	spec, err := brt.Spec(rootfs, img, brt.RunOptions{Cmd: cmd, Hostname: id[:12], CgroupsPath: "/berth/" + id})
	if err != nil {
		return err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600)
}

// helloImage is an image holding berth's built-in /hello program, for the
// runc side of the run-hello row (berth makes localhost/hello itself).
func helloImage(t *benchTB) v1.Image {
	prog, err := hello.Program(runtime.GOARCH)
	t.check(err, "hello program")
	return testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "hello", Mode: 0o755, Content: prog}}},
		v1.Config{Cmd: []string{"/hello"}})
}
