package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestInterrupted maps the signal that cancelled the command to Docker's
// exit status and ignores other cancellations.
func TestInterrupted(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	if Interrupted(ctx) != nil {
		t.Fatal("not cancelled, yet interrupted")
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel")
	}
	var ee ExitError
	if err := Interrupted(ctx); !errors.As(err, &ee) || ee.Code != 130 || ee.Err != nil {
		t.Fatalf("after SIGINT: %#v", err)
	}
	plain, cancel := context.WithCancel(context.Background())
	cancel()
	if Interrupted(plain) != nil {
		t.Fatal("a plain cancel counts as a signal")
	}
}
