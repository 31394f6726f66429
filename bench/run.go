package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/archive"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/internal/hello"
	"github.com/berthproject/berth/internal/testutil"
	brt "github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runImage is one row of the run benchmark.
type runImage struct {
	name, label string
	ref         string   // what berth runs
	cmd         []string // command after the image; nil for the image's Cmd
	img         v1.Image // the same image, unpacked into a directory for runc
	pull        bool     // pull ref into berth's root before measuring
}

// benchRun measures `berth run --rm --network none IMG CMD` (berth's
// default OCI runtime) against `runc run` on a bundle holding the same
// rootfs and a config.json from berth's own runtime.Spec, and, to tell
// the engine's cost from the runtime's, `berth --runtime runc run` against
// the same runc run and, when crun is installed, berth against crun run
// as berth drives it (ociruntime: the same wrapper and compiled seccomp
// program, no engine). The sides alternate, n times each after one
// untimed warm-up.
func benchRun(t *benchTB, env *benchEnv, ri runImage, n int) []result {
	ctx := t.Context()
	dir := t.TempDir()
	br := newBerthRoot(env.berth, dir)
	t.Cleanup(br.removeContainers)
	if ri.pull {
		_, err := run(ctx, br.bin, br.args("pull", "-q", "--tls-verify=false", ri.ref)...)
		t.check(err, "berth pull")
	}
	rb := newRuncBundle(t, dir, ri.img, ri.cmd)

	runArgs := append([]string{"run", "--rm", "--network", "none", ri.ref}, ri.cmd...)
	berthArgs := br.args(runArgs...)
	berthRuncArgs := br.args(append([]string{"--runtime", "runc"}, runArgs...)...)
	sides := []func() (time.Duration, error){
		func() (time.Duration, error) { return run(ctx, br.bin, berthArgs...) },
		func() (time.Duration, error) {
			d, _, err := rb.run(ctx)
			return d, err
		},
		func() (time.Duration, error) { return run(ctx, br.bin, berthRuncArgs...) },
	}
	crun := newCrunSide(t, dir, rb)
	if crun != nil {
		sides = append(sides, crun.run)
	}
	log.Printf("%s: warm-up, then %d runs each of berth, runc, berth --runtime runc and crun, alternating", ri.name, n)
	ss := alternateN(t, n, sides...)
	res := []result{{
		name: ri.name, what: ri.label + " (berth's default runtime: " + engine.DefaultRuntime() + ")",
		baseline: "runc run (same rootfs as a plain dir, same spec)",
		berth:    ss[0], base: ss[1], targets: []target{{ratioAtMost, 1.5, "issue 2"}, {ratioAtMost, 1.25, "issue 4"}},
	}, {
		name: ri.name + "-runc", what: ri.label + " with --runtime runc",
		baseline: "runc run (same rootfs as a plain dir, same spec)", berth: ss[2], base: ss[1],
	}}
	if crun != nil {
		res = append(res, result{
			name: ri.name + "-crun", what: ri.label + " (crun)",
			baseline: "crun run as berth drives it (same rootfs as a plain dir, same spec, no engine)", berth: ss[0], base: ss[3],
		})
	}
	return res
}

// crunSide runs a runcBundle's container with crun through package
// ociruntime: the wrapper berth uses on cgroup v1 hybrid hosts and the
// compiled seccomp program it keeps, without the engine around it.
type crunSide struct {
	rb *runcBundle
	rt *ociruntime.Runtime
}

// newCrunSide returns nil when crun is not installed.
func newCrunSide(t *benchTB, dir string, rb *runcBundle) *crunSide {
	rt, err := ociruntime.Open("crun", filepath.Join(dir, "crun-state"))
	if err != nil {
		return nil
	}
	return &crunSide{rb: rb, rt: rt}
}

func (c *crunSide) run() (time.Duration, error) {
	ctx := context.Background()
	c.rb.seq++
	id := fmt.Sprintf("benchcrun%06d", c.rb.seq)
	spec, err := specFor(c.rb.rootfs, id, c.rb.img, c.rb.cmd)
	if err != nil {
		return 0, err
	}
	c.rt.AdjustSpec(id, spec)
	if err := writeJSON(filepath.Join(c.rb.bundle, "config.json"), spec); err != nil {
		return 0, err
	}
	start := time.Now()
	p, err := c.rt.Run(ctx, id, c.rb.bundle, brt.Stdio{})
	if err != nil {
		return 0, err
	}
	code, err := p.Wait()
	d := time.Since(start)
	if err == nil && code != 0 {
		err = fmt.Errorf("crun run exited %d", code)
	}
	return d, err
}

// runcBundle is the runc side of a run row: an image unpacked into a
// plain directory, run with `runc run` under a private runc --root.
type runcBundle struct {
	bundle, rootfs, state string
	img                   ocispec.ImageConfig
	cmd                   []string
	seq                   int // containers run so far; each gets a new id
}

// newRuncBundle unpacks img into dir/bundle/rootfs and registers the
// removal of whatever runc containers are left at the end.
func newRuncBundle(t *benchTB, dir string, img v1.Image, cmd []string) *runcBundle {
	rb := &runcBundle{bundle: filepath.Join(dir, "bundle"), state: filepath.Join(dir, "runc-state"), cmd: cmd}
	rb.rootfs = filepath.Join(rb.bundle, "rootfs")
	t.Cleanup(func() {
		if _, err := os.Stat(rb.state); err == nil {
			forceRemove([]string{"runc", "--root", rb.state, "list", "-q"}, []string{"runc", "--root", rb.state, "delete", "-f"})
		}
	})
	t.check(os.MkdirAll(rb.rootfs, 0o755), "mkdir")
	flat := mutate.Extract(img)
	_, err := archive.Apply(t.Context(), rb.rootfs, flat)
	flat.Close()
	t.check(err, "unpack rootfs for runc")
	cf, err := img.ConfigFile()
	t.check(err, "image config")
	c := cf.Config
	rb.img = ocispec.ImageConfig{Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir, User: c.User}
	return rb
}

// run runs the next container to completion with `runc run`. berth makes
// its config.json on the timed path; runc's is made here, untimed: the
// baseline is runc alone.
func (rb *runcBundle) run(ctx context.Context) (time.Duration, *os.ProcessState, error) {
	argv := rb.argv()
	if argv == nil {
		return 0, nil, fmt.Errorf("write the spec of runc's next container")
	}
	return runCmd(ctx, exec.CommandContext(ctx, argv[0], argv[1:]...))
}

// argv writes the spec of the next container and returns the `runc run`
// command line that runs it; nil if the spec could not be written.
func (rb *runcBundle) argv() []string {
	rb.seq++
	id := fmt.Sprintf("benchrunc%06d", rb.seq)
	if err := writeSpec(rb.bundle, rb.rootfs, id, rb.img, rb.cmd); err != nil {
		return nil
	}
	return []string{"runc", "--root", rb.state, "run", "--bundle", rb.bundle, id}
}

// writeSpec writes bundle/config.json for container id (specFor).
func writeSpec(bundle, rootfs, id string, img ocispec.ImageConfig, cmd []string) error {
	spec, err := specFor(rootfs, id, img, cmd)
	if err != nil {
		return err
	}
	return writeJSON(filepath.Join(bundle, "config.json"), spec)
}

// specFor is container id's spec as berth's engine makes it at start:
// runtime.Spec with a 12-character hostname, a cgroup under /berth, a
// private network namespace and no terminal.
func specFor(rootfs, id string, img ocispec.ImageConfig, cmd []string) (*specs.Spec, error) {
	return brt.Spec(rootfs, img, brt.RunOptions{Cmd: cmd, Hostname: id[:12], CgroupsPath: "/berth/" + id})
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// helloImage is an image holding berth's built-in /hello program, for the
// runc side of the run-hello row (berth makes localhost/hello itself).
func helloImage(t *benchTB) v1.Image {
	prog, err := hello.Program(runtime.GOARCH)
	t.check(err, "hello program")
	return testutil.LayeredImage(t, [][]testutil.TarEntry{{{Name: "hello", Mode: 0o755, Content: prog}}},
		v1.Config{Cmd: []string{"/hello"}})
}

// benchBridge measures `berth run --rm IMG true` on the default bridge
// against the same with --network none, alternating, n times each after
// one untimed warm-up of each: the cost of the veth, the address, the
// firewall rules and their removal.
func benchBridge(t *benchTB, box *boxRoot, n int) result {
	ctx := t.Context()
	bridged := box.args("run", "--rm", box.ref, "true")
	none := box.args("run", "--rm", "--network", "none", box.ref, "true")
	log.Printf("run-bridge: warm-up, then %d runs each on the default bridge and with --network none, alternating", n)
	bs, ns := alternate(t, n,
		func() (time.Duration, error) { return run(ctx, box.bin, bridged...) },
		func() (time.Duration, error) { return run(ctx, box.bin, none...) })
	return result{
		name: "run-bridge", what: "run --rm busybox true on the default bridge",
		baseline: "the same with --network none", berth: bs, base: ns,
		targets: []target{{extraAtMost, float64(10 * time.Millisecond), "issue 5"}},
	}
}

// cliRSSRuns is how many runs of each side cli-rss measures.
const cliRSSRuns = 10

// benchCLIRSS measures the peak RSS of `berth run --rm IMG true` (default
// network) two ways: the CLI's own high-water mark (VmHWM, polled until it
// exits) and wait4's ru_maxrss, which also covers the children it reaped
// (runc). The baseline of both rows is ru_maxrss of `runc run` alone on
// the same image.
func benchCLIRSS(t *benchTB, box *boxRoot) []result {
	ctx := t.Context()
	rb := newRuncBundle(t, t.TempDir(), box.img, []string{"true"})
	args := box.args("run", "--rm", box.ref, "true")
	gnuTime, timeErr := exec.LookPath("/usr/bin/time")
	var own, tree, rs, rsTree sample
	log.Printf("cli-rss: warm-up, then %d runs each of berth and runc, alternating", cliRSSRuns)
	for i := range cliRSSRuns + 1 {
		hwm, _, err := runPeak(ctx, exec.CommandContext(ctx, box.bin, args...))
		t.check(err, "berth")
		_, rps, err := rb.run(ctx)
		t.check(err, "runc")
		if i > 0 {
			own, rs = append(own, hwm), append(rs, maxRSS(rps))
		}
		if timeErr != nil {
			continue
		}
		bt, err := treeMaxRSS(ctx, gnuTime, append([]string{box.bin}, args...))
		t.check(err, "berth under time")
		rt, err := treeMaxRSS(ctx, gnuTime, rb.argv())
		t.check(err, "runc under time")
		if i > 0 {
			tree, rsTree = append(tree, bt), append(rsTree, rt)
		}
	}
	runc := "runc run alone (same image), ru_maxrss (includes this harness's RSS: no /usr/bin/time)"
	if timeErr == nil {
		runc, rs = "runc run alone (same image), peak RSS (GNU time's %M)", rsTree
	}
	tg := []target{{medianAtMost, 20 * 1024, "issue 4d"}}
	res := []result{
		{name: "cli-rss", what: "peak RSS of the berth CLI itself (VmHWM, polled) in run --rm busybox true",
			baseline: runc, unit: kilobytes, berth: own, base: rs, targets: tg},
	}
	if timeErr == nil {
		res = append(res, result{name: "cli-rss-tree", what: "largest peak RSS among berth and every process it reaped in run --rm busybox true (GNU time's %M)",
			baseline: "the same for runc run alone", unit: kilobytes, berth: tree, base: rsTree})
	}
	return res
}

// treeMaxRSS runs argv under GNU time and returns its %M: the largest
// ru_maxrss of the command and the children it reaped, in kB. The command
// must not be started by this process directly: Go starts children with
// vfork, and the kernel then counts this (much larger) process's resident
// set as the child's peak.
func treeMaxRSS(ctx context.Context, gnuTime string, argv []string) (float64, error) {
	f, err := os.CreateTemp("", "berth-bench-time-")
	if err != nil {
		return 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd := exec.CommandContext(ctx, gnuTime, append([]string{"-f", "%M", "-o", f.Name()}, argv...)...)
	if _, _, err := runCmd(ctx, cmd); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
}

// maxRSS is the ru_maxrss wait4 reported, in kB.
func maxRSS(ps *os.ProcessState) float64 { return float64(ps.SysUsage().(*syscall.Rusage).Maxrss) }

// runPeak runs cmd to completion, reading its VmHWM from /proc every
// millisecond, and returns the last value read (kB): the process's own
// peak, short of whatever it grows in its last millisecond.
func runPeak(ctx context.Context, cmd *exec.Cmd) (float64, *os.ProcessState, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	pid, stop, done := cmd.Process.Pid, make(chan struct{}), make(chan float64)
	go func() {
		var hwm float64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v, err := procField(pid, "status", "VmHWM:"); err == nil { // a zombie has no Vm lines
				hwm = v
			}
			select {
			case <-stop:
				done <- hwm
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(stop)
	hwm := <-done
	if ctx.Err() != nil {
		return 0, cmd.ProcessState, fmt.Errorf("%s: interrupted", cmd.Args[0])
	}
	if err != nil {
		return 0, cmd.ProcessState, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
	}
	if hwm == 0 {
		return 0, cmd.ProcessState, fmt.Errorf("%s: exited before its VmHWM could be read", cmd.Args[0])
	}
	return hwm, cmd.ProcessState, nil
}
