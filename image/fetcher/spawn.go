package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/berthproject/berth/internal/unpriv"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// pipeSize is the capacity, in bytes, asked for the pipe that carries the
// fetcher's frames: four data frames.
const pipeSize = 4 * chunkSize

// Nobody is the uid and gid a fetcher runs as by default (Debian's
// nobody/nogroup).
const Nobody = 65534

// Command is how to start a separate fetcher process: Path with Args
// (argv[1:]) must end up calling Main.
type Command struct {
	Path string
	Args []string
}

// DefaultCommand is `/proc/self/exe fetcher` when this program is the
// berth binary (which has the hidden `fetcher` command), else nil: a
// program embedding the engine must name its own fetcher command to get
// process separation.
func DefaultCommand() *Command {
	exe, err := os.Executable()
	if err != nil || filepath.Base(exe) != "berth" {
		return nil
	}
	return &Command{Path: "/proc/self/exe", Args: []string{"fetcher"}}
}

// Options says how Start runs a fetcher.
type Options struct {
	// Command runs the fetcher as a separate process; nil means
	// DefaultCommand(). It is used only when the caller is root: a
	// non-root caller has nothing to separate and fetches in-process.
	Command *Command
	// UID and GID the fetcher process runs as; 0 means Nobody. Root (0)
	// itself cannot be chosen.
	UID, GID uint32
	// Transport carries registry traffic. A custom transport cannot cross
	// a process boundary: setting it fetches in-process (for tests).
	Transport http.RoundTripper
	// Files are the blobs of a push, opened read-only, in the order
	// PushRequest describes them. A fetcher process inherits them as file
	// descriptors 3, 4, …; it gets no path. The caller keeps ownership
	// and closes them after Close.
	Files []*os.File
}

// Conn is a running fetcher: Send writes frames to it, Next reads its
// frames. Close it when done; Close stops the fetcher if it is still
// running.
type Conn struct {
	dec  *Decoder
	enc  *Encoder
	pid  int
	stop func() error

	closeOnce sync.Once
	closeErr  error
}

// Start runs a fetcher: as a separate unprivileged process when the caller
// is root and a fetcher command is known, else in a goroutine. Cancelling
// ctx stops it (the process is killed). A fetcher process that cannot be
// started gives errdefs.ErrUnavailable.
func Start(ctx context.Context, opts Options) (*Conn, error) {
	cmd := opts.Command
	if cmd == nil {
		cmd = DefaultCommand()
	}
	if os.Geteuid() != 0 || cmd == nil || opts.Transport != nil {
		return startInProcess(ctx, opts.Transport, opts.Files), nil
	}
	uid, gid := opts.UID, opts.GID
	if uid == 0 {
		uid = Nobody
	}
	if gid == 0 {
		gid = Nobody
	}
	return startProcess(ctx, cmd, uid, gid, opts.Files)
}

// Pid is the fetcher process's pid; 0 when the fetcher runs in-process.
func (c *Conn) Pid() int { return c.pid }

// Send writes one frame to the fetcher.
func (c *Conn) Send(f Frame) error { return c.enc.Encode(f) }

// Next reads the fetcher's next frame (see Decoder.Next). An error frame
// is returned as a frame; the caller turns it into an error with Err.
func (c *Conn) Next() (Frame, error) { return c.dec.Next() }

// Err converts an error frame into a *RemoteError matching its category.
func Err(f Frame) error { return frameError(f) }

// Close stops the fetcher (if it has not finished) and waits for it.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.stop() })
	return c.closeErr
}

func startInProcess(ctx context.Context, transport http.RoundTripper, files []*os.File) *Conn {
	ctx, cancel := context.WithCancel(ctx)
	reqR, reqW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := serve(ctx, reqR, outW, transport, files)
		outW.CloseWithError(err) // nil: EOF
		reqR.Close()
	}()
	stopper := context.AfterFunc(ctx, func() { outR.CloseWithError(ctx.Err()) })
	return &Conn{
		dec: NewDecoder(outR),
		enc: NewEncoder(reqW),
		stop: func() error {
			stopper()
			cancel()
			reqW.Close()
			outR.Close()
			<-done
			return nil
		},
	}
}

// startProcess runs cmd as uid:gid with no supplementary groups, an empty
// capability bounding set and no_new_privs, talking over two pipes.
//
// Go's SysProcAttr cannot drop the bounding set, and the bounding set and
// no_new_privs are per-thread attributes that a forked child inherits
// from the thread that forked it. So the fork happens on a thread locked
// to one goroutine that first drops every capability from its own
// bounding set and sets no_new_privs; the child then switches to uid:gid
// (SysProcAttr.Credential) and execs with nothing to regain. That thread
// stays locked, and so is discarded, when the goroutine ends after
// reaping the child; the Go runtime never clones new threads from a
// locked one. The goroutine lives as long as the child so that Pdeathsig
// (which fires when the forking thread exits) kills the child only when
// the parent is gone.
func startProcess(ctx context.Context, c *Command, uid, gid uint32, files []*os.File) (*Conn, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	// A pipe holding several data frames lets the fetcher read ahead
	// while the parent writes; best effort (the default is 64 KiB).
	_, _ = unix.FcntlInt(outW.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	stderr := &tail{max: 4096}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	cmd.Dir = "/"
	cmd.Env = childEnv()
	cmd.ExtraFiles = files
	exited, err := unpriv.Start(cmd, uid, gid)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start fetcher: %v: %w", err, errdefs.ErrUnavailable)
	}
	pid := cmd.Process.Pid
	stopper := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	var waitErr error
	var waitOnce sync.Once
	wait := func() error {
		waitOnce.Do(func() { waitErr = <-exited })
		return waitErr
	}
	return &Conn{
		dec: NewDecoder(outR),
		enc: NewEncoder(inW),
		pid: pid,
		stop: func() error {
			stopper()
			inW.Close() // a fetcher waiting for a request or a fetch list exits at EOF
			outR.Close()
			_ = cmd.Process.Kill() // and one still sending stops now
			err := wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) && !ee.Exited() {
				return nil // killed by us
			}
			if err != nil {
				return fmt.Errorf("fetcher: %v: %s", err, strings.TrimSpace(stderr.String()))
			}
			return nil
		},
	}, nil
}

// childEnv is the environment a fetcher process gets: proxy and CA
// settings, nothing else of the caller's.
func childEnv() []string {
	env := []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR":
			env = append(env, kv)
		}
	}
	return env
}

// Main is the fetcher process's body (`berth fetcher`): it serves one
// request on stdin/stdout and returns. It refuses to run as root, so that
// it cannot be made to do registry I/O with privileges. SIGINT is ignored:
// a terminal's Ctrl-C reaches the whole process group, and the parent
// decides when the fetcher stops (it kills it, or closes its stdin).
func Main() error {
	if os.Geteuid() == 0 || os.Getuid() == 0 {
		return fmt.Errorf("the fetcher runs only as an unprivileged user (berth starts it): %w", errdefs.ErrPermissionDenied)
	}
	signal.Ignore(syscall.SIGINT)
	return serve(context.Background(), os.Stdin, os.Stdout, nil, inheritedFiles())
}

// inheritedFiles are the read-only regular files this process inherited
// as descriptors 3, 4, … (the blobs of a push), up to the first that is
// not one.
func inheritedFiles() []*os.File {
	var files []*os.File
	for fd := 3; fd < 3+2+maxDigests; fd++ {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			break
		}
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
			break
		}
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("blob%d", len(files))))
	}
	return files
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
