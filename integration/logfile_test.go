package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonEntry is one line of Docker's json-file log.
type jsonEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// readJSONFile decodes every line of a json-file log, failing the test on
// a line that is not one JSON object with exactly Docker's three keys.
func readJSONFile(t *testing.T, path string) []jsonEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []jsonEntry
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("%s line %d has no newline: %q", path, i+1, line)
		}
		var keys map[string]any
		if err := json.Unmarshal([]byte(line), &keys); err != nil || len(keys) != 3 {
			t.Fatalf("%s line %d: %q is not a json-file entry (%v)", path, i+1, line, err)
		}
		var e jsonEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Time.IsZero() {
			t.Fatalf("%s line %d: %q: %v", path, i+1, line, err)
		}
		out = append(out, e)
	}
	return out
}

// numbered is "line-0\n" … "line-(n-1)\n": what the containers below print.
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	return b.String()
}

// printLines is a shell loop printing numbered(0, n), pausing pause
// seconds ("" for none) after each line.
func printLines(n int, pause string) string {
	s := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo line-$i; i=$((i+1)); `, n)
	if pause != "" {
		s += "sleep " + pause + "; "
	}
	return s + "done"
}

// TestJSONFileLog: a detached container's log on disk is Docker's
// json-file format, per stream, byte for byte (a last line without
// newline, a tab, quotes, HTML characters and a long line included).
func TestJSONFileLog(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	long := strings.Repeat("x", 100000)
	script := `printf 'a\tb "q" <&>\n'; echo err >&2; printf '` + long + `\n'; printf 'last'`
	id := strings.TrimSpace(e.ok("run", "-d", "--network", "none", ref, "sh", "-c", script))
	if code := strings.TrimSpace(e.ok("wait", id)); code != "0" {
		t.Fatalf("exit %s", code)
	}
	ents := readJSONFile(t, filepath.Join(e.root, "containers", id, "container.log"))
	var stdout, stderr strings.Builder
	for _, en := range ents {
		switch en.Stream {
		case "stdout":
			stdout.WriteString(en.Log)
		case "stderr":
			stderr.WriteString(en.Log)
		default:
			t.Fatalf("entry with stream %q", en.Stream)
		}
	}
	want := "a\tb \"q\" <&>\n" + long + "\nlast"
	if stdout.String() != want || stderr.String() != "err\n" {
		t.Fatalf("log holds stdout %.80q…, stderr %q", stdout.String(), stderr.String())
	}
	raw, _ := os.ReadFile(filepath.Join(e.root, "containers", id, "container.log"))
	if !strings.Contains(string(raw), `{"log":"a\u0009b \"q\" \u003c\u0026\u003e\n","stream":"stdout","time":"`) {
		t.Errorf("first entry not in Docker's encoding:\n%.200s", raw)
	}
	r := e.berth("logs", id)
	if r.stdout != want || r.stderr != "err\n" {
		t.Fatalf("logs: stdout %.80q…, stderr %q", r.stdout, r.stderr)
	}
	// A foreground run writes the same format.
	e.ok("run", "--name", "fg", "--network", "none", ref, "sh", "-c", `echo out; printf 'end'`)
	fg := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "fg"))
	ents = readJSONFile(t, filepath.Join(e.root, "containers", fg, "container.log"))
	if len(ents) != 2 || ents[0].Log != "out\n" || ents[1].Log != "end" || ents[0].Stream != "stdout" {
		t.Fatalf("foreground log %+v", ents)
	}
	e.ok("rm", id, "fg")
}

// TestLogRotation: --log-opt max-size and max-file rotate the log as
// Docker's json-file driver does, for detached and foreground containers:
// at most max-file files (PATH, PATH.1 …), each rotated one holding at
// least max-size bytes and at most one entry more; `logs` reads them
// oldest first, `--tail` counts across them; `rm` removes them all.
func TestLogRotation(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	const n = 300 // lines of ~60 bytes each in json-file: ~18 KB
	for _, mode := range []string{"-d", "foreground"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"run", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=3"}
			if mode == "-d" {
				args = append(args, "-d")
			}
			out := e.ok(append(args, ref, "sh", "-c", printLines(n, ""))...)
			var id string
			if mode == "-d" {
				id = strings.TrimSpace(out)
				e.ok("wait", id)
			} else {
				id = strings.TrimSpace(e.ok("ps", "-lq", "--no-trunc"))
			}
			dir := filepath.Join(e.root, "containers", id)
			path := filepath.Join(dir, "container.log")
			if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
				t.Errorf("a fourth log file exists (%v)", err)
			}
			var kept []jsonEntry
			for _, p := range []string{path + ".2", path + ".1", path} {
				ents := readJSONFile(t, p)
				if p != path {
					fi, _ := os.Stat(p)
					last, _ := json.Marshal(ents[len(ents)-1])
					if fi.Size() < 1000 || fi.Size() >= 1000+int64(len(last))+16 {
						t.Errorf("%s: %d bytes, want ≥ 1000 and at most one entry more", filepath.Base(p), fi.Size())
					}
				}
				kept = append(kept, ents...)
			}
			var text strings.Builder
			for _, en := range kept {
				text.WriteString(en.Log)
			}
			first := 0
			fmt.Sscanf(text.String(), "line-%d", &first)
			if first == 0 || text.String() != numbered(first, n) {
				t.Fatalf("kept log is not the last lines of the output:\n%.200s…", text.String())
			}
			if got := e.ok("logs", id); got != text.String() {
				t.Fatalf("logs:\n%.200s…\nwant the files' content oldest first", got)
			}
			// The files keep ~27 lines, the live one fewer than 20.
			if got := e.ok("logs", "--tail", "20", id); n-first <= 20 || got != numbered(n-20, n) {
				t.Fatalf("logs --tail 20 (of %d kept lines):\n%s", n-first, got)
			}
			e.ok("rm", id)
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("rm left %s (%v)", dir, err)
			}
		})
	}
}

// TestLogsFollowRotation: `logs -f` follows a container's log across its
// rotations: every line exactly once, in order.
func TestLogsFollowRotation(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	const n = 150
	id := strings.TrimSpace(e.ok("run", "-d", "--network", "none", "--log-opt", "max-size=600", "--log-opt", "max-file=10",
		ref, "sh", "-c", "sleep 0.5; "+printLines(n, "0.01")))
	cmd := exec.Command(berthBin, e.args("logs", "-f", id)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan string)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		done <- b.String()
	}()
	select {
	case got := <-done:
		cmd.Wait()
		if got != numbered(0, n) {
			t.Fatalf("logs -f across rotations got:\n%s", got)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("logs -f did not end with the container")
	}
	files, _ := filepath.Glob(filepath.Join(e.root, "containers", id, "container.log.*"))
	if len(files) < 3 {
		t.Errorf("only %d rotated files: the test did not rotate the log under the reader", len(files))
	}
	e.ok("rm", id)
}

// TestConmonMonitor: with BERTH_MONITOR=conmon (the alternative monitor)
// a detached container runs, logs in the k8s-file format that `logs`
// reads back, and max-file is refused at start, since conmon cannot keep
// rotated files.
func TestConmonMonitor(t *testing.T) {
	if _, err := exec.LookPath("conmon"); err != nil {
		t.Skip("conmon not installed")
	}
	e := newEnv(t)
	_, ref := busybox(t)
	vars := []string{"BERTH_MONITOR=conmon"}
	r := e.berthEnv(vars, "run", "-d", "--network", "none", ref, "sh", "-c", `echo one; printf two`)
	if r.code != 0 {
		t.Fatalf("run -d under conmon: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	e.ok("wait", id)
	raw, _ := os.ReadFile(filepath.Join(e.root, "containers", id, "container.log"))
	if !strings.Contains(string(raw), " stdout F one\n") {
		t.Errorf("conmon's log is not k8s-file:\n%s", raw)
	}
	if got := e.ok("logs", id); got != "one\ntwo" {
		t.Errorf("logs of a conmon container: %q", got)
	}
	r = e.berthEnv(vars, "run", "-d", "--network", "none", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", ref, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "max-file needs berth-monitor") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("max-file under conmon: %d %q", r.code, r.stderr)
	}
	for _, c := range strings.Fields(e.ok("ps", "-aq")) {
		if status := strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}}", c)); status != "created" && status != "exited" {
			t.Errorf("container %s is %s after a refused start", c, status)
		}
		e.ok("rm", "-f", c)
	}
}

// TestRunDetachedInPipeline: `run -d` in a pipeline whose other end waits
// for EOF returns while the container runs, under either monitor: a
// descriptor the shell left open (9>&1) reaches neither the monitor nor
// the container.
func TestRunDetachedInPipeline(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	monitors := []string{""}
	if _, err := exec.LookPath("conmon"); err == nil {
		monitors = append(monitors, "conmon")
	}
	for _, mon := range monitors {
		quoted := []string{berthBin}
		for _, a := range e.args("run", "-d", "--network", "none", ref, "sleep", "120") {
			quoted = append(quoted, "'"+a+"'")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-c", "( "+strings.Join(quoted, " ")+" ) 9>&1 | cat")
		cmd.Env = append(os.Environ(), "BERTH_MONITOR="+mon)
		out, err := cmd.Output()
		timedOut := ctx.Err() != nil
		cancel()
		if err != nil || timedOut {
			t.Fatalf("monitor %q: the pipeline did not end while the container ran (timed out: %v): %v", mon, timedOut, err)
		}
		e.ok("rm", "-f", strings.TrimSpace(string(out)))
	}
}
