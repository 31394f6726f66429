package flock

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

func TestExclusiveWaitsAndHandsOver(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, err := Acquire(context.Background(), p, true)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock)
	go func() {
		b, err := Acquire(context.Background(), p, true)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	select {
	case <-got:
		t.Fatal("second exclusive lock taken while the first is held")
	case <-time.After(100 * time.Millisecond):
	}
	start := time.Now()
	a.Unlock()
	b := <-got
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("hand-over took %v; a blocking waiter should get it at once", d)
	}
	b.Unlock()
	b.Unlock() // harmless
}

func TestSharedLocksCoexistAndTimeout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "l")
	a, err := Acquire(context.Background(), p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Unlock()
	b, err := Acquire(context.Background(), p, false)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	defer b.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, p, true); !errors.Is(err, errdefs.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exclusive under shared holders: got %v, want unavailable + deadline", err)
	}
}

func TestOpenErrorIsPathError(t *testing.T) {
	_, err := Acquire(context.Background(), filepath.Join(t.TempDir(), "missing", "l"), true)
	if err == nil {
		t.Fatal("lock in a missing directory succeeded")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		t.Fatalf("got %T %v, want a *fs.PathError", err, err)
	}
}
