package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eventLine is the docker CLI's default `events` line: time (RFC 3339,
// nine-digit nanoseconds), type, action, actor ID, sorted attributes.
var eventLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d)) (\S+) (\S+) (\S+)(?: \((.*)\))?$`)

// TestEventsCLI checks `berth events` over the history of a container
// run with --rm: Docker's line, its order and attributes, filters,
// --format, and `system events`.
func TestEventsCLI(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "--rm", "--network", "none", "--name", "evcli", "--label", "tier=front", ref, "true")

	out := e.ok("events", "--since", "1m", "--until", "0s", "--filter", "container=evcli")
	var got []string
	var id string
	var last time.Time
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := eventLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not Docker's event line: %q", line)
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || ts.Before(last) {
			t.Errorf("time %s: %v, or before the previous event", m[1], err)
		}
		last = ts
		if m[2] != "container" || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(m[4]) || id != "" && m[4] != id {
			t.Errorf("want a container event of one 64-hex ID: %q", line)
		}
		id = m[4]
		if m[3] != "attach" { // a foreground run's attach, as Docker's
			got = append(got, m[3])
		}
		attrs := map[string]string{}
		var keys []string
		for _, kv := range strings.Split(m[5], ", ") {
			k, v, _ := strings.Cut(kv, "=")
			attrs[k] = v
			keys = append(keys, k)
		}
		if !sortedStrings(keys) {
			t.Errorf("attributes not sorted: %q", line)
		}
		if attrs["name"] != "evcli" || attrs["image"] != ref || attrs["tier"] != "front" {
			t.Errorf("%s: attributes %v, want name, image and the label", m[3], attrs)
		}
		if m[3] == "die" && attrs["exitCode"] != "0" {
			t.Errorf("die: exitCode %q, want 0", attrs["exitCode"])
		}
	}
	if strings.Join(got, ",") != "create,start,die,destroy" {
		t.Fatalf("actions %v, want create,start,die,destroy\n%s", got, out)
	}

	if out := e.ok("events", "--since", "1m", "--until", "0s", "--filter", "event=start"); len(strings.Split(strings.TrimSpace(out), "\n")) != 1 ||
		!strings.Contains(out, " container start "+id+" ") {
		t.Errorf("--filter event=start:\n%s", out)
	}
	if out := e.ok("system", "events", "--since", "1m", "--until", "0s", "--filter", "type=container", "--filter", "event=die", "--filter", "event=destroy", "--format", "{{.Action}}"); out != "die\ndestroy\n" {
		t.Errorf("system events --format {{.Action}}: %q", out)
	}
	out = e.ok("events", "--since", "1m", "--until", "0s", "--filter", "event=destroy", "--format", "{{json .}}")
	var msg struct {
		Type, Action string
		Actor        struct {
			ID         string
			Attributes map[string]string
		}
		Scope    string `json:"scope"`
		TimeNano int64  `json:"timeNano"`
	}
	if err := json.Unmarshal([]byte(out), &msg); err != nil || msg.Type != "container" || msg.Action != "destroy" ||
		msg.Actor.ID != id || msg.Actor.Attributes["name"] != "evcli" || msg.Scope != "local" || msg.TimeNano == 0 {
		t.Errorf("--format '{{json .}}': %q (%v)", out, err)
	}
	// Errors as the docker CLI's.
	if r := e.berth("events", "--format", "{{.Bogus}}"); r.code != 64 || !strings.HasPrefix(r.stderr, "Error parsing format: ") {
		t.Errorf("bad template: exit %d, %q", r.code, r.stderr)
	}
	if r := e.berth("events", "--filter", "nokey"); r.code != 125 {
		t.Errorf("--filter nokey: exit %d, want 125", r.code)
	}
	if r := e.berth("events", "--since", "0s", "--until", "1h"); r.code != 1 || !strings.Contains(r.stderr, "cannot be after") {
		t.Errorf("since after until: exit %d, %q", r.code, r.stderr)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

// TestEventsCLIFollow follows the log with `berth events` (no --since,
// no --until) while another berth process creates a container: the line
// shows within seconds, and SIGINT ends the follower as the docker CLI
// (status 130).
func TestEventsCLIFollow(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	old := strings.TrimSpace(e.ok("create", "--network", "none", ref, "true")) // before the follow: not shown

	cmd := exec.Command(berthBin, e.args("events", "--filter", "event=create", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")...)
	stdout, pw := io.Pipe() // closed once Wait has copied all the output
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
			pw.Close()
		}
	}()
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(500 * time.Millisecond) // the follower has started reading
	id := strings.TrimSpace(e.ok("create", "--network", "none", ref, "true"))
	e.ok("start", id) // a start: filtered out
	select {
	case line := <-lines:
		if line != "container create "+id {
			t.Errorf("followed %q, want the create of %s (and not %s)", line, id, old)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the create did not show within 5s")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		exited = true
		pw.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("after SIGINT: %v, want exit status 130 as the docker CLI", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not stop the follower within 5s")
	}
	for line := range lines {
		t.Errorf("more output: %q", line)
	}
	e.ok("rm", "-f", id, old)
}
