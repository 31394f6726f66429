package record

import (
	"strings"
	"testing"
	"time"
)

func TestStartFailedKeepsPriorState(t *testing.T) {
	done := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exited := State{Status: StatusExited, ExitCode: 3, StartedAt: done.Add(-time.Minute), FinishedAt: done, ExitHandled: true, RestartCount: 2, Restarting: true}
	cases := []struct {
		name     string
		prior    State
		code     int
		status   string
		exitCode int
	}{
		{"exited keeps its code", exited, 128, StatusExited, 3},
		{"not found is 127 even after an exit", exited, 127, StatusExited, 127},
		{"created gets 128", State{Status: StatusCreated}, 128, StatusCreated, 128},
		{"exit 0 becomes unknown", State{Status: StatusExited, FinishedAt: done}, 128, StatusExited, 128},
	}
	for _, c := range cases {
		s := c.prior.Begin(time.Now(), ProcessID{Pid: 42})
		if s.Status != StatusRunning || s.RestartCount != c.prior.RestartCount || s.Restarting || s.ExitCode != 0 {
			t.Fatalf("%s: Begin gave %+v", c.name, s)
		}
		s.StartFailed(c.code, "boom")
		if s.Status != c.status || s.ExitCode != c.exitCode || s.Error != "boom" || s.Restarting || s.Watcher.Pid != 0 {
			t.Errorf("%s: %+v, want status %s exit code %d", c.name, s, c.status, c.exitCode)
		}
		if !s.FinishedAt.Equal(c.prior.FinishedAt) || !s.StartedAt.Equal(c.prior.StartedAt) {
			t.Errorf("%s: times changed: %+v", c.name, s)
		}
	}
}

func TestDisplayStatusAndText(t *testing.T) {
	c := Container{State: State{Status: StatusExited, ExitCode: 1, Restarting: true, FinishedAt: time.Now().Add(-3 * time.Second)}}
	if c.DisplayStatus() != StatusRestarting || !c.Live() || !strings.HasPrefix(c.StatusText(), "Restarting (1) 3 seconds ago") {
		t.Fatalf("restarting: %s %v %q", c.DisplayStatus(), c.Live(), c.StatusText())
	}
	c.State.Restarting = false
	if c.DisplayStatus() != StatusExited || c.Live() || !strings.HasPrefix(c.StatusText(), "Exited (1) ") {
		t.Fatalf("exited: %s %v %q", c.DisplayStatus(), c.Live(), c.StatusText())
	}
}

func TestCommandQuotesArgsWithSpaces(t *testing.T) {
	c := Container{Path: "sh", Args: []string{"-c", "exit 1"}}
	if got := c.Command(); got != "sh -c 'exit 1'" {
		t.Fatalf("Command: %q", got)
	}
}
