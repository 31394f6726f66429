package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// eventMsg is one line of `docker events --format '{{json .}}'`.
type eventMsg struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	TimeNano int64 `json:"timeNano"`
}

// dockerEvents runs `docker events` between since and until with args
// and returns the events, failing on any null Attributes.
func dockerEvents(t *testing.T, svc *service, cfg string, since, until time.Time, args ...string) []eventMsg {
	t.Helper()
	base := []string{"events", "--format", "{{json .}}", "--until", strconv.FormatInt(until.Unix()+1, 10)}
	if !since.IsZero() {
		base = append(base, "--since", strconv.FormatInt(since.Unix(), 10))
	}
	r := svc.docker(t, cfg, append(base, args...)...)
	if r.code != 0 {
		t.Fatalf("docker events %v: exit %d: %s", args, r.code, r.stderr)
	}
	var out []eventMsg
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, `"Attributes":null`) {
			t.Errorf("null Attributes: %s", line)
		}
		var m eventMsg
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// actions lists the container id's actions in order.
func actions(evs []eventMsg, id string) []string {
	var out []string
	for _, e := range evs {
		if e.Type == "container" && e.Actor.ID == id {
			out = append(out, e.Action)
		}
	}
	return out
}

// TestEventsFromEngine checks that events come from the engine whoever
// acts (the berth CLI, the monitor's cleanup, --rm, restart policies),
// read through the privilege-separated service with the docker CLI.
func TestEventsFromEngine(t *testing.T) {
	requireDocker(t)
	e := newEnv(t)
	_, ref := busybox(t)
	svc := startService(t, e)
	svc.requireSplit(t)
	cfg := t.TempDir()
	start := time.Now()
	time.Sleep(1100 * time.Millisecond) // since is in whole seconds

	self := strings.TrimSpace(e.ok("run", "-d", "--label", "tier=front", "--name", "selfexit", ref, "true"))
	e.ok("wait", self)
	rm := strings.TrimSpace(e.ok("run", "-d", "--rm", ref, "sh", "-c", "exit 3"))
	retry := strings.TrimSpace(e.ok("run", "-d", "--restart", "on-failure:2", ref, "false"))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out := e.ok("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", retry)
		if strings.TrimSpace(out) == "2 exited" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for e.berth("inspect", rm).code == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	e.ok("volume", "create", "evvol")
	e.ok("volume", "rm", "evvol")
	time.Sleep(200 * time.Millisecond)
	end := time.Now()

	all := dockerEvents(t, svc, cfg, start, end)
	check := func(id string, want []string) {
		t.Helper()
		if got := actions(all, id); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("container %.12s: actions %v, want %v", id, got, want)
		}
	}
	check(self, []string{"create", "start", "die"})
	check(rm, []string{"create", "start", "die", "destroy"})
	check(retry, []string{"create", "start", "die", "start", "die", "start", "die"})
	for _, ev := range all {
		if ev.Actor.ID == self && ev.Action == "die" && ev.Actor.Attributes["exitCode"] != "0" {
			t.Errorf("die of selfexit: exitCode %q", ev.Actor.Attributes["exitCode"])
		}
		if ev.Actor.ID == rm && ev.Action == "die" && ev.Actor.Attributes["exitCode"] != "3" {
			t.Errorf("die of the --rm container: exitCode %q", ev.Actor.Attributes["exitCode"])
		}
		if ev.Actor.ID == self && (ev.Actor.Attributes["name"] != "selfexit" || ev.Actor.Attributes["image"] != ref || ev.Actor.Attributes["tier"] != "front") {
			t.Errorf("selfexit %s attributes %v: want name, image and label", ev.Action, ev.Actor.Attributes)
		}
	}

	// Filters narrow as Docker's.
	byName := dockerEvents(t, svc, cfg, start, end, "--filter", "container=selfexit")
	if len(byName) != 3 || strings.Join(actions(byName, self), ",") != "create,start,die" {
		t.Errorf("container=selfexit: %+v", byName)
	}
	dies := dockerEvents(t, svc, cfg, start, end, "--filter", "type=container", "--filter", "event=die", "--filter", "event=destroy")
	for _, ev := range dies {
		if ev.Type != "container" || ev.Action != "die" && ev.Action != "destroy" {
			t.Errorf("event=die,destroy gave %s", ev.Action)
		}
	}
	if len(dies) != 6 {
		t.Errorf("event=die,destroy: %d events, want 6 (1+2+3)", len(dies))
	}
	if got := dockerEvents(t, svc, cfg, start, end, "--filter", "label=tier=front"); len(got) != 3 {
		t.Errorf("label=tier=front: %d events, want 3", len(got))
	}
	if got := dockerEvents(t, svc, cfg, start, end, "--filter", "label=tier=front", "--filter", "event=start"); len(got) != 1 {
		t.Errorf("label and event (AND): %d events, want 1", len(got))
	}
	vols := dockerEvents(t, svc, cfg, start, end, "--filter", "type=volume", "--filter", "volume=evvol")
	if len(vols) != 2 || vols[0].Action != "create" || vols[1].Action != "destroy" {
		t.Errorf("volume=evvol: %+v", vols)
	}
	if got := dockerEvents(t, svc, cfg, start, end, "--filter", "image="+ref, "--filter", "type=container"); len(got) != len(actions(all, self))+len(actions(all, rm))+len(actions(all, retry)) {
		t.Errorf("image=%s: %d events", ref, len(got))
	}

	// Without --since, only events from now on: none of the above.
	now := time.Now()
	if got := dockerEvents(t, svc, cfg, time.Time{}, now.Add(time.Second)); len(got) != 0 {
		t.Errorf("follow from now replayed %d old events: %+v", len(got), got[0])
	}
}

// TestEventsCompose runs docker-compose 1.29.2 `up` in the foreground
// with a one-shot service, and `logs`: both read /events and must end.
func TestEventsCompose(t *testing.T) {
	_, ref, svc := composeSetup(t)
	cfg, dir := t.TempDir(), t.TempDir()
	project := fmt.Sprintf("bevents%d", os.Getpid())
	file := fmt.Sprintf("version: \"3.7\"\nservices:\n  once:\n    image: %s\n    command: echo hi\n", ref)
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command("/usr/bin/docker-compose", append([]string{"-p", project, "--no-ansi"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+svc.sock, "DOCKER_CONFIG="+cfg, "COMPOSE_INTERACTIVE_NO_CLI=1")
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("docker-compose %v did not finish:\n%s", args, out)
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("docker-compose %v: %v", args, err)
		}
		return string(out), code
	}
	t.Cleanup(func() { compose("down", "-v", "--timeout", "1") })
	out, code := compose("up")
	if code != 0 || !strings.Contains(out, "hi") || strings.Contains(out, "Traceback") {
		t.Fatalf("docker-compose up: exit %d\n%s", code, out)
	}
	out, code = compose("logs")
	if code != 0 || !strings.Contains(out, "hi") {
		t.Fatalf("docker-compose logs: exit %d\n%s", code, out)
	}
	if _, code := compose("down", "-v"); code != 0 {
		t.Fatalf("docker-compose down -v: exit %d", code)
	}
}
