// Package monitor starts the per-container monitor: the small process that
// holds a detached container's stdio, writes its log, records its exit
// status and runs an exit command, after every berth process has exited.
//
// The default monitor is berth-monitor, Berth's own small C program
// (cmd/berth-monitor), installed next to the berth binary; conmon (the
// monitor Podman uses) is the alternative. Both are driven through the
// same command line (berth-monitor takes conmon's option names) and speak
// the same protocols: the sync pipe, the attach socket, the control FIFO,
// the exit file. They differ in the log: berth-monitor writes Docker's
// json-file format and rotates it as Docker does (max-size, max-file);
// conmon writes the CRI k8s-file format and can only start a full log
// afresh. A C monitor because of memory: a Go process that waits on a
// child and copies its output costs ~760 KB of proportional memory per
// container here (ARCHITECTURE.md, "The monitor").
//
// Lifecycle: Start runs the monitor, which daemonizes, runs `RUNTIME
// create` on the bundle and reports the container's pid over a sync pipe;
// the caller then runs `RUNTIME start`. When the container exits, the
// monitor writes the exit status to ExitDir/ID (decimal; 128+N for a death
// by signal N) and runs ExitCommand.
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
	// LogPath receives the container's output: Docker's json-file format
	// from berth-monitor, the CRI k8s-file format from conmon (ReadLog
	// reads both). Once it holds LogMaxSize bytes (0: unbounded) it is
	// rotated, keeping LogMaxFiles files (0: 1; conmon: 1 only, it starts
	// the file afresh).
	LogPath     string
	LogMaxSize  int64
	LogMaxFiles int
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

// Program is a monitor binary.
type Program struct {
	// Binary is the program's absolute path.
	Binary string
	// Conmon is true for conmon, false for berth-monitor.
	Conmon bool
}

// BinaryName is the file name of Berth's own monitor.
const BinaryName = "berth-monitor"

// New finds the monitor program. binary "" picks the default:
// berth-monitor, else conmon. Otherwise binary is a path, or a name looked
// up first in the directory of the running executable (where make puts
// berth-monitor beside berth), then in $PATH. A program named conmon is
// driven as conmon, any other as berth-monitor. A missing program gives errdefs.ErrNotFound.
func New(binary string) (*Program, error) {
	if binary == "" {
		if p, err := New(BinaryName); err == nil {
			return p, nil
		}
		binary = "conmon"
	}
	path, err := besideExecutable(binary)
	if err != nil {
		path, err = exec.LookPath(binary)
	}
	if err != nil {
		return nil, fmt.Errorf("container monitor %q not found (build berth-monitor with make, or install conmon): %w", binary, errdefs.ErrNotFound)
	}
	if path, err = filepath.Abs(path); err != nil {
		return nil, err
	}
	return &Program{Binary: path, Conmon: strings.Contains(filepath.Base(path), "conmon")}, nil
}

// besideExecutable is the program named name (no path) in the directory
// of the running executable, if there is one.
func besideExecutable(name string) (string, error) {
	if strings.Contains(name, "/") {
		return "", os.ErrNotExist
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(exe), name)
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return "", os.ErrNotExist
	}
	return p, nil
}

// CheckLogFiles refuses a log that keeps maxFiles files (rotation with
// max-file) when the program is conmon, which can only start a full log
// afresh: errdefs.ErrInvalidArgument, one line.
func (c *Program) CheckLogFiles(maxFiles int) error {
	if c.Conmon && maxFiles > 1 {
		return fmt.Errorf("log opt max-file needs berth-monitor: conmon (%s) cannot keep rotated log files: %w", c.Binary, errdefs.ErrInvalidArgument)
	}
	return nil
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
// runtime's error message (*CreateError); CheckLogFiles' error for a
// LogMaxFiles conmon cannot keep.
func (c *Program) Start(ctx context.Context, cfg Config) (Started, error) {
	if err := c.CheckLogFiles(cfg.LogMaxFiles); err != nil {
		return Started{}, err
	}
	logSpec := "json-file:" + cfg.LogPath
	if c.Conmon {
		logSpec = "k8s-file:" + cfg.LogPath
	}
	args := []string{
		"--api-version", "1",
		"-c", cfg.ID, "-u", cfg.ID, "-n", cfg.Name,
		"-r", cfg.Runtime,
		"-b", cfg.Bundle, "-p", cfg.PidFile, "-P", cfg.MonitorPidFile,
		"-l", logSpec,
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
	if cfg.LogMaxFiles > 1 {
		args = append(args, "--log-max-files", strconv.Itoa(cfg.LogMaxFiles))
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
	pid, err := c.launch(ctx, cfg.Bundle, args)
	if err != nil {
		return Started{}, err
	}
	st := Started{Pid: pid}
	if data, err := os.ReadFile(cfg.MonitorPidFile); err == nil {
		st.MonitorPid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	return st, nil
}

// ExecConfig describes a process to run in a running container under the
// monitor, with a terminal, as `exec -d -t` does. Paths are absolute.
type ExecConfig struct {
	// ID is the container's; Session names the exec (the attach socket's
	// directory under Dir).
	ID, Session string
	// Runtime and RuntimeArgs are as in Config.
	Runtime     string
	RuntimeArgs []string
	// ProcessSpec is the OCI process JSON (`RUNTIME exec --process`).
	ProcessSpec string
	// Dir is a scratch directory for the pid file and the sockets.
	Dir string
}

// StartExec runs `RUNTIME exec --detach` of cfg.ProcessSpec under the
// monitor, which holds the terminal and discards its output for as long
// as the process runs (Docker's daemon does the same for `exec -d -t`).
// It returns the process's pid once the runtime started it; a refusal
// is a *CreateError with the runtime's message.
func (c *Program) StartExec(ctx context.Context, cfg ExecConfig) (int, error) {
	args := []string{"--api-version", "1", "-c", cfg.ID, "-u", cfg.Session, "-n", cfg.Session, "-r", cfg.Runtime}
	for _, a := range cfg.RuntimeArgs {
		args = append(args, "--runtime-arg", a)
	}
	args = append(args,
		"--exec", "--exec-process-spec", cfg.ProcessSpec, "-t",
		"-p", filepath.Join(cfg.Dir, "pid"), "-l", "none", "--socket-dir-path", cfg.Dir,
		"--log-level", "error", "--syslog=false",
	)
	return c.launch(ctx, cfg.Dir, args)
}

// launch runs the monitor with args in dir and reads the pid it reports
// on the sync pipe (fd 3, named by _OCI_SYNCPIPE): the monitor forks and
// its parent exits at once; the child reports once the OCI runtime has
// created the container (or exec'd the process), or why it could not.
func (c *Program) launch(ctx context.Context, dir string, args []string) (int, error) {
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer syncR.Close()
	cmd := exec.Command(c.Binary, args...)
	cmd.ExtraFiles = []*os.File{syncW} // fd 3
	cmd.Env = append(os.Environ(), "_OCI_SYNCPIPE=3")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return 0, fmt.Errorf("start monitor: %w", err)
	}
	syncW.Close()
	waitErr := cmd.Wait()
	msg, err := readSync(ctx, syncR)
	if err != nil {
		if waitErr != nil && stderr.Len() > 0 {
			return 0, fmt.Errorf("monitor: %s", strings.TrimSpace(stderr.String()))
		}
		return 0, fmt.Errorf("monitor: %w", err)
	}
	if msg.Data <= 0 {
		return 0, &CreateError{Message: strings.TrimSpace(msg.Message)}
	}
	return msg.Data, nil
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
