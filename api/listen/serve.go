package listen

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Serve serves h on the listeners until ctx ends or, with idle > 0,
// nothing has been in flight for that long (a hijacked stream counts as
// its request until the handler returns); then it stops accepting and
// waits up to 10 s for requests in flight. It returns nil on such an
// orderly stop, else the error that ended a listener.
func Serve(ctx context.Context, h http.Handler, idle time.Duration, listeners ...net.Listener) error {
	t := &tracker{last: time.Now()}
	srv := &http.Server{Handler: t.wrap(h), ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- srv.Serve(l) }()
	}
	var tick <-chan time.Time
	if idle > 0 {
		tk := time.NewTicker(min(idle/4+time.Millisecond, time.Second))
		defer tk.Stop()
		tick = tk.C
	}
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick:
			if t.idleFor() >= idle {
				break loop
			}
		case err = <-errc:
			break loop
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err == http.ErrServerClosed {
		err = nil
	}
	return err
}

// tracker counts the requests in flight and remembers when the last one
// ended.
type tracker struct {
	active atomic.Int64
	mu     sync.Mutex
	last   time.Time
}

func (t *tracker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.active.Add(1)
		defer t.done()
		h.ServeHTTP(w, r)
	})
}

func (t *tracker) done() {
	t.mu.Lock()
	t.last = time.Now()
	t.mu.Unlock()
	t.active.Add(-1)
}

// idleFor is how long nothing has been in flight (0 if busy).
func (t *tracker) idleFor() time.Duration {
	if t.active.Load() > 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Since(t.last)
}
