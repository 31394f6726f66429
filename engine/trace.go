package engine

import (
	"fmt"
	"os"
	"time"
)

// traceOn prints the time engine phases take to stderr when BERTH_TRACE
// is set: a tool for finding where run latency goes (see bench/).
var traceOn = os.Getenv("BERTH_TRACE") != ""

var traceStart = time.Now()

// trace marks the start of a phase; call the result at its end.
func trace(phase string) func() {
	if !traceOn {
		return func() {}
	}
	t0 := time.Now()
	return func() {
		fmt.Fprintf(os.Stderr, "berth-trace %7.2fms  %-24s %6.2fms\n", ms(time.Since(traceStart)), phase, ms(time.Since(t0)))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
