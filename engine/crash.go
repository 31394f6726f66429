package engine

import "github.com/berthproject/berth/engine/internal/probe"

// crashPoint is the crash-safety test hook (see package probe for the
// points and BERTH_TEST_CRASH_AT).
func crashPoint(name string) { probe.Crash(name) }

// trace marks the start of a phase; call the result at its end (see
// package probe, BERTH_TRACE).
func trace(phase string) func() { return probe.Trace(phase) }
