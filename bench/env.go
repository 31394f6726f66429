package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fatal is what benchTB panics with on Fatalf or Skipf; main recovers it,
// runs the cleanups and exits 1.
type fatal struct{ msg string }

// benchTB lets a plain program use the testutil fixtures, which take a
// testing.TB. It implements the methods testutil calls; the embedded nil
// interface makes any other call panic, which main reports as a bug.
type benchTB struct {
	testing.TB
	ctx      context.Context
	base     string // every TempDir lives under it
	cleanups []func()
	failed   bool
}

func (t *benchTB) Helper()                       {}
func (t *benchTB) Context() context.Context      { return t.ctx }
func (t *benchTB) Failed() bool                  { return t.failed }
func (t *benchTB) Cleanup(f func())              { t.cleanups = append(t.cleanups, f) }
func (t *benchTB) Logf(format string, a ...any)  { log.Printf(format, a...) }
func (t *benchTB) Skipf(format string, a ...any) { t.Fatalf("cannot run: "+format, a...) }
func (t *benchTB) Fatalf(format string, a ...any) {
	t.failed = true
	panic(fatal{fmt.Sprintf(format, a...)})
}

// TempDir makes a fresh directory under the base directory, which main
// removes (after unmounting anything left in it) when the run ends.
func (t *benchTB) TempDir() string {
	d, err := os.MkdirTemp(t.base, "tmp-")
	t.check(err, "temp dir")
	return d
}

// check fails the run with what and err when err is not nil.
func (t *benchTB) check(err error, what string) {
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// runCleanups runs the registered cleanups, last registered first; a
// cleanup that panics is reported and the others still run.
func (t *benchTB) runCleanups() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					log.Printf("cleanup: %v", r)
				}
			}()
			t.cleanups[i]()
		}()
	}
	t.cleanups = nil
}

// run runs a command to completion and returns its wall time. Its stdout
// and stderr go to one buffer, quoted in the error when it fails.
func run(ctx context.Context, name string, args ...string) (time.Duration, error) {
	d, _, err := runCmd(ctx, exec.CommandContext(ctx, name, args...))
	return d, err
}

// runCmd is run for a command made with exec.CommandContext(ctx, …) (and
// given its own environment, say); it also returns the process state,
// whose SysUsage is the rusage wait4 reported.
func runCmd(ctx context.Context, cmd *exec.Cmd) (time.Duration, *os.ProcessState, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if ctx.Err() != nil {
		return d, cmd.ProcessState, fmt.Errorf("%s: interrupted", cmd.Args[0])
	}
	if err != nil {
		return d, cmd.ProcessState, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.Bytes())
	}
	return d, cmd.ProcessState, nil
}

// output runs a command and returns its trimmed stdout.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return strings.TrimSpace(string(out)), err
}

// forceRemove runs list (a command printing container ids) and then rm
// with each id appended: cleanup of containers an interrupted run left.
func forceRemove(list, rm []string) {
	ids, err := output(list[0], list[1:]...)
	if err != nil {
		log.Printf("cleanup: %s: %v", strings.Join(list, " "), err)
	}
	for _, id := range strings.Fields(ids) {
		if _, err := run(context.Background(), rm[0], append(rm[1:], id)...); err != nil {
			log.Printf("cleanup: %v", err)
		}
	}
}

// removeAll detaches every mount left at or below dir, deepest first, and
// deletes dir. Mount points are compared as /proc/self/mountinfo escapes
// them, which is fine for the paths the harness makes (no spaces).
func removeAll(dir string) {
	for range 3 { // a detach can uncover a mount stacked underneath
		data, _ := os.ReadFile("/proc/self/mountinfo")
		var targets []string
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
				targets = append(targets, f[4])
			}
		}
		if len(targets) == 0 {
			break
		}
		log.Printf("cleanup: unmounting %d mounts left under %s", len(targets), dir)
		slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
		for _, m := range targets {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				log.Printf("cleanup: unmount %s: %v", m, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		log.Printf("cleanup: %v", err)
	}
}

// berthRoot is one berth state root (--root, --runroot) under a
// directory, with optional global network flags.
type berthRoot struct {
	bin, root, runroot string
	net                []string // --default-bridge … flags; nil for berth's defaults
}

func newBerthRoot(bin, dir string) berthRoot {
	return berthRoot{bin: bin, root: filepath.Join(dir, "root"), runroot: filepath.Join(dir, "runroot")}
}

// args prefixes a berth command with the root and network flags.
func (b berthRoot) args(args ...string) []string {
	return append(append([]string{"--root", b.root, "--runroot", b.runroot}, b.net...), args...)
}

// removeContainers runs `berth rm -f` on every container the root still
// has, so that their mounts and runtime state go away.
func (b berthRoot) removeContainers() {
	if _, err := os.Stat(b.root); err == nil {
		forceRemove(append([]string{b.bin}, b.args("ps", "-aq", "--no-trunc")...),
			append([]string{b.bin}, b.args("rm", "-f")...))
	}
}

// alternate runs a then b, n+1 times, and returns their wall times; the
// first pair is an untimed warm-up.
func alternate(t *benchTB, n int, a, b func() (time.Duration, error)) (sa, sb sample) {
	ss := alternateN(t, n, a, b)
	return ss[0], ss[1]
}

// alternateN runs each side in turn, n+1 rounds, and returns each side's
// wall times; the first round is an untimed warm-up.
func alternateN(t *benchTB, n int, sides ...func() (time.Duration, error)) []sample {
	ss := make([]sample, len(sides))
	for i := range n + 1 {
		for j, side := range sides {
			d, err := side()
			t.check(err, fmt.Sprintf("side %d of %d", j+1, len(sides)))
			if i > 0 {
				ss[j] = append(ss[j], float64(d))
			}
		}
	}
	return ss
}
