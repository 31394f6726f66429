package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAttach: attach to a detached container under its monitor: output
// streams, stdin with -i, and the container's exit status as berth's.
func TestAttach(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "-i", "--name", "echoer", "--network", "none", ref, "sh", "-c", "read x; echo got $x; echo oops >&2; exit 2")
	cmd := exec.Command(berthBin, e.args("attach", "echoer")...)
	cmd.Stdin = strings.NewReader("hello\n")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("attach: %v (stderr %q), want exit 2", err, errb.String())
	}
	if out.String() != "got hello\n" || errb.String() != "oops\n" {
		t.Fatalf("attach: stdout %q stderr %q", out.String(), errb.String())
	}
	if r := e.berth("attach", "echoer"); r.code != 1 || !strings.Contains(r.stderr, "You cannot attach to a stopped container") {
		t.Fatalf("attach to a stopped container: exit %d %q", r.code, r.stderr)
	}
	e.ok("rm", "echoer")
}

// ptySession is berth run with a pseudo-terminal as its controlling
// terminal and stdio, as from an interactive shell.
type ptySession struct {
	t             *testing.T
	master, slave *os.File
	cmd           *exec.Cmd
	mu            sync.Mutex
	out           bytes.Buffer
	done          chan struct{}
	err           error
}

// startPTY runs berth args on a fresh 30x100 terminal.
func (e *env) startPTY(args ...string) *ptySession {
	e.t.Helper()
	m, s := openPty(e.t, 30, 100)
	p := &ptySession{t: e.t, master: m, slave: s, done: make(chan struct{})}
	p.cmd = exec.Command(berthBin, e.args(args...)...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = s, s, s
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		m.Close()
		s.Close()
	})
	return p
}

func (p *ptySession) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// expect waits until the terminal has shown want (after skip bytes).
func (p *ptySession) expect(want string, skip int) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.output()[skip:], want); {
		if time.Now().After(deadline) {
			p.t.Fatalf("terminal never showed %q; it shows:\n%q", want, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// until types s until the output it causes shows want.
func (p *ptySession) until(s, want string) {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := len(p.output())
		p.send(s)
		time.Sleep(200 * time.Millisecond)
		if strings.Contains(p.output()[n:], want) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("typing %q never showed %q: %q", s, want, p.output())
		}
	}
}

// send types s on the terminal.
func (p *ptySession) send(s string) {
	p.t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		p.t.Fatal(err)
	}
}

// termios is the terminal's line discipline settings.
func (p *ptySession) termios() unix.Termios {
	p.t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	return *tio
}

// waitRaw waits until berth has put the terminal in raw mode.
func (p *ptySession) waitRaw() {
	p.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); p.termios().Lflag&unix.ICANON != 0; {
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never went raw; it shows %q", p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for berth to exit and returns its exit code.
func (p *ptySession) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("berth did not exit; the terminal shows %q", p.output())
	}
	// What berth wrote last may still be in the terminal's buffer.
	for n := -1; n != len(p.output()); {
		n = len(p.output())
		time.Sleep(100 * time.Millisecond)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// TestAttachTTY: attach to a container with a terminal from a terminal:
// raw mode while attached and the settings restored after, the window
// size and its changes, detaching with Docker's default keys (docker CLI
// 28: "read escape sequence", exit 1) leaves the container running.
func TestAttachTTY(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	e.ok("run", "-d", "-it", "--name", "shell", "--network", "none", ref, "sh")
	p := e.startPTY("attach", "shell")
	before := p.termios()
	if before.Lflag&unix.ICANON == 0 {
		t.Fatal("the test terminal starts raw")
	}
	p.waitRaw()
	p.send("echo mark-$((6*7))\r")
	p.expect("mark-42", 0)
	// The container's terminal gets berth's size ...
	p.until("stty size\r", "30 100")
	// ... and a window change (SIGWINCH to berth).
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 41, Col: 123}); err != nil {
		t.Fatal(err)
	}
	p.until("stty size\r", "41 123")
	n := len(p.output())
	p.send("\x10\x11")
	if code := p.wait(); code != 1 {
		t.Fatalf("attach after detach keys: exit %d, want 1; terminal %q", code, p.output())
	}
	if !strings.Contains(p.output()[n:], "read escape sequence") {
		t.Fatalf("detach printed %q", p.output()[n:])
	}
	if after := p.termios(); after != before {
		t.Fatalf("terminal settings not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	if out := e.ok("inspect", "-f", "{{.State.Running}}", "shell"); out != "true\n" {
		t.Fatalf("container after detach: running %q", out)
	}
	// Piped stdin cannot drive a terminal.
	if r := e.berthStdin(strings.NewReader("x"), "attach", "shell"); r.code != 1 || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Fatalf("attach with piped stdin: %+v", r)
	}
	if p := e.startPTY("attach", "--detach-keys", "ctrl-", "shell"); p.wait() != 1 || !strings.Contains(p.output(), "Invalid detach keys (ctrl-) provided") {
		t.Fatalf("attach with bad detach keys: %q", p.output())
	}
	// --no-stdin: output only, the container's exit status is berth's.
	e.ok("run", "-d", "-t", "--name", "ticker", "--network", "none", ref, "sh", "-c", "sleep 1; echo done; exit 4")
	if r := e.berth("attach", "--no-stdin", "ticker"); r.code != 4 || !strings.Contains(r.stdout, "done") {
		t.Fatalf("attach --no-stdin: %+v", r)
	}
	e.ok("rm", "-f", "shell")
}

// TestRunTTY: run -it runs under the monitor, attached from before the
// process starts (its first output is not lost); a custom --detach-keys
// sequence leaves it running with exit 0 and nothing printed, as docker
// run; the exit status and --rm otherwise; start -ai re-attaches.
func TestRunTTY(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	p := e.startPTY("run", "-it", "--detach-keys", "ctrl-a,x", "--name", "rt", "--network", "none", ref, "sh", "-c", "echo first-line; stty size; exec sh")
	before := p.termios()
	p.expect("first-line", 0)
	p.expect("30 100", 0)
	p.waitRaw()
	// ctrl-p ctrl-q are ordinary keys now; the sequence is ctrl-a x.
	p.send("\x10\x11echo typed-$((1+1))\r")
	p.expect("typed-2", 0)
	n := len(p.output())
	p.send("\x01x")
	if code := p.wait(); code != 0 {
		t.Fatalf("run -it after detach keys: exit %d; terminal %q", code, p.output())
	}
	if strings.Contains(p.output()[n:], "escape") {
		t.Fatalf("run -it detach printed %q", p.output()[n:])
	}
	if after := p.termios(); after != before {
		t.Fatalf("terminal settings not restored:\nbefore %+v\nafter  %+v", before, after)
	}
	if out := e.ok("inspect", "-f", "{{.State.Running}}", "rt"); out != "true\n" {
		t.Fatalf("container after detach: running %q", out)
	}
	e.ok("stop", "-t", "1", "rt")

	// start -ai attaches a terminal container again; exit status passes.
	p = e.startPTY("start", "-ai", "rt")
	p.expect("first-line", 0)
	p.waitRaw()
	p.send("exit 5\r")
	if code := p.wait(); code != 5 {
		t.Fatalf("start -ai: exit %d; terminal %q", code, p.output())
	}

	// The exit status, and --rm removes the container.
	p = e.startPTY("run", "-it", "--rm", "--name", "gone", "--network", "none", ref, "sh", "-c", "exit 3")
	if code := p.wait(); code != 3 {
		t.Fatalf("run -it --rm: exit %d; terminal %q", code, p.output())
	}
	for deadline := time.Now().Add(10 * time.Second); e.berth("inspect", "gone").code == 0; {
		if time.Now().After(deadline) {
			t.Fatal("run -it --rm left the container")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// -t without a terminal of berth's own: the output, CRLF as from a
	// terminal, and the status.
	if r := e.berth("run", "--rm", "-t", "--network", "none", ref, "sh", "-c", "echo hi; exit 2"); r.code != 2 || r.stdout != "hi\r\n" {
		t.Fatalf("run -t with piped output: %+v", r)
	}
	p = e.startPTY("run", "-it", "--detach-keys", "ctrl-", "--name", "badkeys", ref, "true")
	if code := p.wait(); code != 125 || !strings.Contains(p.output(), "Invalid detach keys (ctrl-) provided") {
		t.Fatalf("run -it with bad detach keys: exit %d %q", code, p.output())
	}
	if e.berth("inspect", "badkeys").code == 0 {
		t.Fatal("run with bad detach keys created its container")
	}
}

// TestExecTTY: exec -it from a terminal: raw mode, the window size and
// its changes, the exit status, the terminal restored.
// TestRunTTYExitRace: `run --rm -it IMG echo hi` ends at once, racing
// the attach connection with the container's exit (a reset of the attach
// socket once conmon closes it); every run prints the output and exits 0.
func TestRunTTYExitRace(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("pull", ref)
	for i := range 30 {
		p := e.startPTY("run", "--rm", "-it", "--network", "none", ref, "echo", "hi")
		// Typed input the container never reads: the monitor may close
		// the attach socket with it unread, which resets the connection.
		for range 20 {
			p.send("typed ahead\r")
		}
		code := p.wait()
		if out := p.output(); code != 0 || strings.Count(out, "hi\r\n") != 1 || strings.Contains(out, "rror") {
			t.Fatalf("run %d: exit %d; terminal %q", i, code, out)
		}
	}
}

func TestExecTTY(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("run", "-d", "--name", "ex", "--network", "none", ref, "sleep", "1000")
	p := e.startPTY("exec", "-it", "ex", "sh")
	before := p.termios()
	p.waitRaw()
	p.until("stty size\r", "30 100")
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 42, Col: 90}); err != nil {
		t.Fatal(err)
	}
	p.until("stty size\r", "42 90")
	p.send("exit 6\r")
	if code := p.wait(); code != 6 {
		t.Fatalf("exec -it: exit %d; terminal %q", code, p.output())
	}
	if after := p.termios(); after != before {
		t.Fatalf("terminal settings not restored:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestAttachSigProxy: without a terminal, a signal berth attach receives
// goes to the container (--sig-proxy, the default); with
// --sig-proxy=false berth ends and the container runs on.
func TestAttachSigProxy(t *testing.T) {
	e := newEnv(t)
	_, ref := busybox(t)
	e.ok("run", "-d", "--name", "trap", "--network", "none", ref, "sh", "-c", `trap "echo got-term; exit 9" TERM; while :; do echo tick; sleep 0.1; done`)
	attach := func(args ...string) (*exec.Cmd, *lockedBuffer) {
		cmd := exec.Command(berthBin, e.args(args...)...)
		out := &lockedBuffer{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "tick"); {
			if time.Now().After(deadline) {
				t.Fatalf("attach showed nothing")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return cmd, out
	}
	cmd, _ := attach("attach", "--sig-proxy=false", "trap")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if out := e.ok("inspect", "-f", "{{.State.Running}}", "trap"); out != "true\n" {
		t.Fatalf("--sig-proxy=false: the container got the signal: running %q", out)
	}
	cmd, out := attach("attach", "trap")
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 9 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("attach with --sig-proxy: %v, output %q", err, out.String())
	}
}
