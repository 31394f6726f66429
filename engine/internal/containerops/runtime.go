// Package containerops holds the engine's verbs on a container's
// processes: exec, top, stats, and inspect's Docker-shaped answer, with
// the OCI runtime CLI calls they share. It does not import package
// engine: the engine passes the container's record and what else a verb
// needs.
package containerops

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/runtime/ociruntime"
	"github.com/containerd/errdefs"
)

// OCI returns rt as the OCI runtime CLI, for what the Runtime contract
// does not cover (exec, pause, resume, ps, the monitor); who names the
// user in the errdefs.ErrNotImplemented error when rt is something else
// ("exec" gives "exec needs an OCI runtime binary").
func OCI(rt runtime.Runtime, who string) (*ociruntime.Runtime, error) {
	if u, ok := rt.(runtime.Unavailable); ok {
		return nil, u.Err
	}
	oci, ok := rt.(*ociruntime.Runtime)
	if !ok {
		return nil, fmt.Errorf("%s needs an OCI runtime binary: %w", who, errdefs.ErrNotImplemented)
	}
	return oci, nil
}

// RuntimeCmd runs `RUNTIME --root ROOT args...` with the OCI runtime rt
// and returns its stdout; a failure's error holds the runtime's stderr on
// one line.
func RuntimeCmd(ctx context.Context, r runtime.Runtime, args ...string) ([]byte, error) {
	rt, err := OCI(r, "this operation")
	if err != nil {
		return nil, err
	}
	cmd := rt.Command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("runtime %s: %s", args[0], msg)
	}
	return out, nil
}

// containerPids lists the host pids of every process in the container
// (the OCI runtime's `ps`).
func containerPids(ctx context.Context, rt runtime.Runtime, id string) ([]int, error) {
	out, err := RuntimeCmd(ctx, rt, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("runtime ps: %w", err)
	}
	return pids, nil
}

// TopResult is `docker top` output: ps's column titles and one row per
// container process.
type TopResult struct {
	Titles    []string
	Processes [][]string
}

// Top runs ps on the host with psArgs (default "-ef") and keeps the rows
// of the processes of the running container id, as `docker top`.
// errdefs.ErrInvalidArgument when ps fails on psArgs or prints no PID
// column.
func Top(ctx context.Context, rt runtime.Runtime, id string, psArgs []string) (TopResult, error) {
	var res TopResult
	pids, err := containerPids(ctx, rt, id)
	if err != nil {
		return res, err
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.CommandContext(ctx, "ps", psArgs...).CombinedOutput()
	if err != nil {
		return res, fmt.Errorf("Error running ps: %s: %w", strings.TrimSpace(string(out)), errdefs.ErrInvalidArgument)
	}
	return parsePs(out, pids)
}

// parsePs keeps the rows of ps output whose PID column is in pids; the
// last column (the command) keeps its spaces.
func parsePs(out []byte, pids []int) (TopResult, error) {
	var res TopResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		return res, fmt.Errorf("ps printed nothing: %w", errdefs.ErrInvalidArgument)
	}
	res.Titles = strings.Fields(sc.Text())
	pidCol := slices.Index(res.Titles, "PID")
	if pidCol < 0 {
		return res, fmt.Errorf("Couldn't find PID field in ps output: %w", errdefs.ErrInvalidArgument)
	}
	res.Processes = [][]string{}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		n := len(res.Titles)
		if len(f) > n {
			f = append(f[:n-1], strings.Join(f[n-1:], " "))
		}
		res.Processes = append(res.Processes, f)
	}
	return res, sc.Err()
}

// readProcFile is os.ReadFile for small kernel files, trimmed.
func readProcFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
