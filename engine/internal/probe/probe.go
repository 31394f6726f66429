// Package probe holds the engine's two diagnostic hooks, both driven by
// the environment and both no-ops unless set: crash points for the
// crash-safety tests (BERTH_TEST_CRASH_AT) and phase timing
// (BERTH_TRACE). The engine and its internal packages share them.
package probe

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// crashAt is the test hook for crash-safety tests: when BERTH_TEST_CRASH_AT
// names a point, the process SIGKILLs itself on reaching it, exactly as a
// kill -9 there would. Points: create-recorded, create-snapshot,
// start-recorded, start-mounted, start-network, start-spawned,
// remove-marked, remove-runtime, remove-snapshot; in network setup
// after-netns, after-attach, after-etc; and package network's
// "network:STEP" points inside Attach.
var crashAt = os.Getenv("BERTH_TEST_CRASH_AT")

// Crash kills the process with SIGKILL when BERTH_TEST_CRASH_AT is name.
func Crash(name string) {
	if crashAt == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
}

// traceOn prints the time engine phases take to stderr when BERTH_TRACE
// is set: a tool for finding where run latency goes (see bench/).
var traceOn = os.Getenv("BERTH_TRACE") != ""

var traceStart = time.Now()

// Trace marks the start of a phase; call the result at its end. With
// BERTH_TRACE set, the end prints one line to stderr: milliseconds since
// the process started, the phase, and the phase's duration in ms.
func Trace(phase string) func() {
	if !traceOn {
		return func() {}
	}
	t0 := time.Now()
	return func() {
		fmt.Fprintf(os.Stderr, "berth-trace %7.2fms  %-24s %6.2fms\n", ms(time.Since(traceStart)), phase, ms(time.Since(t0)))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
