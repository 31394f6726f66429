package run

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/berthproject/berth/engine"
)

// proxiedSignals are the signals a foreground run relays to its container.
// Docker's --sig-proxy relays every signal but SIGCHLD, SIGPIPE and the Go
// runtime's SIGURG; berth also keeps the ones that report its own faults
// (SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV) and SIGPROF, the
// profiler's. SIGKILL and SIGSTOP cannot be caught.
var proxiedSignals = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
	syscall.SIGALRM, syscall.SIGTERM, syscall.SIGSTKFLT, syscall.SIGCONT, syscall.SIGTSTP,
	syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM,
	syscall.SIGWINCH, syscall.SIGIO, syscall.SIGPWR, syscall.SIGSYS,
}

// SignalProxy relays the signals berth receives to a foreground
// container, as Docker's --sig-proxy does. It catches them from the moment
// it is made, so that a signal which arrives while the engine is still
// creating or starting the container neither kills berth half-way nor
// cancels the operation: such signals are queued, in order, and delivered
// once the container's process exists (Forward). Every later signal,
// a second Ctrl-C included, is forwarded too.
type SignalProxy struct {
	ch   chan os.Signal
	done chan struct{}

	mu      sync.Mutex
	queue   []syscall.Signal
	send    func(syscall.Signal) error
	stopped bool
}

// CatchSignals starts catching the proxied signals; the caller must call
// Stop.
func CatchSignals() *SignalProxy {
	s := &SignalProxy{ch: make(chan os.Signal, 64), done: make(chan struct{})}
	signal.Notify(s.ch, proxiedSignals...)
	go s.loop()
	return s
}

func (s *SignalProxy) loop() {
	defer close(s.done)
	for sig := range s.ch {
		sig := sig.(syscall.Signal)
		s.mu.Lock()
		send := s.send
		if send == nil {
			s.queue = append(s.queue, sig)
		}
		s.mu.Unlock()
		if send != nil {
			send(sig) // the container may have exited already: nothing to do
		}
	}
}

// Interrupted returns the first SIGINT or SIGTERM received before
// Forward, if any: the caller has not started the container yet and
// should not (Docker's CLI exits 128+signal, 130 or 143).
func (s *SignalProxy) Interrupted() (syscall.Signal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sig := range s.queue {
		if sig == syscall.SIGINT || sig == syscall.SIGTERM {
			return sig, true
		}
	}
	return 0, false
}

// Forward delivers the queued signals through send, in the order they
// arrived, and every later one as it arrives. send is the container's
// process's Signal; its errors (the process is gone) are ignored.
func (s *SignalProxy) Forward(send func(syscall.Signal) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	for _, sig := range s.queue {
		send(sig)
	}
	s.queue = nil
	s.send = send
}

// Stop stops relaying signals and waits for a delivery in progress; it
// may be called more than once.
func (s *SignalProxy) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	signal.Stop(s.ch)
	close(s.ch)
	<-s.done
}

// abandon is the end of a run interrupted before its container started:
// with --rm (autoRemove) the created container is removed, so that
// nothing is left; without, it stays "created", as `berth create` leaves
// it.
func abandon(ctx context.Context, e *engine.Engine, id string, autoRemove bool) error {
	if !autoRemove {
		return nil
	}
	return e.Remove(ctx, id, true)
}
