// Command bench is Berth's benchmark harness, run as root by `make bench`
// from the repository root. Each benchmark alternates berth with the tool
// underneath it (runc for run-busybox and run-hello, skopeo for pull) and
// compares medians; see the method constant for what is measured. It
// prints a markdown table and rewrites bench/RESULTS.md.
//
// Flags, or the environment variables in brackets (handy with make):
// -bench LIST [BERTH_BENCH] (all, or a comma list of run-busybox,
// run-hello, run, pull), -runs N [BERTH_BENCH_RUNS] (40), -pulls N
// [BERTH_BENCH_PULLS] (7), -results FILE ("" to skip). Everything it makes
// lives in one temporary directory, removed at the end (after `berth rm -f`
// of leftover containers and unmounting leftover mounts), also after a
// failure or SIGINT.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berthproject/berth/internal/testutil"
)

// benchNames are the benchmarks, in the order they run.
var benchNames = []string{"run-busybox", "run-hello", "pull"}

// benchEnv is what the benchmarks share.
type benchEnv struct {
	berth string             // absolute path of the berth binary
	reg   *testutil.Registry // started on first use
}

// target is a ceiling on the berth/baseline ratio and where it comes from.
type target struct {
	ratio  float64
	source string
}

// result is one row of the table.
type result struct {
	name, what, baseline string
	berth, base          sample
	targets              []target
}

func (r result) ratio() float64 { return float64(r.berth.median()) / float64(r.base.median()) }

// verdict says which targets the ratio meets.
func (r result) verdict() string {
	var parts []string
	for _, tg := range r.targets {
		mark := "met"
		if r.ratio() > tg.ratio {
			mark = "MISSED"
		}
		parts = append(parts, fmt.Sprintf("≤ %.2f (%s) %s", tg.ratio, tg.source, mark))
	}
	return strings.Join(parts, "; ")
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetPrefix("bench: ")
	os.Exit(mainCode())
}

func mainCode() (code int) {
	benchList := flag.String("bench", cmp.Or(os.Getenv("BERTH_BENCH"), "all"), "all, or a comma list of "+strings.Join(benchNames, ", ")+", run")
	runs := flag.Int("runs", envInt("BERTH_BENCH_RUNS", 40), "runs of each side per run benchmark")
	pulls := flag.Int("pulls", envInt("BERTH_BENCH_PULLS", 7), "pulls of each side")
	berthBin := flag.String("berth", "bin/berth", "berth binary (make build)")
	resultsFile := flag.String("results", "bench/RESULTS.md", `markdown file to rewrite ("" to skip)`)
	flag.Parse()

	selected, err := selectBenches(*benchList)
	if err == nil && (*runs < 1 || *pulls < 1) {
		err = fmt.Errorf("-runs and -pulls must be at least 1")
	}
	if err != nil {
		log.Print(err)
		return 2
	}
	if os.Geteuid() != 0 {
		log.Print("benchmarks need root (namespaces, overlay mounts): run `sudo make bench`")
		return 1
	}
	env := &benchEnv{}
	if env.berth, err = filepath.Abs(*berthBin); err == nil {
		_, err = os.Stat(env.berth)
	}
	if err != nil {
		log.Printf("berth binary: %v (run `make build` from the repository root)", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	base, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		log.Print(err)
		return 1
	}
	t := &benchTB{ctx: ctx, base: base}
	t.Cleanup(func() { removeAll(base) }) // runs last
	defer t.runCleanups()
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatal)
			if !ok {
				panic(r) // a bug; the cleanups still run
			}
			log.Printf("FAILED: %s", f.msg)
			code = 1
		}
	}()

	info := machineInfo(base)
	var results []result
	for _, name := range selected {
		results = append(results, runBench(t, env, name, *runs, *pulls))
	}
	fmt.Print("\n" + table(results))
	if *resultsFile != "" {
		t.check(writeResults(*resultsFile, info, results, selected), "write results")
		log.Printf("wrote %s", *resultsFile)
	}
	return 0
}

// runBench runs one named benchmark, starting the registry if it needs it.
func runBench(t *benchTB, env *benchEnv, name string, runs, pulls int) result {
	registry := func() *testutil.Registry {
		if env.reg == nil {
			env.reg = testutil.StartRegistry(t)
			log.Printf("registry at %s", env.reg.Addr)
		}
		return env.reg
	}
	switch name {
	case "run-busybox":
		img := testutil.BusyboxImage(t)
		ref, _ := registry().Push(t, "bench/busybox:latest", img)
		return benchRun(t, env, runImage{name: name, ref: ref, cmd: []string{"true"}, img: img, pull: true,
			label: "run --rm --network none busybox true"}, runs)
	case "run-hello":
		return benchRun(t, env, runImage{name: name, ref: "localhost/hello", img: helloImage(t),
			label: "run --rm --network none localhost/hello"}, runs)
	default: // pull
		log.Printf("pull: building and pushing the %d-layer image", pullLayers)
		img, size := randomImage(t)
		ref, _ := registry().Push(t, pullRepo, img)
		return benchPull(t, env, ref, size, pulls)
	}
}

// selectBenches parses -bench: "all", or names and prefixes ("run").
func selectBenches(list string) ([]string, error) {
	if list == "" || list == "all" {
		return benchNames, nil
	}
	want := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		found := false
		for _, n := range benchNames {
			if n == item || strings.HasPrefix(n, item+"-") {
				want[n], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown benchmark %q (have %s, run, all)", item, strings.Join(benchNames, ", "))
		}
	}
	return slices.DeleteFunc(slices.Clone(benchNames), func(n string) bool { return !want[n] }), nil
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

// machineInfo describes the host as label/value pairs.
func machineInfo(base string) [][2]string {
	first := func(name string, args ...string) string {
		out, err := output(name, args...)
		if err != nil {
			return "unknown (" + err.Error() + ")"
		}
		line, _, _ := strings.Cut(out, "\n")
		return line
	}
	cpu := first("sh", "-c", "grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-")
	return [][2]string{
		{"CPUs (nproc)", fmt.Sprintf("%d × %s", runtime.NumCPU(), strings.TrimSpace(cpu))},
		{"Kernel", first("uname", "-r")},
		{"runc", first("runc", "--version")},
		{"skopeo", first("skopeo", "--version")},
		{"Go", runtime.Version()},
		{"Load average at start", first("cat", "/proc/loadavg")},
		{"Scratch directory", filepath.Dir(base) + " (" + first("findmnt", "-no", "FSTYPE", "-T", base) + ")"},
	}
}

// formatDur renders d in ms below a second, else in seconds.
func formatDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// table renders results as a markdown table.
func table(results []result) string {
	var b strings.Builder
	b.WriteString("| Benchmark | Berth median (min) | Baseline | Baseline median (min) | Ratio | Targets | Runs each |\n" +
		"|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| `%s`: %s | %s (%s) | %s | %s (%s) | **%.2f** | %s | %d |\n",
			r.name, r.what, formatDur(r.berth.median()), formatDur(slices.Min(r.berth)), r.baseline,
			formatDur(r.base.median()), formatDur(slices.Min(r.base)), r.ratio(), r.verdict(), len(r.berth))
	}
	return b.String()
}

// writeResults rewrites path as a markdown report.
func writeResults(path string, info [][2]string, results []result, selected []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Berth benchmark results\n\nWritten by `make bench` (`go run ./bench`) on %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if !slices.Equal(selected, benchNames) {
		fmt.Fprintf(&b, "This run measured only: %s.\n", strings.Join(selected, ", "))
	}
	b.WriteString("\n## Machine\n\n")
	for _, kv := range info {
		fmt.Fprintf(&b, "- %s: %s\n", kv[0], kv[1])
	}
	b.WriteString("\n## Results\n\nWall time of each command, from exec to exit; berth and the baseline ran alternately. " +
		"Ratio = berth median / baseline median.\n\n" + table(results))
	b.WriteString("\n## Method\n\n" + method)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const method = `- **run-busybox**: ` + "`berth --root R --runroot RR run --rm --network none IMG true`" + ` with the
  busybox-static test image, pushed to a docker-registry on 127.0.0.1 and pulled into R beforehand.
  Baseline: ` + "`runc run`" + ` on a bundle whose rootfs is the same image unpacked into a plain directory and
  whose config.json comes from berth's runtime.Spec (same namespaces, mounts, seccomp profile), written
  before the clock starts. Every run uses a new container id.
- **run-hello**: the same with the built-in ` + "`localhost/hello`" + ` image (runs /hello).
- **pull**: ` + "`berth pull`" + ` into a fresh --root (download, digest checks, unpack into overlay snapshots)
  of a 6-layer image of random bytes (~17 MB per layer, fixed seeds) from the loopback registry.
  Baseline: ` + "`skopeo copy --src-tls-verify=false docker://… oci:DIR`" + ` into a fresh directory (download
  and digest checks, no unpack). The previous directory is removed and the disk synced before each pull.
- Each side gets one untimed warm-up first. Targets: run ratio ≤ 1.5 (issue 2) and ≤ 1.25 (issue 4);
  pull ratio ≤ 1.5.
`
