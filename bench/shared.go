package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/internal/testutil"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// boxRoot is the berth root the rows after run-hello share: the busybox
// test image pulled from the loopback registry, and a default network of
// the harness's own (bridge, subnet, iptables chain prefix), so that the
// rows never touch the host's berth0 or BERTH chains.
type boxRoot struct {
	berthRoot
	ref string   // the busybox image as pulled
	img v1.Image // the same image, for runc bundles
	dir string   // holds root and runroot
}

// busybox returns the shared busybox root, making it on first use. Its
// cleanups remove its containers, then the bridge and chains.
func (e *benchEnv) busybox(t *benchTB, reg *testutil.Registry) *boxRoot {
	if e.box != nil {
		return e.box
	}
	img := testutil.BusyboxImage(t)
	ref, _ := reg.Push(t, "bench/busybox:latest", img)
	dir := t.TempDir()
	// Integration tests use 10.79.0.0/16 and bti*/BTI*; berth's pool
	// hands out 10.78.x from the bottom, so the top of 10.78 is free.
	n := os.Getpid()%50 + 200
	bridge, prefix := fmt.Sprintf("bbench%d", n), fmt.Sprintf("BBENCH%d", n)
	t.Cleanup(func() { removeBridgeAndChains(bridge, prefix) })
	br := newBerthRoot(e.berth, dir)
	br.net = []string{"--default-bridge", bridge, "--default-subnet", fmt.Sprintf("10.78.%d.0/24", n), "--firewall-prefix", prefix}
	t.Cleanup(br.removeContainers)
	_, err := run(t.Context(), br.bin, br.args("pull", "-q", "--tls-verify=false", ref)...)
	t.check(err, "berth pull busybox")
	log.Printf("shared root %s: busybox pulled, default bridge %s, chains %s*", dir, bridge, prefix)
	e.box = &boxRoot{berthRoot: br, ref: ref, img: img, dir: dir}
	return e.box
}

// removeBridgeAndChains deletes the bridge and every iptables chain named
// with prefix, after deleting the jumps to them from the built-in chains:
// all that an engine's default network leaves once its containers are
// gone. Errors are ignored: whatever is absent is already clean.
func removeBridgeAndChains(bridge, prefix string) {
	exec.Command("ip", "link", "del", bridge).Run()
	for _, table := range []string{"nat", "filter"} {
		out, _ := exec.Command("iptables-save", "-t", table).Output()
		var chains []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case strings.HasPrefix(line, ":"+prefix):
				chains = append(chains, strings.TrimPrefix(f[0], ":"))
			case len(f) > 1 && f[0] == "-A" && !strings.HasPrefix(f[1], prefix) && strings.Contains(line, prefix):
				// A jump from a built-in chain; berth's rules carry no
				// quoted comments, so splitting on blanks is exact.
				exec.Command("iptables", append([]string{"-w", "-t", table, "-D"}, f[1:]...)...).Run()
			}
		}
		for _, c := range chains {
			exec.Command("iptables", "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			exec.Command("iptables", "-w", "-t", table, "-X", c).Run()
		}
	}
}

// startAll starts every command at once (one Start after another, no
// waiting in between) and then waits for all of them. It returns the
// trimmed stdout of each, in order, and the first failure.
func startAll(cmds []*exec.Cmd) ([]string, error) {
	outs := make([]strings.Builder, len(cmds))
	errs := make([]strings.Builder, len(cmds))
	var first error
	started := 0
	for i, c := range cmds {
		c.Stdout, c.Stderr = &outs[i], &errs[i]
		if err := c.Start(); err != nil {
			first = err
			break
		}
		started++
	}
	for i, c := range cmds[:started] {
		if err := c.Wait(); err != nil && first == nil {
			first = fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, errs[i].String())
		}
	}
	ids := make([]string, started)
	for i := range ids {
		ids[i] = strings.TrimSpace(outs[i].String())
	}
	return ids, first
}

// waitCount runs list (a command printing one id per line) until it
// prints n lines, at most for limit.
func waitCount(ctx context.Context, list []string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: interrupted", list[0])
		}
		out, err := output(list[0], list[1:]...)
		got := len(strings.Fields(out))
		if err == nil && got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d containers running after %v, want %d (%v)", strings.Join(list, " "), got, limit, n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procField returns the number of field (e.g. "VmRSS:", "Pss:") in
// /proc/PID/file, in kB.
func procField(pid int, file, field string) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == field {
			return strconv.ParseFloat(fs[1], 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/%s: no %s line", pid, file, field)
}
