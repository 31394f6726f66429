// Package monitor starts the per-container monitor: the small process that
// holds a detached container's stdio, writes its log, records its exit
// status and runs an exit command, after every berth process has exited.
//
// The default monitor is conmon (the monitor Podman uses), driven through
// its command line. conmon is a small C program: its proportional memory
// per container here is ~370 KB, where a Go process that waits on a child
// and copies its output costs ~760 KB (ARCHITECTURE.md, "The monitor").
//
// Lifecycle: Start runs conmon, which daemonizes, runs `RUNTIME create` on
// the bundle and reports the container's pid over a sync pipe; the caller
// then runs `RUNTIME start`. When the container exits, conmon writes the
// exit status to ExitDir/ID (decimal; 128+N for a death by signal N) and
// runs ExitCommand.
package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// Config describes one container to monitor. Paths are absolute.
type Config struct {
	ID, Name string
	// Bundle is the OCI bundle directory; the monitor's attach socket
	// (Bundle/attach) and control FIFO (Bundle/ctl) are made there.
	Bundle string
	// Runtime is the program the monitor runs as the OCI runtime (an
	// absolute path) and RuntimeArgs the arguments it puts before the
	// runtime's subcommand (e.g. --root DIR); see ociruntime.MonitorArgs.
	Runtime     string
	RuntimeArgs []string
	// LogPath receives the container's output in the CRI ("k8s-file")
	// format: "RFC3339NANO STREAM P|F TEXT" lines. LogMaxSize bounds it in
	// bytes (0: unbounded); past it the monitor starts the file afresh.
	LogPath    string
	LogMaxSize int64
	// ExitDir receives a file named ID holding the exit status.
	ExitDir string
	// ExitCommand runs when the container has exited (argv, absolute path
	// first); nil for none.
	ExitCommand []string
	// Terminal allocates a pseudo-terminal; Stdin keeps stdin open.
	// StdinOnce (with Stdin) closes the container's stdin when an
	// attached client's input ends, instead of keeping it open.
	Terminal, Stdin, StdinOnce bool
	// PidFile receives the container process's pid; MonitorPidFile the
	// monitor's.
	PidFile, MonitorPidFile string
}

// Conmon is the conmon binary: a name in $PATH or a path.
type Conmon struct {
	Binary string
}

// New finds the conmon binary; a missing one gives errdefs.ErrNotFound.
func New(binary string) (*Conmon, error) {
	if binary == "" {
		binary = "conmon"
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, fmt.Errorf("container monitor %q not found in $PATH (install it: apt-get install conmon): %w", binary, errdefs.ErrNotFound)
	}
	return &Conmon{Binary: path}, nil
}

// Started is what Start returns: the container's pid and the monitor's.
type Started struct {
	Pid, MonitorPid int
}

// syncMessage is what conmon writes on its sync pipe (API version 1).
type syncMessage struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Start launches the monitor, which creates (not starts) the container.
// It returns once the runtime has created the container, or fails with the
// runtime's error message.
func (c *Conmon) Start(ctx context.Context, cfg Config) (Started, error) {
	args := []string{
		"--api-version", "1",
		"-c", cfg.ID, "-u", cfg.ID, "-n", cfg.Name,
		"-r", cfg.Runtime,
		"-b", cfg.Bundle, "-p", cfg.PidFile, "-P", cfg.MonitorPidFile,
		"-l", "k8s-file:" + cfg.LogPath,
		"--exit-dir", cfg.ExitDir,
		"--socket-dir-path", filepath.Dir(cfg.Bundle), "--full-attach",
		"--log-level", "error", "--syslog=false",
	}
	for _, a := range cfg.RuntimeArgs {
		args = append(args, "--runtime-arg", a)
	}
	if cfg.LogMaxSize > 0 {
		args = append(args, "--log-size-max", strconv.FormatInt(cfg.LogMaxSize, 10))
	}
	if cfg.Terminal {
		args = append(args, "-t")
	}
	if cfg.Stdin {
		args = append(args, "-i")
		if !cfg.StdinOnce {
			args = append(args, "--leave-stdin-open")
		}
	}
	if len(cfg.ExitCommand) > 0 {
		args = append(args, "--exit-command", cfg.ExitCommand[0])
		for _, a := range cfg.ExitCommand[1:] {
			args = append(args, "--exit-command-arg", a)
		}
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return Started{}, err
	}
	defer syncR.Close()
	cmd := exec.Command(c.Binary, args...)
	cmd.ExtraFiles = []*os.File{syncW} // fd 3
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3")
	cmd.Dir = cfg.Bundle
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return Started{}, fmt.Errorf("start monitor: %w", err)
	}
	syncW.Close()
	// conmon forks and the parent exits at once; the child reports on the
	// sync pipe.
	waitErr := cmd.Wait()
	msg, err := readSync(ctx, syncR)
	if err != nil {
		if waitErr != nil && stderr.Len() > 0 {
			return Started{}, fmt.Errorf("monitor: %s", strings.TrimSpace(stderr.String()))
		}
		return Started{}, fmt.Errorf("monitor: %w", err)
	}
	if msg.Data <= 0 {
		return Started{}, &CreateError{Message: strings.TrimSpace(msg.Message)}
	}
	st := Started{Pid: msg.Data}
	if data, err := os.ReadFile(cfg.MonitorPidFile); err == nil {
		st.MonitorPid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	return st, nil
}

// CreateError is the OCI runtime's refusal to create the container, as
// the monitor reported it.
type CreateError struct{ Message string }

func (e *CreateError) Error() string { return e.Message }

func readSync(ctx context.Context, r *os.File) (syncMessage, error) {
	var msg syncMessage
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Minute)
	}
	r.SetReadDeadline(deadline)
	dec := json.NewDecoder(bufio.NewReader(r))
	if err := dec.Decode(&msg); err != nil {
		if errors.Is(err, io.EOF) {
			return msg, fmt.Errorf("monitor exited without reporting the container")
		}
		return msg, err
	}
	return msg, nil
}

// ExitStatus reads the exit status the monitor recorded for id under dir.
// errdefs.ErrNotFound while the container has not exited.
func ExitStatus(dir, id string) (code int, at time.Time, err error) {
	path := filepath.Join(dir, id)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, at, fmt.Errorf("no exit status for %s yet: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, at, err
	}
	s := strings.TrimSpace(string(data))
	if s == "" { // written but not yet filled in
		return 0, at, fmt.Errorf("no exit status for %s yet: %w", id, errdefs.ErrNotFound)
	}
	code, err = strconv.Atoi(s)
	if err != nil {
		return 0, at, fmt.Errorf("exit file %s: %q: %w", path, s, errdefs.ErrDataLoss)
	}
	if fi, err := os.Stat(path); err == nil {
		at = fi.ModTime().UTC()
	}
	return code, at, nil
}
