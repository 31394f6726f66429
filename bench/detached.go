package main

import (
	"context"
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
)

const (
	detachedN      = 50 // containers per run-detached trial and for monitor-pss
	detachedTrials = 3
	podmanN        = 10 // containers per podman trial
)

// detachedTrial starts n commands made by mk at once (each a `run -d`
// printing a container id) and returns the wall time from the first start
// until all have exited 0 and list (a `ps -q`) prints n ids, with the ids
// the commands printed.
func detachedTrial(ctx context.Context, n int, mk func() *exec.Cmd, list []string) (time.Duration, []string, error) {
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmds[i] = mk()
	}
	start := time.Now()
	ids, err := startAll(cmds)
	if err == nil {
		err = waitCount(ctx, list, n, time.Minute)
	}
	return time.Since(start), ids, err
}

// benchDetached measures 50 concurrent `berth run -d IMG sleep 600` until
// all run, detachedTrials times, removing the containers (untimed) after
// each trial; and the same for podman with podmanN containers when podman
// is installed.
func benchDetached(t *benchTB, box *boxRoot) result {
	ctx := t.Context()
	mk := func() *exec.Cmd {
		return exec.CommandContext(ctx, box.bin, box.args("run", "-d", box.ref, "sleep", "600")...)
	}
	list := append([]string{box.bin}, box.args("ps", "-q")...)
	var bs sample
	for i := range detachedTrials {
		log.Printf("run-detached: trial %d of %d: %d × berth run -d at once", i+1, detachedTrials, detachedN)
		d, ids, err := detachedTrial(ctx, detachedN, mk, list)
		t.check(err, "berth run -d")
		bs = append(bs, float64(d))
		_, err = run(ctx, box.bin, box.args(append([]string{"rm", "-f"}, ids...)...)...)
		t.check(err, "berth rm -f")
	}
	baseline := "podman run -d, " + strconv.Itoa(podmanN) + " at once (podman not installed)"
	ps := podmanDetached(t, box.ref)
	if ps != nil {
		baseline = "podman run -d, " + strconv.Itoa(podmanN) + " at once, private podman root"
	}
	return result{
		name: "run-detached", what: fmt.Sprintf("%d × run -d busybox sleep 600 at once (default bridge), until all run", detachedN),
		baseline: baseline, berth: bs, base: ps,
		targets: []target{{medianAtMost, float64(time.Second), "issue 4b"}},
	}
}

// podmanDetached is benchDetached's trial loop for podman, in a private
// --root and --runroot, pulling ref from the loopback registry first; nil
// when podman is not installed.
func podmanDetached(t *benchTB, ref string) sample {
	if _, err := exec.LookPath("podman"); err != nil {
		log.Printf("run-detached: podman not installed, no baseline")
		return nil
	}
	ctx := t.Context()
	dir := t.TempDir()
	p := []string{"podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot")}
	podman := func(args ...string) []string { return append(append([]string{}, p...), args...) }
	t.Cleanup(func() { forceRemove(podman("ps", "-aq"), podman("rm", "-f", "-t", "0")) })
	_, err := run(ctx, "podman", podman("pull", "-q", "--tls-verify=false", ref)[1:]...)
	t.check(err, "podman pull")
	mk := func() *exec.Cmd {
		return exec.CommandContext(ctx, "podman", podman("run", "-d", ref, "sleep", "600")[1:]...)
	}
	var s sample
	for i := range detachedTrials {
		log.Printf("run-detached: podman trial %d of %d: %d × podman run -d at once", i+1, detachedTrials, podmanN)
		d, ids, err := detachedTrial(ctx, podmanN, mk, podman("ps", "-q"))
		t.check(err, "podman run -d")
		s = append(s, float64(d))
		_, err = run(ctx, "podman", podman(append([]string{"rm", "-f", "-t", "0"}, ids...)...)[1:]...)
		t.check(err, "podman rm -f")
	}
	return s
}

// benchMonitorPSS starts detachedN `sleep` containers and reads the PSS
// of each one's monitor (RUNROOT/containers/ID/monitor.pid); the baseline
// is as many copies of a minimal Go monitor. A second row compares the
// same under conmon (BERTH_MONITOR=conmon), when it is installed.
func benchMonitorPSS(t *benchTB, box *boxRoot) []result {
	bs, comm := monitorPSS(t, box, nil)
	gs := goMonitorPSS(t, detachedN)
	baseline := "minimal Go monitor (could not build it)"
	if gs != nil {
		baseline = fmt.Sprintf("minimal Go monitor, %d copies (reference)", detachedN)
	}
	out := []result{{
		name: "monitor-pss", what: fmt.Sprintf("PSS of each monitor (%s), %d detached containers", comm, detachedN),
		baseline: baseline, unit: kilobytes, berth: bs, base: gs,
		targets: []target{{medianAtMost, 400, "issue 4c"}, {maxAtMost, 400, "issue 4c"}},
	}}
	if _, err := exec.LookPath("conmon"); err == nil {
		cs, _ := monitorPSS(t, box, []string{"BERTH_MONITOR=conmon"})
		out = append(out, result{
			name: "monitor-pss-conmon", what: fmt.Sprintf("PSS of each monitor (%s), %d detached containers", comm, detachedN),
			baseline: fmt.Sprintf("conmon (BERTH_MONITOR=conmon), %d containers", detachedN), unit: kilobytes, berth: bs, base: cs,
		})
	}
	return out
}

// monitorPSS starts detachedN `sleep` containers with berth (environment
// env added) and returns each one's monitor PSS and the monitor's name.
func monitorPSS(t *benchTB, box *boxRoot, env []string) (sample, string) {
	ctx := t.Context()
	log.Printf("monitor-pss: starting %d detached containers %v", detachedN, env)
	mk := func() *exec.Cmd {
		c := exec.CommandContext(ctx, box.bin, box.args("run", "-d", box.ref, "sleep", "600")...)
		c.Env = append(os.Environ(), env...)
		return c
	}
	_, ids, err := detachedTrial(ctx, detachedN, mk, append([]string{box.bin}, box.args("ps", "-q")...))
	t.check(err, "berth run -d")
	time.Sleep(time.Second) // let every monitor settle into its wait
	var bs sample
	comm := ""
	for _, id := range ids {
		data, err := os.ReadFile(filepath.Join(box.runroot, "containers", id, "monitor.pid"))
		t.check(err, "monitor pid")
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		t.check(err, "monitor pid")
		pss, err := procField(pid, "smaps_rollup", "Pss:")
		t.check(err, "monitor PSS")
		bs = append(bs, pss)
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && comm == "" {
			comm = strings.TrimSpace(string(c))
		}
	}
	_, err = run(ctx, box.bin, box.args(append([]string{"rm", "-f"}, ids...)...)...)
	t.check(err, "berth rm -f")
	return bs, comm
}

// goMonitorSource is the reference Go monitor: it starts `sleep 600` with
// stdout and stderr on one pipe, copies the pipe to the file named by its
// argument and waits, as a monitor holding a container's stdio would.
const goMonitorSource = `package main

import (
	"io"
	"os"
	"os/exec"
)

func main() {
	log, err := os.Create(os.Args[1])
	if err != nil {
		os.Exit(1)
	}
	r, w, err := os.Pipe()
	if err != nil {
		os.Exit(1)
	}
	c := exec.Command("sleep", "600")
	c.Stdout, c.Stderr = w, w
	if err := c.Start(); err != nil {
		os.Exit(1)
	}
	w.Close()
	io.Copy(log, r)
	c.Wait()
}
`

// goMonitorPSS builds the reference Go monitor (static, with the go
// command that runs the harness), runs n copies, reads the PSS of each and
// kills them with their sleep children. It returns nil, logging why, when
// the program cannot be built.
func goMonitorPSS(t *benchTB, n int) sample {
	ctx := t.Context()
	dir := t.TempDir()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	src, bin := filepath.Join(dir, "main.go"), filepath.Join(dir, "gomonitor")
	t.check(os.WriteFile(src, []byte(goMonitorSource), 0o644), "write Go monitor")
	build := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", bin, src)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local")
	if _, _, err := runCmd(ctx, build); err != nil {
		log.Printf("monitor-pss: no Go reference: %v", err)
		return nil
	}
	procs := make([]*exec.Cmd, 0, n)
	kill := func() {
		for _, p := range procs {
			syscall.Kill(-p.Process.Pid, syscall.SIGKILL) // its own process group: it and its sleep
			p.Wait()
		}
		procs = nil
	}
	t.Cleanup(kill)
	for i := range n {
		c := exec.Command(bin, filepath.Join(dir, fmt.Sprintf("log%d", i)))
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		t.check(c.Start(), "start Go monitor")
		procs = append(procs, c)
	}
	time.Sleep(time.Second)
	var s sample
	for _, p := range procs {
		pss, err := procField(p.Process.Pid, "smaps_rollup", "Pss:")
		t.check(err, "Go monitor PSS")
		s = append(s, pss)
	}
	kill()
	return s
}
