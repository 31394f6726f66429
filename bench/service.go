package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	serviceTrials   = 3   // fresh services for service-rss
	serviceRequests = 20  // requests between the two RSS readings
	serviceRuns     = 10  // runs of each side of service-run and service-ps
	psContainers    = 100 // containers created for service-ps
)

// service is one running `berth system service` on a unix socket.
type service struct {
	cmd    *exec.Cmd
	sock   string
	out    bytes.Buffer  // its stdout and stderr
	done   chan struct{} // closed when it has exited
	client *http.Client
}

// startService starts the API service on the shared root and waits (at
// most 10 s) for its socket to appear. A cleanup stops it.
func startService(t *benchTB, box *boxRoot) *service {
	dir := t.TempDir()
	s := &service{sock: filepath.Join(dir, "s.sock"), done: make(chan struct{})}
	s.cmd = exec.Command(box.bin, box.args("system", "service", "-H", "unix://"+s.sock)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	t.check(s.cmd.Start(), "start berth system service")
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", s.sock)
		}}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(s.sock); err == nil {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("berth system service exited: %v\n%s", s.cmd.ProcessState, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth system service: no socket %s after 10 s\n%s", s.sock, s.out.String())
		}
	}
}

// stop ends the service with SIGTERM, or SIGKILL after 10 s.
func (s *service) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		log.Printf("service: no exit 10 s after SIGTERM, killing it")
		s.cmd.Process.Kill()
		<-s.done
	}
}

// memory sums field ("VmRSS:" from status, or "Pss:" from smaps_rollup)
// in kB over the service's processes: the one started and its children
// (as root, the unprivileged API server it re-executes).
func (s *service) memory(file, field string) (float64, error) {
	pids := []string{strconv.Itoa(s.cmd.Process.Pid)}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", s.cmd.Process.Pid))
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		pids = append(pids, strings.Fields(string(data))...)
	}
	var sum float64
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		v, err := procField(pid, file, field)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// get sends GET path and fails unless the answer is 200.
func (s *service) get(path string) error {
	resp, err := s.client.Get("http://berth" + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

// benchService measures the API service: its memory (service-rss), and
// the docker CLI through it against berth directly for a run
// (service-run) and a listing of 100 containers (service-ps).
func benchService(t *benchTB, box *boxRoot) []result {
	results := serviceMemory(t, box)
	docker, err := exec.LookPath("docker")
	if err != nil {
		log.Printf("service: no docker CLI (%v): service-run and service-ps skipped", err)
		return results
	}
	s := startService(t, box)
	t.check(s.get("/_ping"), "service ping")
	config := t.TempDir()
	dockerCmd := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(t.Context(), docker, args...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+s.sock, "DOCKER_CONFIG="+config, "DOCKER_CLI_HINTS=false")
		return cmd
	}
	timed := func(mk func() *exec.Cmd) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			d, _, err := runCmd(t.Context(), mk())
			return d, err
		}
	}
	berth := func(args ...string) func() *exec.Cmd {
		return func() *exec.Cmd { return exec.CommandContext(t.Context(), box.bin, box.args(args...)...) }
	}

	log.Printf("service-run: warm-up, then %d runs each of docker via the service and berth, alternating", serviceRuns)
	ds, bs := alternate(t, serviceRuns,
		timed(func() *exec.Cmd { return dockerCmd("run", "--rm", box.ref, "true") }),
		timed(berth("run", "--rm", box.ref, "true")))
	results = append(results, result{
		name: "service-run", what: "docker run --rm busybox true through the service",
		baseline: "berth run --rm busybox true", berth: ds, base: bs,
	})

	log.Printf("service-ps: creating %d containers", psContainers)
	var ids []string
	for len(ids) < psContainers { // 10 at a time
		cmds := make([]*exec.Cmd, min(10, psContainers-len(ids)))
		for i := range cmds {
			cmds[i] = berth("create", box.ref, "true")()
		}
		got, err := startAll(cmds)
		ids = append(ids, got...)
		t.check(err, "berth create")
	}
	listed, err := dockerCmd("ps", "-aq").Output()
	t.check(err, "docker ps -aq")
	if n := len(strings.Fields(string(listed))); n != psContainers {
		t.Fatalf("docker ps -aq lists %d containers, want %d", n, psContainers)
	}
	log.Printf("service-ps: warm-up, then %d listings each of docker ps -a via the service and berth ps -a, alternating", serviceRuns)
	dp, bp := alternate(t, serviceRuns, timed(func() *exec.Cmd { return dockerCmd("ps", "-a") }), timed(berth("ps", "-a")))
	results = append(results, result{
		name: "service-ps", what: fmt.Sprintf("docker ps -a through the service, %d containers", psContainers),
		baseline: "berth ps -a", berth: dp, base: bp,
	})
	_, err = run(t.Context(), box.bin, box.args(append([]string{"rm", "-f"}, ids...)...)...)
	t.check(err, "berth rm -f")
	s.stop()
	return results
}

// serviceMemory reads the service's memory 0.5 s after its socket
// appears and again once it is idle after serviceRequests requests (1 s
// after the last; the target is idle memory), on serviceTrials fresh
// services: the PSS summed over its processes (the helper and the API
// server share one binary, whose pages PSS counts once), and the VmRSS
// summed (shared pages counted in each process).
func serviceMemory(t *benchTB, box *boxRoot) []result {
	paths := []string{"/_ping", "/v1.50/version", "/v1.50/info", "/v1.50/containers/json?all=1", "/v1.50/images/json"}
	var idlePSS, busyPSS, idleRSS, busyRSS sample
	read := func(s *service, pss, rss *sample) {
		v, err := s.memory("smaps_rollup", "Pss:")
		t.check(err, "service PSS")
		*pss = append(*pss, v)
		v, err = s.memory("status", "VmRSS:")
		t.check(err, "service RSS")
		*rss = append(*rss, v)
	}
	for i := range serviceTrials {
		log.Printf("service-memory: service %d of %d", i+1, serviceTrials)
		s := startService(t, box)
		time.Sleep(500 * time.Millisecond)
		read(s, &idlePSS, &idleRSS)
		for j := range serviceRequests {
			t.check(s.get(paths[j%len(paths)]), "service request")
		}
		time.Sleep(time.Second)
		read(s, &busyPSS, &busyRSS)
		s.stop()
	}
	return []result{{
		name: "service-pss", what: fmt.Sprintf("service PSS, all its processes, idle after %d requests", serviceRequests),
		baseline: "the same service before any request", unit: kilobytes, berth: busyPSS, base: idlePSS,
		targets: []target{{medianAtMost, 20 * 1024, "issue 6"}, {maxAtMost, 20 * 1024, "issue 6"}},
	}, {
		name: "service-rss", what: fmt.Sprintf("service VmRSS summed over its processes, idle after %d requests", serviceRequests),
		baseline: "the same service before any request", unit: kilobytes, berth: busyRSS, base: idleRSS,
	}}
}
