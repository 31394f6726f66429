package run

import (
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSignalProxyQueuesThenForwards sends berth itself signals before and
// after Forward: the early ones are delivered in order at Forward, the
// later ones as they come, a second SIGINT included.
func TestSignalProxyQueuesThenForwards(t *testing.T) {
	s := CatchSignals()
	defer s.Stop()
	self := syscall.Getpid()
	syscall.Kill(self, syscall.SIGUSR1)
	waitQueued(t, s, 1)
	syscall.Kill(self, syscall.SIGINT)
	waitQueued(t, s, 2)
	if sig, ok := s.Interrupted(); !ok || sig != syscall.SIGINT {
		t.Fatalf("Interrupted() = %v, %v; want SIGINT", sig, ok)
	}

	var mu sync.Mutex
	var got []syscall.Signal
	s.Forward(func(sig syscall.Signal) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, sig)
		return nil
	})
	syscall.Kill(self, syscall.SIGINT)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	want := []syscall.Signal{syscall.SIGUSR1, syscall.SIGINT, syscall.SIGINT}
	if !slices.Equal(got, want) {
		t.Errorf("forwarded %v, want %v", got, want)
	}
	if _, ok := s.Interrupted(); ok {
		t.Error("Interrupted() still true once the queue was delivered")
	}
}

// waitQueued waits until s has queued n signals.
func waitQueued(t *testing.T, s *SignalProxy, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		l := len(s.queue)
		s.mu.Unlock()
		if l >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d signals queued, want %d", l, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSignalProxyTermWithoutForward: a SIGTERM caught before Forward
// neither kills the process nor is lost.
func TestSignalProxyTermWithoutForward(t *testing.T) {
	s := CatchSignals()
	defer s.Stop()
	if _, ok := s.Interrupted(); ok {
		t.Fatal("Interrupted() before any signal")
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	waitQueued(t, s, 1)
	if sig, ok := s.Interrupted(); !ok || sig != syscall.SIGTERM {
		t.Errorf("Interrupted() = %v, %v; want SIGTERM", sig, ok)
	}
}
