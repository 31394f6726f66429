// Package record is the engine's container record: the value stored in
// the state database for every container (settings, network requests,
// lifecycle state) and the transaction helpers that read and write it.
// Package engine re-exports the types under their public names
// (engine.Container, engine.State, ...); the engine's internal packages
// use them from here, so that none of them imports engine.
package record

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/berthproject/berth/state"
	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
)

// Buckets of the container records (ID → Container) and the name index
// (name → ID).
const (
	Bucket      = "containers"
	NamesBucket = "container-names"
)

// Container statuses, Docker's words.
const (
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusExited   = "exited"
	StatusRemoving = "removing"
	// StatusPaused is what inspect and ps show for a running container
	// whose processes are frozen (State.Paused); records keep "running".
	StatusPaused = "paused"
	// StatusRestarting is what inspect and ps show for an exited
	// container waiting out its restart policy's back-off
	// (State.Restarting); records keep "exited".
	StatusRestarting = "restarting"
)

// Container is the stored record of one container.
type Container struct {
	ID      string    `json:"id"`   // 64 hex digits
	Name    string    `json:"name"` // without Docker's leading "/"
	Created time.Time `json:"created"`
	// Image is the image as the user named it; ImageName its normalized
	// reference; ImageID the config digest it was created from.
	Image     string        `json:"image"`
	ImageName string        `json:"imageName"`
	ImageID   digest.Digest `json:"imageId"`
	// Path and Args are the process to run (entrypoint + cmd resolved).
	Path string   `json:"path"`
	Args []string `json:"args"`
	// Run holds the options the container was created with.
	Run runtime.RunOptions `json:"run"`
	// Runtime is the OCI runtime the container was created with: the
	// binary's absolute path ("" in records made before it was kept: runc).
	Runtime    string `json:"runtime,omitempty"`
	AutoRemove bool   `json:"autoRemove"`
	// Snapshot is the chain ID the rootfs snapshot starts from.
	Snapshot string `json:"snapshot"`
	// Net holds the network mode, published ports, DNS and extra hosts.
	Net NetworkSettings `json:"net"`
	// Restart is the restart policy the monitor applies.
	Restart RestartPolicy `json:"restart,omitempty"`
	// StopSignal (a name or number, "" for SIGTERM) and StopTimeout (in
	// seconds, nil for 10) are what Stop uses.
	StopSignal  string `json:"stopSignal,omitempty"`
	StopTimeout *int   `json:"stopTimeout,omitempty"`
	// LogMaxSize bounds the log file in bytes (0: unbounded); past it
	// the log is rotated, keeping LogMaxFiles files (0: 1), as Docker's
	// json-file driver.
	LogMaxSize  int64 `json:"logMaxSize,omitempty"`
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
	// LogOpts are the --log-opt options as given (for inspect).
	LogOpts map[string]string `json:"logOpts,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	State   State             `json:"state"`
}

// State is the container's lifecycle state, as Docker's State object.
type State struct {
	Status     string    `json:"status"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	Error      string    `json:"error,omitempty"`
	// Watcher identifies the process that started the container and
	// records its exit: pid and start time (clock ticks since boot, from
	// /proc/PID/stat) so that a reused pid is not mistaken for it.
	Watcher ProcessID `json:"watcher,omitempty"`
	// RestartCount counts restarts by the restart policy.
	RestartCount int `json:"restartCount,omitempty"`
	// StoppedByUser is set by stop and kill: the restart policy then
	// leaves the container stopped.
	StoppedByUser bool `json:"stoppedByUser,omitempty"`
	// ExitHandled is set once the exit's --rm or restart policy ran.
	ExitHandled bool `json:"exitHandled,omitempty"`
	// Paused is set by Pause and cleared by Unpause; it means something
	// only while Status is "running" (see Container.DisplayStatus).
	Paused bool `json:"paused,omitempty"`
	// Restarting is set while Status is "exited" and the restart policy
	// waits out its back-off before the next start (Docker's
	// State.Restarting); a start, a stop or the policy giving up clears it.
	Restarting bool `json:"restarting,omitempty"`
	// OOMKilled is set when the kernel's OOM killer killed a process of
	// the container during its last run (the memory cgroup's oom_kill
	// count), as Docker's State.OOMKilled.
	OOMKilled bool `json:"oomKilled,omitempty"`
	// Prior is the state a start replaced, kept so that a start that
	// fails can put it back (see StartFailed); nil in records of older
	// Berth versions.
	Prior *State `json:"prior,omitempty"`
}

// Begin is the state of a start begun now (UTC) under watcher: running,
// with the restart count carried over and s kept as Prior.
func (s State) Begin(now time.Time, watcher ProcessID) State {
	s.Prior = nil
	return State{Status: StatusRunning, StartedAt: now, Watcher: watcher, RestartCount: s.RestartCount, Prior: &s}
}

// StartFailed records a start that failed with message msg, as Docker:
// the container keeps the state it had before the start (exited with its
// exit code, or created) and gets Error. code is the exit code the
// failure maps to (127 command not found, 126 not executable, else 128);
// 128 keeps a non-zero earlier exit code, as Docker's "exit code unknown"
// applies only where none was set. A state without Prior (a record of an
// older version) becomes "created".
func (s *State) StartFailed(code int, msg string) {
	next := State{Status: StatusCreated, FinishedAt: s.FinishedAt, RestartCount: s.RestartCount}
	if s.Prior != nil {
		next = *s.Prior
		next.RestartCount = s.RestartCount
	}
	if code != 128 || next.ExitCode == 0 {
		next.ExitCode = code
	}
	next.Error, next.Pid, next.Watcher, next.Restarting, next.Paused = msg, 0, ProcessID{}, false, false
	*s = next
}

// RestartPolicy is Docker's --restart: Name is "no" (or ""), "always",
// "unless-stopped" or "on-failure" (with MaximumRetryCount, 0 = no limit).
type RestartPolicy struct {
	Name              string `json:"name,omitempty"`
	MaximumRetryCount int    `json:"maximumRetryCount,omitempty"`
}

// NetworkSettings are a container's network requests, as `run` takes them.
type NetworkSettings struct {
	// Mode is Docker's --network: "bridge" (the default network), "none",
	// "host", "container:NAME", or the name of a user-defined network.
	Mode    string   `json:"mode"`
	IP      string   `json:"ip,omitempty"`      // --ip on Mode's network
	Aliases []string `json:"aliases,omitempty"` // --network-alias
	// Ports are the published ports, resolved from -p/-P at create.
	Ports      []network.PortBinding `json:"ports,omitempty"`
	DNS        []string              `json:"dns,omitempty"`
	DNSSearch  []string              `json:"dnsSearch,omitempty"`
	DNSOptions []string              `json:"dnsOptions,omitempty"`
	ExtraHosts []string              `json:"extraHosts,omitempty"`
	// Published are the bindings of Ports as the last start resolved them
	// (random host ports filled in), when they differ from Ports.
	Published []network.PortBinding `json:"published,omitempty"`
	// Extra are the networks joined with `network connect`, attached at
	// every start after Mode's network, in this order (eth1, eth2, ...).
	Extra []Attachment `json:"extra,omitempty"`
	// PrimaryDetached is set by `network disconnect` from Mode's network:
	// later starts no longer attach to it.
	PrimaryDetached bool `json:"primaryDetached,omitempty"`
	// Exposed are the --expose ports (ExposedPorts of the API's
	// create), as "PORT/PROTO", set at create.
	Exposed []string `json:"exposed,omitempty"`
}

// Attachment is one network a container joined with `network connect`.
type Attachment struct {
	Network string   `json:"network"`           // name, as given to connect
	IP      string   `json:"ip,omitempty"`      // --ip
	Aliases []string `json:"aliases,omitempty"` // --alias
}

// NetworkRequest is what a create request carries for the network: the
// settings plus the raw -p/-P/--expose flags.
type NetworkRequest struct {
	NetworkSettings
	Publish    []string // -p specs
	PublishAll bool     // -P
	Expose     []string // --expose
}

// ShortID is the 12-digit ID Docker prints.
func (c Container) ShortID() string { return c.ID[:12] }

// DisplayStatus is Docker's State.Status word for c: "paused" for a
// running container that is paused, "restarting" for an exited one
// waiting to be restarted, else the record's status.
func (c Container) DisplayStatus() string {
	switch {
	case c.State.Status == StatusRunning && c.State.Paused:
		return StatusPaused
	case c.State.Status == StatusExited && c.State.Restarting:
		return StatusRestarting
	}
	return c.State.Status
}

// Live reports whether c counts as running for Docker's listings and
// State.Running: running (paused or not) or restarting.
func (c Container) Live() bool {
	return c.State.Status == StatusRunning || c.DisplayStatus() == StatusRestarting
}

// StatusText is c's state as Docker's STATUS column (`docker ps`, the
// API's container list): "Up 3 seconds", "Up 3 seconds (Paused)",
// "Restarting (1) 2 seconds ago", "Exited (0) 2 minutes ago",
// "Removal In Progress" or "Created".
func (c Container) StatusText() string {
	s := c.State
	switch c.DisplayStatus() {
	case StatusRunning:
		return "Up " + units.HumanDuration(time.Since(s.StartedAt))
	case StatusPaused:
		return "Up " + units.HumanDuration(time.Since(s.StartedAt)) + " (Paused)"
	case StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(time.Since(s.FinishedAt)))
	case StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(time.Since(s.FinishedAt)))
	case StatusRemoving:
		return "Removal In Progress"
	}
	return "Created"
}

// Command is c's command line as Docker's container list shows it: the
// path and arguments joined by spaces, an argument holding a space put
// in single quotes ("sh -c 'exit 1'").
func (c Container) Command() string {
	parts := []string{c.Path}
	for _, a := range c.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// ShouldRestart reports whether c's restart policy restarts it after the
// exit its record holds (Docker's rules: never after stop or kill).
func (c Container) ShouldRestart() bool {
	if c.State.StoppedByUser {
		return false
	}
	switch c.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return c.State.ExitCode != 0 && (c.Restart.MaximumRetryCount == 0 || c.State.RestartCount < c.Restart.MaximumRetryCount)
	}
	return false
}

// ConnectedTo reports whether the settings name the network called name.
func (s NetworkSettings) ConnectedTo(name string) bool {
	if s.Mode == name && !s.PrimaryDetached {
		return true
	}
	return slices.ContainsFunc(s.Extra, func(a Attachment) bool { return a.Network == name })
}

// ProcessID names one process across pid reuse.
type ProcessID struct {
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"startTime,omitempty"`
}

// Self identifies the calling process.
func Self() ProcessID {
	pid := os.Getpid()
	st, _ := ProcStartTime(pid)
	return ProcessID{Pid: pid, StartTime: st}
}

// Alive reports whether the process still exists (and is not a zombie).
func (p ProcessID) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	st, err := ProcStartTime(p.Pid)
	return err == nil && st == p.StartTime
}

// ProcStartTime reads field 22 (starttime, clock ticks since boot) of
// /proc/PID/stat; a zombie counts as gone (an error).
func ProcStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it follow ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" {
		return 0, fmt.Errorf("process %d is gone", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Get reads the record of container id (a full ID); errdefs.ErrNotFound
// when there is none (package state's error).
func Get(tx *state.Tx, id string) (Container, error) {
	var c Container
	err := tx.Get(Bucket, id, &c)
	return c, err
}

// Put stores c under its ID (the name index is not touched).
func Put(tx *state.Tx, c Container) error { return tx.Put(Bucket, c.ID, c) }

// Update reads the record of container id, lets fn change it and stores
// it, in one transaction of db. An error from fn aborts without storing.
func Update(ctx context.Context, db *state.DB, id string, fn func(*Container) error) error {
	return db.Update(ctx, func(tx *state.Tx) error {
		cur, err := Get(tx, id)
		if err != nil {
			return err
		}
		if err := fn(&cur); err != nil {
			return err
		}
		return Put(tx, cur)
	})
}

// List returns every stored record, in key (ID) order.
func List(tx *state.Tx) ([]Container, error) {
	var out []Container
	err := tx.ForEach(Bucket, func(_ string, data []byte) error {
		var c Container
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// Using returns the IDs of the containers created from image imageID.
func Using(tx *state.Tx, imageID digest.Digest) ([]string, error) {
	all, err := List(tx)
	var ids []string
	for _, c := range all {
		if c.ImageID == imageID {
			ids = append(ids, c.ID)
		}
	}
	return ids, err
}
