package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// unit says what a row's values are.
type unit int

const (
	wallTime  unit = iota // nanoseconds
	kilobytes             // memory, KiB (what the kernel reports as kB)
)

// format renders one value of u: durations in ms below a second, else in
// seconds; memory in KB below 10 MB, else in MB.
func (u unit) format(v float64) string {
	if u == kilobytes {
		if v < 10*1024 {
			return fmt.Sprintf("%.0f KB", v)
		}
		return fmt.Sprintf("%.1f MB", v/1024)
	}
	return formatDur(time.Duration(v))
}

// sample is the measured values of one side of a row, in the row's unit.
type sample []float64

// median is the middle value (the mean of the two middle ones for an even
// count).
func (s sample) median() float64 {
	c := slices.Sorted(slices.Values(s))
	return (c[(len(c)-1)/2] + c[len(c)/2]) / 2
}

// targetKind says what a target bounds.
type targetKind int

const (
	ratioAtMost  targetKind = iota // berth median / baseline median
	extraAtMost                    // berth median − baseline median, in the row's unit
	medianAtMost                   // berth median, in the row's unit
	maxAtMost                      // largest berth value, in the row's unit
)

// target is a ceiling on one figure of a row and where it comes from.
type target struct {
	kind   targetKind
	limit  float64
	source string
}

// result is one row of the table. base is empty when the baseline could
// not be measured on this machine (printed as n/a).
type result struct {
	name, what, baseline string
	unit                 unit
	berth, base          sample
	targets              []target
}

func (r result) ratio() float64 { return r.berth.median() / r.base.median() }
func (r result) extra() float64 { return r.berth.median() - r.base.median() }

// verdict says which targets the row meets.
func (r result) verdict() string {
	var parts []string
	for _, tg := range r.targets {
		var got float64
		var bound string
		switch tg.kind {
		case ratioAtMost:
			got, bound = r.ratio(), fmt.Sprintf("ratio ≤ %.2f", tg.limit)
		case extraAtMost:
			got, bound = r.extra(), "extra ≤ "+r.unit.format(tg.limit)
		case medianAtMost:
			got, bound = r.berth.median(), "median ≤ "+r.unit.format(tg.limit)
		case maxAtMost:
			got, bound = slices.Max(r.berth), "max ≤ "+r.unit.format(tg.limit)
		}
		mark := "met"
		switch {
		case (tg.kind == ratioAtMost || tg.kind == extraAtMost) && len(r.base) == 0:
			mark = "n/a"
		case got > tg.limit:
			mark = "MISSED"
		}
		parts = append(parts, fmt.Sprintf("%s (%s) %s", bound, tg.source, mark))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, "; ")
}

// formatDur renders d in ms below a second, else in seconds.
func formatDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// spread renders a sample as "median (min–max)", or n/a when empty.
func (r result) spread(s sample) string {
	if len(s) == 0 {
		return "n/a"
	}
	if len(s) == 1 {
		return r.unit.format(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", r.unit.format(s.median()), r.unit.format(slices.Min(s)), r.unit.format(slices.Max(s)))
}

// table renders results as a markdown table.
func table(results []result) string {
	var b strings.Builder
	b.WriteString("| Benchmark | Berth median (min–max) | Baseline | Baseline median (min–max) | Extra | Ratio | Targets | Values each |\n" +
		"|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		extra, ratio, n := "n/a", "n/a", fmt.Sprint(len(r.berth))
		if len(r.base) > 0 {
			sign := "+"
			if r.extra() < 0 {
				sign = "−"
			}
			extra = sign + r.unit.format(abs(r.extra()))
			ratio = fmt.Sprintf("**%.2f**", r.ratio())
			if len(r.base) != len(r.berth) {
				n = fmt.Sprintf("%d / %d", len(r.berth), len(r.base))
			}
		}
		fmt.Fprintf(&b, "| `%s`: %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.name, r.what, r.spread(r.berth), r.baseline, r.spread(r.base), extra, ratio, r.verdict(), n)
	}
	return b.String()
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
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
	b.WriteString("\n## Results\n\nMedians, with the smallest and largest value in brackets; the two sides of a row ran " +
		"in the same run, alternately where they are commands. Extra = berth median − baseline median; " +
		"ratio = berth median / baseline median.\n\n" + table(results))
	b.WriteString("\n## Method\n\n" + method + "\n## Running\n\n" + running)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

const method = `- **run-busybox**: ` + "`berth --root R --runroot RR run --rm --network none IMG true`" + ` with the
  busybox-static test image, pushed to a docker-registry on 127.0.0.1 and pulled into R beforehand.
  Baseline: ` + "`runc run`" + ` on a bundle whose rootfs is the same image unpacked into a plain directory and
  whose config.json comes from berth's runtime.Spec (same namespaces, mounts, seccomp profile), written
  before the clock starts. Every run uses a new container id. berth runs with its default OCI runtime
  (crun when installed, see ARCHITECTURE.md "The OCI runtime"); this row carries the issues' targets.
  **run-busybox-runc**: the same berth command with ` + "`--runtime runc`" + ` against the same runc
  baseline: the engine's cost over the runtime it drives. **run-busybox-crun**: berth (crun) against
  ` + "`crun run`" + ` on the plain-directory bundle driven through package ociruntime, as berth drives it (the
  hybrid-cgroup wrapper, the compiled seccomp program), without the engine: the engine's cost over crun.
  The four sides alternate in one loop.
- **run-hello**: the same with the built-in ` + "`localhost/hello`" + ` image (runs /hello).
- The rows below share one root with the busybox image pulled, and an isolated default network:
  ` + "`--default-bridge bbenchN --default-subnet 10.78.N.0/24 --firewall-prefix BBENCHN`" + ` (N from the
  harness's pid); the bridge and every iptables chain and jump carrying the prefix are removed at the end.
- **run-bridge** (issue 5): ` + "`berth run --rm IMG true`" + ` on the default bridge (veth, address, firewall
  rules, /etc/hosts) against ` + "`berth run --rm --network none IMG true`" + `, alternating, -runs each (40).
  Target: extra ≤ 10 ms.
- **cli-rss** (issue 4d): peak RSS of ` + "`berth run --rm IMG true`" + ` (default network, default runtime).
  **cli-rss**: the CLI's own high-water mark, VmHWM in /proc/PID/status read every millisecond
  until it exits (the last read misses at most its last millisecond); baseline: the peak RSS of
  ` + "`runc run`" + ` alone on the same image (GNU time's %M, see below). Target: median ≤ 20 MB. **cli-rss-tree** (no target): the
  largest peak among berth and every process it reaped (the OCI runtime, its wrapper), as GNU time's
  %M reports it, against the same for ` + "`runc run`" + `; both run under /usr/bin/time, because a child
  this Go harness starts directly (vfork) inherits the harness's own resident set in its ru_maxrss,
  which made earlier versions of this row report the harness (~26 MB) on both sides. 10 runs each.
- **run-detached** (issue 4b): 50 ` + "`berth run -d IMG sleep 600`" + ` processes (default bridge), all
  started at once; the clock runs from the first start until every process has exited 0 and
  ` + "`berth ps -q`" + ` lists 50 containers (polled until it does). Then ` + "`berth rm -f`" + ` of all 50, untimed.
  3 trials. Baseline: the same with ` + "`podman run -d`" + ` and 10 containers in a private podman root when podman
  is installed, else n/a. Target: median ≤ 1 s.
- **monitor-pss** (issue 4c): with 50 detached ` + "`sleep`" + ` containers running, the proportional set size
  (` + "`Pss:`" + ` in /proc/PID/smaps_rollup) of each monitor, found through RUNROOT/containers/ID/monitor.pid.
  Baseline, for reference: 50 copies of a minimal Go program (built on the spot) that starts ` + "`sleep`" + `
  with its stdout and stderr on a pipe, copies them to a file and waits: the least a Go monitor costs.
  PSS shares each shared page among the processes mapping it, so both sides run 50 copies.
  Targets: median and max ≤ 400 KB. **monitor-pss-conmon**: the same 50 containers again under
  Podman's conmon (` + "`BERTH_MONITOR=conmon`" + `, when installed) as the baseline: the monitor berth used before
  its own.
- **service** (issue 6), one ` + "`berth system service -H unix://DIR/s.sock`" + ` on the shared root; the docker
  CLI runs with DOCKER_HOST on that socket and an empty DOCKER_CONFIG.
  - **service-pss** and **service-rss**: the memory of the service 0.5 s after its socket appears
    (baseline column), and again idle, 1 s after 20 requests (4 × _ping, version, info,
    containers/json?all=1, images/json) (berth column); 3 fresh services. Both processes give their
    heap's free pages back to the kernel 0.5 s after their last request (internal/idletrim). Started as root the service is two processes (the
    privileged helper and the unprivileged API server, one binary): service-pss sums their PSS
    (` + "`Pss:`" + ` in smaps_rollup, shared pages counted once), service-rss their VmRSS (shared pages
    counted in each). Target (issue 6's "service RSS ≤ 20 MB", read as the memory the service costs
    the machine): PSS ≤ 20 MB, idle after the requests.
  - **service-run**: ` + "`docker run --rm IMG true`" + ` through the service against ` + "`berth run --rm IMG true`" + `
    directly, both on the default network, alternating, 10 each.
  - **service-ps**: with 100 containers created (` + "`berth create`" + `, not started), ` + "`docker ps -a`" + ` through
    the service against ` + "`berth ps -a`" + ` directly, alternating, 10 each.
- **pull**: ` + "`berth pull`" + ` into a fresh --root (download, digest checks, unpack into overlay snapshots)
  of a 6-layer image of random bytes (~17 MB per layer, fixed seeds) from the loopback registry.
  Baseline: ` + "`skopeo copy --src-tls-verify=false docker://… oci:DIR`" + ` into a fresh directory (download
  and digest checks, no unpack). The previous directory is removed and the disk synced before each pull.
- Each side of a timed row gets one untimed warm-up first (not run-detached, whose trials are long). Targets: run ratio ≤ 1.5 (issue 2) and
  ≤ 1.25 (issue 4); pull ratio ≤ 1.5.
`

const running = "`sudo make bench` runs every row (a few minutes on 2 cores). One row or a group: " +
	"`go run ./bench -bench run-bridge,service -results \"\"` (or `BERTH_BENCH=run-bridge make bench`); " +
	"a prefix selects a group (`run` = run-busybox, run-hello, run-bridge, run-detached). `-runs N` sets the " +
	"runs of run-busybox, run-hello and run-bridge (default 40), `-pulls N` the pulls (default 7). " +
	"`-results \"\"` leaves this file alone.\n"
