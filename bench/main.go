// Command bench is Berth's benchmark harness, run as root by `make bench`
// from the repository root. Each row measures berth and, beside it in the
// same run, a baseline: the tool underneath it (runc, skopeo), another
// way of doing the same thing (--network none, berth without the API
// service) or a reference (a minimal Go process). It compares medians
// with the targets of the issues; see the method constant in report.go
// for what each row measures. It prints a markdown table and rewrites
// bench/RESULTS.md.
//
// Flags, or the environment variables in brackets (handy with make):
// -bench LIST [BERTH_BENCH] (all, or a comma list of run-busybox,
// run-hello, run-bridge, cli-rss, run-detached, monitor-pss, service,
// pull; a prefix such as "run" selects a group), -runs N
// [BERTH_BENCH_RUNS] (40), -pulls N [BERTH_BENCH_PULLS] (7), -results FILE
// ("" to skip). Everything it makes lives in one temporary directory,
// removed at the end (after `berth rm -f` of leftover containers and
// unmounting leftover mounts), also after a failure or SIGINT; the
// isolated default bridge and iptables chains go too.
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

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/internal/testutil"
)

// benchNames are the benchmarks, in the order they run.
var benchNames = []string{"run-busybox", "run-hello", "run-bridge", "cli-rss", "run-detached", "monitor-pss", "service", "pull"}

// benchEnv is what the benchmarks share.
type benchEnv struct {
	berth string             // absolute path of the berth binary
	reg   *testutil.Registry // started on first use
	box   *boxRoot           // the rows sharing a busybox root; made on first use
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
		results = append(results, runBench(t, env, name, *runs, *pulls)...)
	}
	fmt.Print("\n" + table(results))
	if *resultsFile != "" {
		t.check(writeResults(*resultsFile, info, results, selected), "write results")
		log.Printf("wrote %s", *resultsFile)
	}
	return 0
}

// runBench runs one named benchmark, starting the registry if it needs
// it, and returns its rows (cli-rss has two, service three).
func runBench(t *benchTB, env *benchEnv, name string, runs, pulls int) []result {
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
	case "run-bridge":
		return []result{benchBridge(t, env.busybox(t, registry()), runs)}
	case "cli-rss":
		return benchCLIRSS(t, env.busybox(t, registry()))
	case "run-detached":
		return []result{benchDetached(t, env.busybox(t, registry()))}
	case "monitor-pss":
		return benchMonitorPSS(t, env.busybox(t, registry()))
	case "service":
		return benchService(t, env.busybox(t, registry()))
	default: // pull
		log.Printf("pull: building and pushing the %d-layer image", pullLayers)
		img, size := randomImage(t)
		ref, _ := registry().Push(t, pullRepo, img)
		return []result{benchPull(t, env, ref, size, pulls)}
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
		{"crun", first("crun", "--version")},
		{"berth's default OCI runtime", engine.DefaultRuntime()},
		{"skopeo", first("skopeo", "--version")},
		{"Go", runtime.Version()},
		{"Load average at start", first("cat", "/proc/loadavg")},
		{"Scratch directory", filepath.Dir(base) + " (" + first("findmnt", "-no", "FSTYPE", "-T", base) + ")"},
	}
}
