// Package idletrim gives a long-running process's unused heap back to the
// kernel once it falls quiet, so that an idle service holds only the
// memory its live data needs.
//
// Go's runtime keeps freed heap pages mapped and returns them gradually
// (its background scavenger); a service that answers a burst of requests
// and then waits, as berth's API service mostly does, would hold the
// burst's garbage for minutes. After Quiet with no activity, a Trimmer
// runs a collection and returns every free page (debug.FreeOSMemory:
// about a millisecond of CPU here), once per quiet period.
package idletrim

import (
	"runtime/debug"
	"sync"
	"time"
)

// Quiet is how long a Trimmer waits after the last activity.
const Quiet = 500 * time.Millisecond

// Trimmer trims the heap once activity stops. The zero value is ready.
type Trimmer struct {
	mu    sync.Mutex
	timer *time.Timer
	trims int // completed trims (tests)
}

// Touch records activity: the trim happens Quiet after the last Touch.
// Safe for concurrent use.
func (t *Trimmer) Touch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer == nil {
		t.timer = time.AfterFunc(Quiet, t.trim)
		return
	}
	t.timer.Reset(Quiet)
}

func (t *Trimmer) trim() {
	debug.FreeOSMemory()
	t.mu.Lock()
	t.trims++
	t.mu.Unlock()
}

// Trims reports how many trims have run.
func (t *Trimmer) Trims() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.trims
}
