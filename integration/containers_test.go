package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runningBusybox pulls busybox into a fresh env and starts a detached
// container named name that sleeps; it returns the env, the image
// reference and the container's full ID.
func runningBusybox(t *testing.T, name string, extra ...string) (*env, string, string) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	args := append([]string{"run", "-d", "--name", name}, extra...)
	id := strings.TrimSpace(e.ok(append(args, ref, "sleep", "300")...))
	return e, ref, id
}

// berthStdin runs berth with stdin.
func (e *env) berthStdin(stdin io.Reader, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(berthBin, e.args(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// wantFail runs berth and fails the test unless it exits code with a
// one-line error mentioning want.
func (e *env) wantFail(code int, want string, args ...string) {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != code || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		e.t.Fatalf("berth %s: exit %d (want %d), stderr %q (want one line with %q)", strings.Join(args, " "), r.code, code, r.stderr, want)
	}
}

func TestExec(t *testing.T) {
	e, ref, _ := runningBusybox(t, "ex")
	if out := e.ok("exec", "ex", "echo", "hi"); out != "hi\n" {
		t.Fatalf("exec echo: %q", out)
	}
	if r := e.berth("exec", "ex", "sh", "-c", "echo out; echo err >&2; exit 3"); r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
		t.Fatalf("exit 3: %+v", r)
	}
	e.wantFail(127, "executable file not found", "exec", "ex", "nosuchcmd")
	e.wantFail(126, "permission denied", "exec", "ex", "/etc/passwd")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-e", "A=b=c", "ex", "sh", "-c", "echo $A"}, "b=c\n"},
		{[]string{"-u", "1000", "ex", "id", "-u"}, "1000\n"},
		{[]string{"-u", "berthtest", "ex", "whoami"}, "berthtest\n"},
		{[]string{"-w", "/tmp", "ex", "pwd"}, "/tmp\n"},
		{[]string{"ex", "sh", "-c", "echo $HOSTNAME"}, strings.TrimSpace(e.ok("inspect", "-f", "{{.Config.Hostname}}", "ex")) + "\n"},
	}
	for _, c := range cases {
		if out := e.ok(append([]string{"exec"}, c.args...)...); out != c.want {
			t.Errorf("exec %v: %q, want %q", c.args, out, c.want)
		}
	}
	if r := e.berthStdin(strings.NewReader("from stdin"), "exec", "-i", "ex", "cat"); r.code != 0 || r.stdout != "from stdin" {
		t.Fatalf("exec -i: %+v", r)
	}
	// Without -i, stdin is not passed.
	if r := e.berthStdin(strings.NewReader("ignored"), "exec", "ex", "cat"); r.code != 0 || r.stdout != "" {
		t.Fatalf("exec without -i read stdin: %+v", r)
	}
	// -t gives the process a terminal.
	if out := e.ok("exec", "-t", "ex", "sh", "-c", "ls -l /proc/self/fd/0"); !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("exec -t: %q", out)
	}
	// -it from a terminal: raw mode, both directions, the exit code.
	if _, err := exec.LookPath("script"); err == nil {
		line := berthBin + " " + strings.Join(e.args("exec", "-it", "ex", "sh", "-c"), " ") + " 'read x; echo got $x; exit 7'"
		cmd := exec.Command("script", "-qec", line, "/dev/null")
		cmd.Stdin = strings.NewReader("typed\n")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 || !strings.Contains(string(out), "got typed") {
			t.Fatalf("exec -it: %v: %q", err, out)
		}
	}
	// -d returns at once; the process runs on.
	if out := e.ok("exec", "-d", "ex", "sh", "-c", "sleep 0.2; touch /tmp/detached"); out != "" {
		t.Fatalf("exec -d printed %q", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.berth("exec", "ex", "ls", "/tmp/detached").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("exec -d: the process never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// -d -t: the process gets a terminal that outlives berth (it would die
	// of a hang-up otherwise) and the command returns at once.
	start := time.Now()
	if out := e.ok("exec", "-d", "-t", "ex", "sh", "-c", "sleep 1; [ -t 1 ] && touch /tmp/detached-tty"); out != "" {
		t.Fatalf("exec -d -t printed %q", out)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Fatalf("exec -d -t took %s: it waited for the process", d)
	}
	for deadline = time.Now().Add(6 * time.Second); e.berth("exec", "ex", "ls", "/tmp/detached-tty").code != 0; {
		if time.Now().After(deadline) {
			t.Fatal("exec -d -t: the process did not live on with its terminal")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Docker's exit 126 for a user it cannot find; -d reports it as a
	// failed request (exit 1).
	e.wantFail(126, "unable to find user nosuch: no matching entries in passwd file", "exec", "-u", "nosuch", "ex", "true")
	e.wantFail(1, "unable to find user nosuch", "exec", "-d", "-u", "nosuch", "ex", "true")
	e.wantFail(1, "No such container: nosuch", "exec", "nosuch", "true")
	e.ok("stop", "-t", "0", "ex")
	e.wantFail(1, "is not running", "exec", "ex", "true")
	// A created container is not running either.
	e.ok("create", "--name", "fresh", ref, "true")
	e.wantFail(1, "is not running", "exec", "fresh", "true")
}

func TestInspect(t *testing.T) {
	e, ref, id := runningBusybox(t, "insp", "-e", "FOO=bar", "-l", "k=v", "--restart", "on-failure:2", "-w", "/tmp", "--dns", "10.9.9.9")
	var got []map[string]any
	if err := json.Unmarshal([]byte(e.ok("inspect", "insp")), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect output: %v, %d objects", err, len(got))
	}
	var c struct {
		Id, Name, Image, Driver, LogPath, Path string
		Args                                   []string
		State                                  struct {
			Status                string
			Running, Paused       bool
			Pid, ExitCode         int
			StartedAt, FinishedAt string
		}
		Config struct {
			Env, Cmd   []string
			Labels     map[string]string
			WorkingDir string
			Image      string
		}
		HostConfig struct {
			RestartPolicy struct {
				Name              string
				MaximumRetryCount int
			}
			NetworkMode string
			Dns         []string
		}
		NetworkSettings struct {
			Networks map[string]struct {
				IPAddress, Gateway, MacAddress, NetworkID, EndpointID string
				IPPrefixLen                                           int
			}
		}
	}
	data, _ := json.Marshal(got[0])
	json.Unmarshal(data, &c)
	switch {
	case c.Id != id, c.Name != "/insp", !strings.HasPrefix(c.Image, "sha256:"), c.Driver != "overlay":
		t.Fatalf("identity: %+v", c)
	case c.State.Status != "running" || !c.State.Running || c.State.Pid <= 0 || c.State.StartedAt == "":
		t.Fatalf("state: %+v", c.State)
	case c.Path != "sleep" || !slices.Equal(c.Args, []string{"300"}) || !slices.Equal(c.Config.Cmd, []string{"sleep", "300"}):
		t.Fatalf("command: %s %v / %v", c.Path, c.Args, c.Config.Cmd)
	case !slices.Contains(c.Config.Env, "FOO=bar") || c.Config.Labels["k"] != "v" || c.Config.WorkingDir != "/tmp" || c.Config.Image != ref:
		t.Fatalf("config: %+v", c.Config)
	case c.HostConfig.RestartPolicy.Name != "on-failure" || c.HostConfig.RestartPolicy.MaximumRetryCount != 2 || c.HostConfig.NetworkMode != "bridge" || !slices.Equal(c.HostConfig.Dns, []string{"10.9.9.9"}):
		t.Fatalf("host config: %+v", c.HostConfig)
	}
	if _, err := os.Stat(c.LogPath); err != nil {
		t.Fatalf("LogPath: %v", err)
	}
	br, ok := c.NetworkSettings.Networks["bridge"]
	if !ok || br.IPAddress == "" || br.Gateway == "" || br.MacAddress == "" || br.NetworkID == "" || len(br.EndpointID) != 64 || br.IPPrefixLen != 24 {
		t.Fatalf("networks: %+v", c.NetworkSettings.Networks)
	}
	// The container sees the address inspect reports.
	if out := e.ok("exec", "insp", "cat", "/etc/hosts"); !strings.Contains(out, br.IPAddress) {
		t.Fatalf("inspect IP %s not in /etc/hosts:\n%s", br.IPAddress, out)
	}
	// Resource, security and mount settings as Docker's HostConfig.
	host := t.TempDir()
	e.ok("create", "--name", "insp2", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50",
		"--ulimit", "nofile=100:200", "--init", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--read-only",
		"--security-opt", "no-new-privileges", "--privileged", "-v", host+":/h:ro", "-v", "ivol:/v", ref, "true")
	var hc []struct {
		HostConfig struct {
			Binds            []string
			Memory, NanoCpus int64
			PidsLimit        *int64
			Ulimits          []struct {
				Name       string
				Soft, Hard int64
			}
			Init            *bool
			CapAdd, CapDrop []string
			Privileged      bool
			ReadonlyRootfs  bool
			SecurityOpt     []string
			LogConfig       struct{ Type string }
		}
		Mounts []struct {
			Type, Name, Source, Destination, Mode string
			RW                                    bool
		}
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", "insp2")), &hc); err != nil || len(hc) != 1 {
		t.Fatalf("inspect insp2: %v", err)
	}
	h := hc[0].HostConfig
	switch {
	case !slices.Equal(h.Binds, []string{host + ":/h:ro", "ivol:/v"}):
		t.Fatalf("Binds %v", h.Binds)
	case h.Memory != 64<<20 || h.NanoCpus != 5e8 || h.PidsLimit == nil || *h.PidsLimit != 50:
		t.Fatalf("limits %+v", h)
	case len(h.Ulimits) != 1 || h.Ulimits[0].Name != "nofile" || h.Ulimits[0].Soft != 100 || h.Ulimits[0].Hard != 200:
		t.Fatalf("ulimits %+v", h.Ulimits)
	case h.Init == nil || !*h.Init || !slices.Equal(h.CapAdd, []string{"CAP_NET_ADMIN"}) || !slices.Equal(h.CapDrop, []string{"CAP_CHOWN"}):
		t.Fatalf("init/caps %+v", h)
	case !h.Privileged || !h.ReadonlyRootfs || !slices.Equal(h.SecurityOpt, []string{"no-new-privileges"}) || h.LogConfig.Type != "json-file":
		t.Fatalf("security %+v", h)
	}
	ms := hc[0].Mounts
	if len(ms) != 2 || ms[0].Type != "bind" || ms[0].Source != host || ms[0].RW || ms[1].Type != "volume" || ms[1].Name != "ivol" || !ms[1].RW {
		t.Fatalf("Mounts %+v", ms)
	}
	// -v's mode: "ro" for a read-only bind, as Docker.
	if ms[0].Mode != "ro" || ms[1].Mode != "" {
		t.Fatalf("Mounts modes %q %q, want \"ro\" \"\"", ms[0].Mode, ms[1].Mode)
	}
	// [] and null where docker 28 prints them, OnBuild null, no
	// NetworkDisabled; a privileged container has no masked paths.
	raw := got[0]
	rawHC, rawCfg := raw["HostConfig"].(map[string]any), raw["Config"].(map[string]any)
	for _, k := range []string{"Devices", "Ulimits", "BlkioWeightDevice", "BlkioDeviceReadBps"} {
		if v, ok := rawHC[k].([]any); !ok || len(v) != 0 {
			t.Errorf("HostConfig.%s = %#v, want []", k, rawHC[k])
		}
	}
	for _, k := range []string{"DeviceCgroupRules", "DeviceRequests"} {
		if v, ok := rawHC[k]; !ok || v != nil {
			t.Errorf("HostConfig.%s = %#v (present %v), want null", k, v, ok)
		}
	}
	if v, ok := rawHC["MaskedPaths"].([]any); !ok || !slices.Contains(v, any("/proc/kcore")) {
		t.Errorf("HostConfig.MaskedPaths = %#v", rawHC["MaskedPaths"])
	}
	if v, ok := rawCfg["OnBuild"]; !ok || v != nil {
		t.Errorf("Config.OnBuild = %#v (present %v), want null", v, ok)
	}
	if _, ok := rawCfg["NetworkDisabled"]; ok {
		t.Error("Config.NetworkDisabled present; Docker omits it")
	}
	if out := strings.TrimSpace(e.ok("inspect", "-f", "{{json .HostConfig.MaskedPaths}} {{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "insp2")); out != "null json-file {}" {
		t.Errorf("privileged MaskedPaths and LogConfig: %s", out)
	}

	// -f templates with Docker's functions, one line per object.
	out := e.ok("inspect", "-f", "{{.State.Status}} {{.Name}} {{json .Config.Cmd}} {{upper .Config.Labels.k}} {{index .Args 0}} {{.NetworkSettings.Networks.bridge.IPAddress}}", "insp", "insp")
	want := "running /insp [\"sleep\",\"300\"] V 300 " + br.IPAddress + "\n"
	if out != want+want {
		t.Fatalf("inspect -f: %q, want %q twice", out, want)
	}
	if out := e.ok("container", "inspect", "--format", "{{.Id}}", id[:12]); out != id+"\n" {
		t.Fatalf("container inspect by prefix: %q", out)
	}
	// Several objects, one unknown: the known ones are printed, exit 1.
	r := e.berth("inspect", "insp", "nosuch")
	if r.code != 1 || !strings.Contains(r.stderr, "No such object: nosuch") {
		t.Fatalf("inspect with an unknown name: %+v", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("inspect with an unknown name printed %q", r.stdout)
	}
	if r := e.berth("inspect", "nosuch"); r.code != 1 || strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("inspect nosuch: %+v", r)
	}
	// --type.
	if out := e.ok("inspect", "--type", "image", "-f", "{{.Id}}", ref); !strings.HasPrefix(out, c.Image) {
		t.Fatalf("inspect --type image: %q", out)
	}
	e.wantFail(1, "No such container: "+ref, "inspect", "--type", "container", ref)
	e.wantFail(1, "not a valid value for --type", "inspect", "--type", "volume", "insp")
	e.wantFail(1, "template parsing error", "inspect", "-f", "{{.State", "insp")
	// -s adds sizes.
	if out := e.ok("inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "insp"); len(strings.Fields(out)) != 2 || strings.Contains(out, "no value") {
		t.Fatalf("inspect -s: %q", out)
	}
	// A stopped container: exit code and finish time.
	e.berth("run", "--name", "done", ref, "sh", "-c", "exit 4")
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.Pid}}", "done"); out != "exited false 4 0\n" {
		t.Fatalf("stopped container: %q", out)
	}
}

func TestPauseUnpause(t *testing.T) {
	e, ref, id := runningBusybox(t, "pz")
	pid, _ := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Pid}}", "pz")))
	e.ok("pause", "pz")
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "pz"); out != "paused true true\n" {
		t.Fatalf("inspect after pause: %q", out)
	}
	if st := freezerState(id); st != "FROZEN" {
		t.Fatalf("freezer state %q", st)
	}
	if st := procState(pid); st == "S" || st == "R" {
		t.Fatalf("paused process is in state %s", st)
	}
	if ps := e.ok("ps"); !strings.Contains(ps, "(Paused)") {
		t.Fatalf("ps:\n%s", ps)
	}
	if out := e.ok("ps", "--filter", "status=paused", "--format", "{{.Names}} {{.State}}"); out != "pz paused\n" {
		t.Fatalf("ps status=paused: %q", out)
	}
	e.wantFail(1, "is paused", "exec", "pz", "true")
	e.wantFail(1, "already paused", "pause", "pz")
	e.ok("unpause", "pz")
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pz"); out != "running false\n" {
		t.Fatalf("inspect after unpause: %q", out)
	}
	if st := freezerState(id); st != "THAWED" {
		t.Fatalf("freezer state after unpause %q", st)
	}
	e.ok("exec", "pz", "true")
	e.wantFail(1, "is not paused", "unpause", "pz")
	e.wantFail(1, "No such container: nosuch", "pause", "nosuch")
	e.ok("stop", "-t", "0", "pz")
	e.wantFail(1, "is not running", "pause", "pz")

	// stop of a paused container: the stop signal is delivered by
	// unpausing, so it ends at once (moby's stop/kill), not after --time.
	e.ok("run", "-d", "--init", "--name", "pzstop", "--network", "none", ref, "sleep", "1000")
	e.ok("pause", "pzstop")
	start := time.Now()
	e.ok("stop", "-t", "30", "pzstop")
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stop of a paused container took %s", d)
	}
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}", "pzstop"); out != "exited 143 false\n" {
		t.Fatalf("paused container after stop: %q", out)
	}
	// kill of a paused container: SIGKILL, then unpaused; 137.
	e.ok("run", "-d", "--name", "pzkill", "--network", "none", ref, "sleep", "1000")
	e.ok("pause", "pzkill")
	e.ok("kill", "pzkill")
	if out := e.ok("wait", "pzkill"); out != "137\n" {
		t.Fatalf("wait after kill of a paused container: %q", out)
	}
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "pzkill"); out != "exited false\n" {
		t.Fatalf("paused container after kill: %q", out)
	}
}

func freezerState(id string) string {
	data, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer/berth", id, "freezer.state"))
	return strings.TrimSpace(string(data))
}

func procState(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.Fields(v)[0]
		}
	}
	return ""
}

func TestRename(t *testing.T) {
	e, ref, id := runningBusybox(t, "old")
	e.ok("create", "--name", "other", ref, "true")
	e.ok("rename", "old", "new")
	if out := e.ok("inspect", "-f", "{{.Id}} {{.Name}}", "new"); out != id+" /new\n" {
		t.Fatalf("inspect new: %q", out)
	}
	e.wantFail(1, "No such container: old", "inspect", "--type", "container", "old")
	e.wantFail(1, "already in use", "rename", "new", "other")
	e.wantFail(1, "same name", "rename", "new", "new")
	e.wantFail(1, "Invalid container name", "rename", "new", "bad!name")
	e.wantFail(1, "No such container: nosuch", "rename", "nosuch", "x")
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "other\nnew\n" {
		t.Fatalf("names after failed renames: %q", out)
	}
	// The old name is free again.
	e.ok("create", "--name", "old", ref, "true")
}

func TestCp(t *testing.T) {
	e, _, _ := runningBusybox(t, "cp")
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("data"), 0o600)
	os.MkdirAll(filepath.Join(host, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "tree", "sub", "f"), []byte("deep"), 0o644)

	// Host to container: into a directory, under a new name, a tree.
	e.ok("cp", filepath.Join(host, "in.txt"), "cp:/tmp/")
	e.ok("cp", filepath.Join(host, "in.txt"), "cp:/tmp/renamed.txt")
	e.ok("cp", filepath.Join(host, "tree"), "cp:/tmp/tree")
	if out := e.ok("exec", "cp", "sh", "-c", "cat /tmp/in.txt /tmp/renamed.txt /tmp/tree/sub/f; stat -c %u:%g /tmp/in.txt"); out != "datadatadeep0:0\n" {
		t.Fatalf("copied in: %q", out)
	}
	// Container to host.
	out := filepath.Join(host, "out")
	os.Mkdir(out, 0o755)
	e.ok("cp", "cp:/etc/passwd", out)
	e.ok("cp", "cp:/tmp/tree", filepath.Join(out, "treecopy"))
	if data, _ := os.ReadFile(filepath.Join(out, "passwd")); !strings.HasPrefix(string(data), "root:x:0:0") {
		t.Fatalf("copied out passwd: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "treecopy", "sub", "f")); string(data) != "deep" {
		t.Fatalf("copied out tree: %q", data)
	}
	e.wantFail(1, "Could not find the file /nosuch", "cp", "cp:/nosuch", out)
	e.wantFail(1, "cannot copy a directory to a file", "cp", "cp:/tmp/tree", filepath.Join(out, "passwd"))

	// Symbolic links cannot lead out of the container's root.
	secret := filepath.Join(host, "secret")
	os.WriteFile(secret, []byte("host secret"), 0o600)
	e.ok("exec", "cp", "sh", "-c", "ln -s ../../../../../../../../.."+secret+" /tmp/up && ln -s "+host+" /tmp/abs")
	e.wantFail(1, "Could not find the file", "cp", "-L", "cp:/tmp/up", filepath.Join(out, "leak1"))
	e.wantFail(1, "Could not find the file", "cp", "cp:/tmp/abs/secret", filepath.Join(out, "leak2"))
	if _, err := os.Stat(filepath.Join(out, "leak1")); err == nil {
		t.Fatal("cp -L followed a link out of the container")
	}
	// Writing through a link to a host path stays inside the container.
	r := e.berth("cp", filepath.Join(host, "in.txt"), "cp:/tmp/abs/planted")
	if _, err := os.Stat(filepath.Join(host, "planted")); err == nil {
		t.Fatalf("cp wrote through a symlink onto the host (exit %d)", r.code)
	}
	// Without -L a link is copied as a link.
	e.ok("cp", "cp:/tmp/abs", filepath.Join(out, "link"))
	if target, err := os.Readlink(filepath.Join(out, "link")); err != nil || target != host {
		t.Fatalf("link copied as %q, %v", target, err)
	}

	// Tar streams with "-".
	tarOut := e.ok("cp", "cp:/tmp/in.txt", "-")
	tr := tar.NewReader(strings.NewReader(tarOut))
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "in.txt" {
		t.Fatalf("cp to -: %v %+v", err, hdr)
	}
	if body, _ := io.ReadAll(tr); string(body) != "data" {
		t.Fatalf("cp to -: body %q", body)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "streamed.txt", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("stream"))
	tw.Close()
	if r := e.berthStdin(bytes.NewReader(buf.Bytes()), "cp", "-", "cp:/tmp"); r.code != 0 {
		t.Fatalf("cp - into: %+v", r)
	}
	if got := e.ok("exec", "cp", "cat", "/tmp/streamed.txt"); got != "stream" {
		t.Fatalf("cp - into: %q", got)
	}
	if r := e.berthStdin(bytes.NewReader(buf.Bytes()), "cp", "-", "cp:/tmp/in.txt"); r.code != 1 || !strings.Contains(r.stderr, "must be a directory") {
		t.Fatalf("cp - onto a file: %+v", r)
	}

	// A stopped container: its snapshot is mounted for the copy.
	e.ok("stop", "-t", "0", "cp")
	e.ok("cp", filepath.Join(host, "in.txt"), "cp:/tmp/while-stopped")
	e.ok("cp", "cp:/tmp/renamed.txt", filepath.Join(out, "from-stopped"))
	if data, _ := os.ReadFile(filepath.Join(out, "from-stopped")); string(data) != "data" {
		t.Fatalf("copy out of a stopped container: %q", data)
	}
	e.ok("start", "cp")
	if got := e.ok("exec", "cp", "cat", "/tmp/while-stopped"); got != "data" {
		t.Fatalf("copied into the stopped container: %q", got)
	}

	e.wantFail(1, "must specify at least one container source", "cp", secret, out)
	e.wantFail(1, "copying between containers is not supported", "cp", "cp:/a", "cp:/b")
	e.wantFail(1, "No such container: nosuch", "cp", "nosuch:/etc", out)
	if l := mountsUnder(e.runroot); len(l) > 3 {
		t.Logf("mounts under runroot: %v", l)
	}
}

func TestDiffCommit(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "--name", "dc", ref, "sh", "-c", "mkdir /data && echo hi > /data/f && rm /bin/ls && touch /tmp/t")
	diff := e.ok("diff", "dc")
	want := "C /bin\nD /bin/ls\nA /data\nA /data/f\nC /tmp\nA /tmp/t\n"
	if diff != want {
		t.Fatalf("diff:\n%s\nwant:\n%s", diff, want)
	}
	// A fresh container has no changes.
	e.ok("create", "--name", "clean", ref, "true")
	if out := e.ok("diff", "clean"); out != "" {
		t.Fatalf("diff of a new container: %q", out)
	}
	e.wantFail(1, "No such container: nosuch", "diff", "nosuch")

	id := strings.TrimSpace(e.ok("commit", "-m", "my message", "-a", "me", "dc", "committed:1"))
	if !strings.HasPrefix(id, "sha256:") || len(id) != 71 {
		t.Fatalf("commit printed %q", id)
	}
	if out := e.ok("run", "--rm", "committed:1", "cat", "/data/f"); out != "hi\n" {
		t.Fatalf("committed image: %q", out)
	}
	if r := e.berth("run", "--rm", "committed:1", "ls", "/bin/ls"); r.code == 0 {
		t.Fatalf("deleted file came back: %+v", r)
	}
	if out := e.ok("inspect", "--type", "image", "-f", "{{.Id}} {{.Comment}} {{.Author}}", "committed:1"); out != id+" my message me\n" {
		t.Fatalf("image inspect: %q", out)
	}
	// --change sets the config.
	e.ok("commit", "-c", `CMD ["cat", "/data/f"]`, "-c", "ENV X=1", "dc", "committed:2")
	if out := e.ok("run", "--rm", "committed:2"); out != "hi\n" {
		t.Fatalf("CMD from --change: %q", out)
	}
	if out := e.ok("run", "--rm", "committed:2", "sh", "-c", "echo $X"); out != "1\n" {
		t.Fatalf("ENV from --change: %q", out)
	}
	e.wantFail(1, "invalid change", "commit", "-c", "FROM x", "dc", "committed:3")
	e.wantFail(1, "invalid reference format", "commit", "dc", "UPPER:bad")
	// Without a name the image is dangling but runs by ID.
	id2 := strings.TrimSpace(e.ok("commit", "dc"))
	if out := e.ok("run", "--rm", id2, "cat", "/data/f"); out != "hi\n" {
		t.Fatalf("dangling commit: %q", out)
	}
}

func TestTopStats(t *testing.T) {
	e, ref, _ := runningBusybox(t, "tp")
	out := e.ok("top", "tp")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.HasSuffix(lines[1], "sleep 300") {
		t.Fatalf("top:\n%s", out)
	}
	if out := e.ok("top", "tp", "-o", "pid,comm"); !strings.Contains(out, "COMMAND") || !strings.Contains(out, "sleep") {
		t.Fatalf("top -o:\n%s", out)
	}
	e.wantFail(1, "No such container: nosuch", "top", "nosuch")

	out = e.ok("stats", "--no-stream", "tp")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.Contains(lines[0], "MEM USAGE / LIMIT") || !strings.Contains(lines[0], "BLOCK I/O") {
		t.Fatalf("stats:\n%s", out)
	}
	if f := strings.Fields(lines[1]); f[1] != "tp" || f[len(f)-1] != "1" || !strings.HasSuffix(f[2], "%") {
		t.Fatalf("stats row: %q", lines[1])
	}
	if out := e.ok("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "tp"); !strings.HasPrefix(out, "tp 1 ") || strings.HasPrefix(out, "tp 1 0B") {
		t.Fatalf("stats --format: %q", out)
	}
	e.ok("run", "--name", "stopped", ref, "true")
	e.wantFail(1, "is not running", "top", "stopped")
	e.wantFail(1, "No such container: nosuch", "stats", "--no-stream", "nosuch")
}

func TestContainerPrune(t *testing.T) {
	e, ref, id := runningBusybox(t, "keepme")
	a := strings.TrimSpace(e.ok("create", "--name", "ca", ref, "true"))
	e.ok("run", "--name", "cb", ref, "sh", "-c", "echo x > /big")
	b := strings.TrimSpace(e.ok("inspect", "-f", "{{.Id}}", "cb"))
	out := e.ok("container", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, a+"\n") || !strings.Contains(out, b+"\n") || !strings.Contains(out, "\nTotal reclaimed space: ") || strings.Contains(out, id) {
		t.Fatalf("prune output:\n%s", out)
	}
	if ps := e.ok("ps", "-aq", "--no-trunc"); ps != id+"\n" {
		t.Fatalf("after prune: %q", ps)
	}
	if out := e.ok("container", "prune", "-f"); out != "Total reclaimed space: 0B\n" {
		t.Fatalf("second prune: %q", out)
	}
	// Without -f a "no" answer removes nothing.
	e.ok("create", "--name", "cc", ref, "true")
	r := e.berthStdin(strings.NewReader("n\n"), "container", "prune")
	if r.code != 0 || !strings.Contains(r.stdout, "Are you sure") || !strings.Contains(e.ok("ps", "-a"), " cc\n") {
		t.Fatalf("prune answered no: %+v", r)
	}
}

func TestPsFiltersAndFormat(t *testing.T) {
	e, ref, upID := runningBusybox(t, "up", "-l", "app=web")
	// Created after "up" in this order.
	e.berth("run", "--name", "ex3", ref, "sh", "-c", "exit 3")
	e.ok("run", "--name", "ex0", ref, "true")
	names := func(args ...string) string {
		t.Helper()
		return strings.Join(strings.Fields(e.ok(append(append([]string{"ps"}, args...), "--format", "{{.Names}}")...)), " ")
	}
	cases := []struct {
		args []string
		want string
	}{
		{nil, "up"},
		{[]string{"-a"}, "ex0 ex3 up"},
		{[]string{"--filter", "status=exited"}, "ex0 ex3"}, // a status filter lists every state
		{[]string{"-a", "--filter", "exited=3"}, "ex3"},
		{[]string{"-a", "--filter", "label=app"}, "up"},
		{[]string{"-a", "--filter", "label=app=db"}, ""},
		{[]string{"-a", "--filter", "name=ex"}, "ex0 ex3"},
		{[]string{"-a", "--filter", "name=^/ex3$", "--filter", "name=up"}, "ex3 up"},
		{[]string{"-a", "--filter", "id=" + upID[:10]}, "up"},
		{[]string{"-a", "--filter", "before=ex0"}, "ex3 up"},
		{[]string{"-a", "--filter", "since=up"}, "ex0 ex3"},
		{[]string{"-a", "--filter", "ancestor=" + ref}, "ex0 ex3 up"},
		{[]string{"-a", "--filter", "status=exited", "--filter", "exited=0"}, "ex0"},
		{[]string{"-n", "1"}, "ex0"},
	}
	for _, c := range cases {
		if got := names(c.args...); got != c.want {
			t.Errorf("ps %v: %q, want %q", c.args, got, c.want)
		}
	}
	// json: one object per line with Docker's keys.
	for _, line := range strings.Split(strings.TrimSpace(e.ok("ps", "-a", "--format", "json")), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("ps --format json: %v: %q", err, line)
		}
		for _, k := range []string{"ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "State", "Status", "Names", "Labels", "Size"} {
			if _, ok := obj[k]; !ok {
				t.Fatalf("ps json lacks %s: %q", k, line)
			}
		}
	}
	out := e.ok("ps", "--format", "table {{.Names}}\t{{.Status}}\t{{.Labels}}")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAMES STATUS LABELS" || !strings.HasPrefix(lines[1], "up ") || !strings.HasSuffix(lines[1], "app=web") {
		t.Fatalf("table format:\n%s", out)
	}
	if out := e.ok("ps", "-a", "-s", "--filter", "name=ex3"); !strings.Contains(out, "SIZE") || !strings.Contains(out, "(virtual ") {
		t.Fatalf("ps -s:\n%s", out)
	}
	// An untouched writable layer is 0B; the virtual size adds the
	// image's unpacked size.
	imgSize := strings.TrimSpace(e.ok("image", "inspect", "-f", "{{.Size}}", ref))
	if out := e.ok("ps", "-a", "--filter", "name=ex0", "--format", "{{.Size}}"); !strings.HasPrefix(out, "0B (virtual ") || imgSize == "0" {
		t.Fatalf("ps size of an untouched container: %q (image size %s)", out, imgSize)
	}
	// Docker matches name filters without the leading "/" too.
	if got := names("-a", "--filter", "name=^ex[03]$"); got != "ex0 ex3" {
		t.Errorf("ps name regexp: %q", got)
	}
	// Docker's Label method of the template context.
	if out := e.ok("ps", "--format", `{{.Names}} {{.Label "app"}}/{{.Label "none"}}`); out != "up web/\n" {
		t.Errorf("ps .Label: %q", out)
	}
	// COMMAND quotes an argument that holds spaces, as Docker.
	if out := e.ok("ps", "-a", "--no-trunc", "--filter", "name=ex3", "--format", "{{.Command}}"); out != `"sh -c 'exit 3'"`+"\n" {
		t.Errorf("ps command: %q", out)
	}
	if out := e.ok("container", "ls", "-q", "--no-trunc"); out != upID+"\n" {
		t.Fatalf("container ls: %q", out)
	}
	e.wantFail(1, "invalid filter 'bogus'", "ps", "--filter", "bogus=1")
	e.wantFail(1, "invalid filter 'status=bogus'", "ps", "--filter", "status=bogus")
	e.wantFail(1, "Unrecognised filter value for health: bogus", "ps", "--filter", "health=bogus")
	e.wantFail(1, "bad format of filter", "ps", "--filter", "nokey")
	e.wantFail(1, "No such container: nosuch", "ps", "--filter", "before=nosuch")
	e.wantFail(1, "template parsing error", "ps", "--format", "{{.Names")

	// Docker's network, volume, publish, expose and health filters.
	e.ok("volume", "create", "psvol")
	e.ok("run", "-d", "--name", "pub", "-p", "127.0.0.1::80", "-v", "psvol:/data", ref, "sleep", "300")
	e.ok("create", "--name", "nonet", "--network", "none", "-v", t.TempDir()+":/host", ref)
	_, hostPort, _ := strings.Cut(strings.TrimSpace(e.ok("port", "pub", "80")), ":")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "--filter", "name=ne"}, "nonet"},
		{[]string{"-a", "--filter", "network=bridge"}, "pub ex0 ex3 up"},
		{[]string{"-a", "--filter", "network=none"}, "nonet"},
		{[]string{"-a", "--filter", "volume=psvol"}, "pub"},
		{[]string{"-a", "--filter", "volume=/host"}, "nonet"},
		{[]string{"-a", "--filter", "volume=/nowhere"}, ""},
		{[]string{"--filter", "publish=" + hostPort}, "pub"},
		{[]string{"--filter", "publish=" + hostPort + "/udp"}, ""},
		{[]string{"--filter", "expose=80"}, "pub"},
		{[]string{"--filter", "expose=81"}, ""},
		{[]string{"--filter", "health=none"}, "pub up"},
		{[]string{"--filter", "health=healthy"}, ""},
		{[]string{"-a", "--filter", "since=ex0", "--filter", "before=nonet"}, "pub"},
	} {
		if got := names(c.args...); got != c.want {
			t.Errorf("ps %v: %q, want %q", c.args, got, c.want)
		}
	}
}
