package monitor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests below build cmd/berth-monitor (C) with cc and drive it with a
// fake OCI runtime: a shell script that runs BUNDLE/cmd (create) or the
// --process file (exec) as the container's process. With --console-socket
// the script hands over to TestFakeConsoleRuntime in this test binary,
// which makes a pty and sends its master over the socket as runc does.

// fakeRuntime implements `create --bundle B --pid-file P [--console-socket
// S] ID` and `exec --process F --detach --pid-file P [--console-socket S]
// ID`. It records its arguments in DIR/args and its open fds in DIR/fds;
// BUNDLE/fail makes create fail with that file's text on stderr.
const fakeRuntime = `#!/bin/sh
dir=$(dirname "$0")
echo "$@" > "$dir/args"
ls /proc/self/fd > "$dir/fds"
while [ "$#" -gt 0 ]; do
	case "$1" in
	--bundle) bundle=$2; shift;;
	--pid-file) pidfile=$2; shift;;
	--console-socket) console=$2; shift;;
	--process) script=$2; shift;;
	create|exec|--detach|--root) ;;
	*) id=$1;;
	esac
	shift
done
[ -n "$bundle" ] && script=$bundle/cmd
if [ -n "$bundle" ] && [ -f "$bundle/fail" ]; then cat "$bundle/fail" >&2; exit 1; fi
if [ -n "$console" ]; then
	FAKE_CONSOLE_RUNTIME=1 exec "$TESTBIN" -test.run='^TestFakeConsoleRuntime$' -- "$console" "$pidfile" "$script"
fi
# The container is not this script's child (a shell may reap its
# children before it exits, and the monitor would never see the exit):
# started from a subshell that exits at once, it is re-parented to the
# monitor, a subreaper, as a real runtime's container process is.
rm -f "$pidfile.tmp"
exec 3<&0
(sh -c 'echo $$ > "$1.tmp"; exec sh "$2"' x "$pidfile" "$script" <&3 3<&- &)
while [ ! -s "$pidfile.tmp" ]; do :; done
mv "$pidfile.tmp" "$pidfile"
`

// TestFakeConsoleRuntime is the console half of the fake runtime, run as
// a subprocess: it makes a pty, starts the script on its slave, writes the
// pid file and sends the master over the console socket.
func TestFakeConsoleRuntime(t *testing.T) {
	if os.Getenv("FAKE_CONSOLE_RUNTIME") != "1" {
		t.Skip("helper process for the berth-monitor tests")
	}
	args := flagArgs()
	err := func() error {
		master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
		if err != nil {
			return err
		}
		slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			return err
		}
		cmd := exec.Command("/bin/sh", args[2])
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		if err := os.WriteFile(args[1], []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return err
		}
		conn, err := net.Dial("unix", args[0])
		if err != nil {
			return err
		}
		_, _, err = conn.(*net.UnixConn).WriteMsgUnix([]byte("console"), unix.UnixRights(int(master.Fd())), nil)
		return err
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake console runtime:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func flagArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

type monEnv struct {
	t                         *testing.T
	bin, dir, bundle, runtime string
	exitDir, log, id          string
	// inherit are more files the monitor is started with (fds 4 …).
	inherit []*os.File
}

func newMonEnv(t *testing.T, script string) *monEnv {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	e := &monEnv{t: t, dir: dir, id: "c0ffee", bin: filepath.Join(dir, "berth-monitor")}
	srcs, _ := filepath.Glob("../cmd/berth-monitor/*.c")
	cc := exec.Command("cc", append([]string{"-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", e.bin}, srcs...)...)
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	e.runtime = filepath.Join(dir, "runtime")
	e.bundle = filepath.Join(dir, e.id)
	e.exitDir = filepath.Join(dir, "exits")
	e.log = filepath.Join(dir, "ctr.log")
	for _, d := range []string{e.bundle, e.exitDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write(t, e.runtime, fakeRuntime, 0o755)
	write(t, filepath.Join(e.bundle, "cmd"), script, 0o644)
	t.Cleanup(e.stopped)
	return e
}

// stopped kills what the test left running of the container and checks
// that the monitor then ends: one that misses its container's exit would
// otherwise stay behind for good.
func (e *monEnv) stopped() {
	data, err := os.ReadFile(filepath.Join(e.bundle, "monitor.pid"))
	if err != nil {
		return // not started, or exec mode
	}
	mon, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if data, err := os.ReadFile(filepath.Join(e.bundle, "init.pid")); err == nil {
		// Only while it is still the monitor's child: never a reused pid.
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid > 0 && parentOf(pid) == mon {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", mon)); err != nil || strings.Contains(string(st), ") Z ") {
			return
		}
	}
	syscall.Kill(mon, syscall.SIGKILL)
	e.t.Errorf("the monitor (pid %d) did not end after its container", mon)
}

func write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// args is the command line monitor.Start builds, plus extra.
func (e *monEnv) args(extra ...string) []string {
	return append([]string{"--api-version", "1", "-c", e.id, "-u", e.id, "-n", "name",
		"-r", e.runtime, "--runtime-arg", "--root", "--runtime-arg", "/x",
		"-b", e.bundle, "-p", filepath.Join(e.bundle, "init.pid"), "-P", filepath.Join(e.bundle, "monitor.pid"),
		"-l", "json-file:" + e.log, "--exit-dir", e.exitDir,
		"--socket-dir-path", e.dir, "--full-attach", "--log-level", "error", "--syslog=false"}, extra...)
}

// start runs the monitor and returns what it reported on the sync pipe.
func (e *monEnv) start(args ...string) syncMessage {
	e.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(e.bin, args...)
	cmd.ExtraFiles = append([]*os.File{w}, e.inherit...)
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3", "TESTBIN="+os.Args[0])
	cmd.Dir = e.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	w.Close()
	if err != nil {
		e.t.Fatalf("monitor: %v: %s", err, stderr.String())
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(r); err != nil {
		e.t.Fatalf("sync pipe: %v", err)
	}
	var msg syncMessage
	if err := json.Unmarshal(raw.Bytes(), &msg); err != nil {
		e.t.Fatalf("sync pipe: %q: %v", raw.String(), err)
	}
	if !strings.HasSuffix(raw.String(), "}\n") {
		e.t.Errorf("sync message %q does not end in a newline", raw.String())
	}
	return msg
}

func (e *monEnv) dial() *net.UnixConn {
	e.t.Helper()
	path := filepath.Join(e.dir, e.id, "attach")
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// exitStatus waits for the exit file.
func (e *monEnv) exitStatus() string {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(e.exitDir, e.id)); err == nil {
			return string(b)
		}
	}
	e.t.Fatal("no exit file")
	return ""
}

// waitGone waits for the monitor (pid from its pid file) to end.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(st), ") Z ") {
			return
		}
	}
	t.Fatalf("monitor %d still running", pid)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

type packet struct {
	stream byte
	data   string
}

// readPackets reads attach packets until the monitor closes the connection.
func readPackets(t *testing.T, c *net.UnixConn) []packet {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got []packet
	buf := make([]byte, 16384)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if n > 8193 {
				t.Errorf("packet of %d bytes, more than 1+8192", n)
			}
			got = append(got, packet{buf[0], string(buf[1:n])})
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNRESET) {
				continue
			}
			return got
		}
	}
}

func joinStream(ps []packet, stream byte) string {
	var b strings.Builder
	for _, p := range ps {
		if p.stream == stream {
			b.WriteString(p.data)
		}
	}
	return b.String()
}

var rfc3339Nano = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$`)

type jsonEntry struct {
	Log, Stream, Time string
}

// readJSONLog parses a json-file log, checking the key order and time format.
func readJSONLog(t *testing.T, path string) []jsonEntry {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []jsonEntry
	shape := regexp.MustCompile(`^\{"log":".*","stream":"(stdout|stderr)","time":"[^"]+"\}$`)
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") || !shape.MatchString(strings.TrimSuffix(line, "\n")) {
			t.Fatalf("log line %q is not a json-file entry", line)
		}
		var e jsonEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if !rfc3339Nano.MatchString(e.Time) {
			t.Errorf("time %q is not RFC 3339 with trimmed nanoseconds", e.Time)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("time %q: %v", e.Time, err)
		}
		out = append(out, e)
	}
	return out
}

func logText(es []jsonEntry, stream string) string {
	var b strings.Builder
	for _, e := range es {
		if e.Stream == stream {
			b.WriteString(e.Log)
		}
	}
	return b.String()
}

// TestCMonitorPipes runs a container with -i (stdin once): the attach
// client's input reaches it, closing the client's input closes its stdin,
// output is framed per stream and logged, the exit file holds the code and
// the exit command runs after both with its arguments.
func TestCMonitorPipes(t *testing.T) {
	e := newMonEnv(t, `read line; echo "got $line"; cat; echo oops >&2; printf 'no newline'; exit 3`)
	exitCmd := filepath.Join(e.dir, "exitcmd")
	out := filepath.Join(e.dir, "exitcmd.out")
	write(t, exitCmd, fmt.Sprintf("#!/bin/sh\n{ echo \"$0 $*\"; cat %s; echo; ls /proc/self/fd | tr '\\n' ' '; } > %s.tmp\ncp %s %s.log\nmv %s.tmp %s\n",
		filepath.Join(e.exitDir, e.id), out, e.log, out, out, out), 0o755)
	msg := e.start(e.args("-i", "--exit-command", exitCmd, "--exit-command-arg", "a b", "--exit-command-arg", "c")...)
	if want := readPid(t, filepath.Join(e.bundle, "init.pid")); msg.Data != want || msg.Message != "" {
		t.Fatalf("sync = %+v, want data %d", msg, want)
	}
	monPid := readPid(t, filepath.Join(e.bundle, "monitor.pid"))
	if err := syscall.Kill(monPid, 0); err != nil {
		t.Fatalf("monitor pid %d: %v", monPid, err)
	}
	if fi, err := os.Stat(filepath.Join(e.bundle, "ctl")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("control FIFO: %v %v", fi, err)
	}
	args, _ := os.ReadFile(filepath.Join(e.dir, "args"))
	if want := fmt.Sprintf("--root /x create --bundle %s --pid-file %s %s\n", e.bundle, filepath.Join(e.bundle, "init.pid"), e.id); string(args) != want {
		t.Errorf("runtime args = %q, want %q", args, want)
	}
	fds, _ := os.ReadFile(filepath.Join(e.dir, "fds"))
	if f := strings.Fields(string(fds)); len(f) > 4 {
		t.Errorf("the runtime inherited fds %v, want 0 1 2 (and ls's own)", f)
	}

	c := e.dial()
	if _, err := c.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("rest")); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite() // stdin once: the container's stdin ends
	got := readPackets(t, c)
	for _, p := range got {
		if p.stream != 2 && p.stream != 3 {
			t.Errorf("packet with stream byte %d", p.stream)
		}
	}
	if s := joinStream(got, 2); s != "got hello\nrestno newline" {
		t.Errorf("attach stdout = %q", s)
	}
	if s := joinStream(got, 3); s != "oops\n" {
		t.Errorf("attach stderr = %q", s)
	}
	if s := e.exitStatus(); s != "3" {
		t.Errorf("exit file = %q, want 3", s)
	}
	var res []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(out); err == nil {
			res = b
			break
		}
	}
	lines := strings.SplitN(string(res), "\n", 3)
	if len(lines) < 3 || lines[0] != exitCmd+" a b c" || lines[1] != "3" {
		t.Fatalf("exit command wrote %q, want its args and the exit status", res)
	}
	if f := strings.Fields(lines[2]); len(f) > 4 {
		t.Errorf("the exit command inherited fds %v", f)
	}
	entries := readJSONLog(t, e.log)
	if s := logText(entries, "stdout"); s != "got hello\nrestno newline" {
		t.Errorf("logged stdout = %q", s)
	}
	if s := logText(entries, "stderr"); s != "oops\n" {
		t.Errorf("logged stderr = %q", s)
	}
	for _, en := range entries {
		if i := strings.IndexByte(en.Log, '\n'); i >= 0 && i != len(en.Log)-1 {
			t.Errorf("entry %q holds more than one line", en.Log)
		}
	}
	if seen, _ := os.ReadFile(out + ".log"); !bytes.Equal(seen, mustRead(t, e.log)) {
		t.Errorf("the exit command ran before the log was complete:\n%s", seen)
	}
	if _, err := os.Stat(filepath.Join(e.dir, e.id, "attach")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("attach socket left behind: %v", err)
	}
	waitGone(t, monPid)
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCMonitorSignalExit: a container killed by signal 9 exits 128+9; a
// container without -i gets no stdin and its client's input is dropped;
// several clients get the same output.
func TestCMonitorSignalExit(t *testing.T) {
	e := newMonEnv(t, "while [ ! -e go ]; do sleep 0.01; done; read x || echo no-stdin; kill -9 $$")
	if msg := e.start(e.args()...); msg.Data <= 0 {
		t.Fatalf("sync = %+v", msg)
	}
	c1, c2 := e.dial(), e.dial()
	c1.Write([]byte("ignored\n"))
	time.Sleep(50 * time.Millisecond)
	write(t, filepath.Join(e.dir, "go"), "", 0o644)
	for _, c := range []*net.UnixConn{c1, c2} {
		if s := joinStream(readPackets(t, c), 2); s != "no-stdin\n" {
			t.Errorf("client got %q", s)
		}
	}
	if s := e.exitStatus(); s != "137" {
		t.Errorf("exit file = %q, want 137", s)
	}
}

// TestCMonitorCreateFailure: the runtime's stderr is reported on the sync
// pipe, the monitor exits and removes its attach socket.
func TestCMonitorCreateFailure(t *testing.T) {
	e := newMonEnv(t, "exit 0")
	text := "container_linux.go:42: \"boom\" <bad> \\ \t\u00e9\n"
	write(t, filepath.Join(e.bundle, "fail"), text, 0o644)
	msg := e.start(e.args()...)
	if msg.Data != -1 || msg.Message != strings.TrimSpace(text) {
		t.Errorf("sync = %+v, want data -1 and message %q", msg, strings.TrimSpace(text))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(e.dir, e.id, "attach")); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("attach socket left behind")
		}
	}
	if _, err := os.Stat(filepath.Join(e.exitDir, e.id)); err == nil {
		t.Error("exit file written for a container that was never created")
	}
}

// TestCMonitorUsage: unknown options and bad values fail at once with a
// message on stderr and exit status 1.
func TestCMonitorUsage(t *testing.T) {
	e := newMonEnv(t, "exit 0")
	for _, args := range [][]string{
		{"--bogus"},
		e.args("--log-size-max", "x"),
		append(e.args(), "-l", "k8s-file:/tmp/x"),
		{"-c", "x", "-r", "relative", "-p", "p", "-b", "b", "--socket-dir-path", "d"},
	} {
		cmd := exec.Command(e.bin, args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "berth-monitor: ") {
			t.Errorf("%q: %v %q, want exit status 1 and a message", args, err, out)
		}
	}
}

// TestCMonitorJSONEscaping: log text is escaped as Docker's json-file
// escapes it, a UTF-8 sequence split between reads is kept whole.
func TestCMonitorJSONEscaping(t *testing.T) {
	e := newMonEnv(t, `printf '<a&b>"\\\t\001\342\200\250\377x\n'; printf '\303'; sleep 0.2; printf '\251\n'`)
	e.start(e.args()...)
	e.exitStatus()
	raw := string(mustRead(t, e.log))
	want := `{"log":"\u003ca\u0026b\u003e\"\\\u0009\u0001\u2028\ufffdx\n","stream":"stdout","time":"`
	if !strings.HasPrefix(raw, want) {
		t.Errorf("log = %q, want it to start %q", raw, want)
	}
	if !strings.Contains(raw, `{"log":"é\n","stream":"stdout"`) {
		t.Errorf("log = %q, want é kept whole across reads", raw)
	}
	readJSONLog(t, e.log)
}

// TestCMonitorRotation: with max-size and max-file the log rotates as
// Docker's json-file does; with one file PATH is started afresh.
func TestCMonitorRotation(t *testing.T) {
	for _, files := range []int{1, 3} {
		t.Run(strconv.Itoa(files), func(t *testing.T) {
			e := newMonEnv(t, `i=0; while [ $i -lt 40 ]; do echo "line $i"; i=$((i+1)); sleep 0.002; done`)
			e.start(e.args("--log-size-max", "300", "--log-max-files", strconv.Itoa(files))...)
			e.exitStatus()
			names := []string{e.log}
			for i := 1; i < files; i++ {
				names = append([]string{e.log + "." + strconv.Itoa(i)}, names...)
			}
			var all []jsonEntry
			for _, n := range names {
				es := readJSONLog(t, n)
				if len(es) == 0 {
					t.Errorf("%s is empty", n)
				}
				var size int
				for i, en := range es {
					line, _ := json.Marshal(en)
					if size >= 300 && i > 0 {
						t.Errorf("%s: entry %d written past max-size", n, i)
					}
					size += len(line)
				}
				all = append(all, es...)
			}
			if _, err := os.Stat(e.log + "." + strconv.Itoa(files)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("more than %d log files", files)
			}
			text := logText(all, "stdout")
			if !strings.HasSuffix(text, "line 39\n") || strings.HasPrefix(text, "line 0\n") {
				t.Errorf("kept log %q: want the newest lines only", text)
			}
			var full strings.Builder
			for i := 0; i < 40; i++ {
				fmt.Fprintf(&full, "line %d\n", i)
			}
			if !strings.HasSuffix(full.String(), text) {
				t.Errorf("kept log %q is not the end of the output", text)
			}
		})
	}
}

// TestCMonitorTerminal: with -t -i the runtime gets a console socket, the
// monitor holds the pty master, applies ctl resizes and passes input.
func TestCMonitorTerminal(t *testing.T) {
	e := newMonEnv(t, `read line; stty size; echo "got $line"; exit 5`)
	msg := e.start(e.args("-t", "-i", "--leave-stdin-open")...)
	if msg.Data <= 0 {
		t.Fatalf("sync = %+v", msg)
	}
	if args := string(mustRead(t, filepath.Join(e.dir, "args"))); !strings.Contains(args, " --console-socket /") {
		t.Errorf("runtime args %q: no console socket", args)
	}
	c := e.dial()
	ctl, err := os.OpenFile(filepath.Join(e.bundle, "ctl"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctl.WriteString("1 30 100\n9 1 1\n1 33 ") // several messages, one split
	ctl.WriteString("120\n")
	ctl.Close()
	time.Sleep(100 * time.Millisecond)
	c.Write([]byte("hi\n"))
	got := readPackets(t, c)
	if s := joinStream(got, 3); s != "" {
		t.Errorf("stderr packets with a terminal: %q", s)
	}
	out := joinStream(got, 2)
	if !strings.Contains(out, "33 120\r\n") || !strings.Contains(out, "got hi\r\n") {
		t.Errorf("terminal output %q, want the size 33 120 and the input", out)
	}
	if s := e.exitStatus(); s != "5" {
		t.Errorf("exit file = %q", s)
	}
	if logged := logText(readJSONLog(t, e.log), "stdout"); logged != out {
		t.Errorf("log %q != attach output %q", logged, out)
	}
}

// TestCMonitorExec: exec mode (exec -d -t) reports the process's pid,
// writes no exit file and ends when the process ends.
func TestCMonitorExec(t *testing.T) {
	e := newMonEnv(t, "")
	spec := filepath.Join(e.dir, "process.sh")
	write(t, spec, "echo discarded; sleep 0.3", 0o644)
	dir := filepath.Join(e.dir, "exec")
	os.Mkdir(dir, 0o700)
	msg := e.start("--api-version", "1", "-c", e.id, "-u", "sess", "-n", "sess", "-r", e.runtime,
		"--exec", "--exec-process-spec", spec, "-t", "-p", filepath.Join(dir, "pid"), "-P", filepath.Join(dir, "mon.pid"),
		"-l", "none", "--socket-dir-path", dir, "--log-level", "error", "--syslog=false")
	if want := readPid(t, filepath.Join(dir, "pid")); msg.Data != want {
		t.Fatalf("sync = %+v, want %d", msg, want)
	}
	args := strings.Fields(string(mustRead(t, filepath.Join(e.dir, "args"))))
	if !slices.Equal(args[:5], []string{"exec", "--process", spec, "--detach", "--pid-file"}) || args[len(args)-1] != e.id {
		t.Errorf("runtime args %q", args)
	}
	waitGone(t, readPid(t, filepath.Join(dir, "mon.pid")))
	if _, err := os.Stat(filepath.Join(e.exitDir, e.id)); err == nil {
		t.Error("exec mode wrote an exit file")
	}
}

// TestCMonitorSlowClient: an attach client that reads slowly gets every
// byte; meanwhile the container is held back (Docker's behaviour), not
// the client dropped.
func TestCMonitorSlowClient(t *testing.T) {
	const lines = 40000 // ~1.8 MB: more than the socket buffers hold
	e := newMonEnv(t, fmt.Sprintf(`sleep 0.3; i=0; while [ $i -lt %d ]; do echo "line $i padding-padding-padding-padding"; i=$((i+1)); done; echo END`, lines))
	e.start(e.args()...)
	c := e.dial()
	time.Sleep(2 * time.Second) // the container has long been done with its output, if nothing held it
	if log, _ := os.ReadFile(e.log); strings.Contains(string(log), "END") {
		t.Fatalf("the container ran on while the attach client read nothing")
	}
	got := joinStream(readPackets(t, c), 2)
	var want strings.Builder
	for i := range lines {
		fmt.Fprintf(&want, "line %d padding-padding-padding-padding\n", i)
	}
	want.WriteString("END\n")
	if got != want.String() {
		t.Fatalf("slow client got %d bytes, want %d", len(got), want.Len())
	}
	if code := e.exitStatus(); code != "0" {
		t.Fatalf("exit %q", code)
	}
}

// TestCMonitorClosesInherited: descriptors the monitor's caller leaked to
// it are closed (a pipe's reader sees its end while the container runs).
func TestCMonitorClosesInherited(t *testing.T) {
	e := newMonEnv(t, "sleep 5")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e.inherit = []*os.File{w}
	e.start(e.args()...)
	w.Close()
	r.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("read of the leaked pipe: %d, %v; want EOF (the monitor kept it open)", n, err)
	}
	syscall.Kill(readPid(t, filepath.Join(e.bundle, "init.pid")), syscall.SIGKILL)
	e.exitStatus()
}

// TestCMonitorExitDirRemoved: the exit status is recorded even when the
// exit directory was removed while the container ran.
func TestCMonitorExitDirRemoved(t *testing.T) {
	e := newMonEnv(t, "sleep 0.5; exit 4")
	e.start(e.args()...)
	if err := os.RemoveAll(e.exitDir); err != nil {
		t.Fatal(err)
	}
	if code := e.exitStatus(); code != "4" {
		t.Fatalf("exit %q, want 4", code)
	}
}

// TestCMonitorTornLog: a log whose last record was cut (no newline, as a
// full disk leaves it) gets a newline before the first new entry, which
// stays whole.
func TestCMonitorTornLog(t *testing.T) {
	e := newMonEnv(t, "echo ok")
	write(t, e.log, `{"log":"cut`, 0o640)
	e.start(e.args()...)
	e.exitStatus()
	lines := strings.Split(string(mustRead(t, e.log)), "\n")
	if len(lines) != 3 || lines[0] != `{"log":"cut` || !strings.HasPrefix(lines[1], `{"log":"ok\n","stream":"stdout"`) || lines[2] != "" {
		t.Fatalf("log %q", lines)
	}
}

// parentOf is pid's parent pid, 0 when it cannot be read.
func parentOf(pid int) int {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(st), ") ")
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
