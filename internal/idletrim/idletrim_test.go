package idletrim

import (
	"testing"
	"time"
)

// TestTrimOncePerQuietPeriod: touches closer together than Quiet trim
// once, after the last of them; a later touch trims again.
func TestTrimOncePerQuietPeriod(t *testing.T) {
	var tr Trimmer
	for range 5 {
		tr.Touch()
		time.Sleep(Quiet / 5)
	}
	if n := tr.Trims(); n != 0 {
		t.Fatalf("%d trims during activity", n)
	}
	waitTrims(t, &tr, 1)
	tr.Touch()
	waitTrims(t, &tr, 2)
}

func waitTrims(t *testing.T, tr *Trimmer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * Quiet)
	for tr.Trims() < want && time.Now().Before(deadline) {
		time.Sleep(Quiet / 10)
	}
	if n := tr.Trims(); n != want {
		t.Fatalf("%d trims, want %d", n, want)
	}
}
