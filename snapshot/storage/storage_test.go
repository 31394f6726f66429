package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/berthproject/berth/snapshot"
)

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestCleanupLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(root, snapshotsDir, "99")
	deadTmp := filepath.Join(root, tmpDir, "new-dead")
	deadTrash := filepath.Join(root, trashDir, "rm-dead")
	heldTmp := filepath.Join(root, tmpDir, "new-held")
	mkdirs(t, filepath.Join(orphan, "fs", "x"), filepath.Join(deadTmp, "fs"), filepath.Join(deadTrash, "d", "fs"), heldTmp)
	held, err := lockDir(heldTmp)
	if err != nil {
		t.Fatal(err)
	}
	defer held.unlock()

	if err := s.Check(ctx); err == nil {
		t.Error("Check found nothing wrong with leftovers present")
	}
	if _, _, err := s.Create(ctx, snapshot.KindActive, "k", "", func(dir string, _ []uint64) error {
		return os.Mkdir(filepath.Join(dir, "fs"), 0o755)
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{orphan, deadTmp, deadTrash} {
		if exists(p) {
			t.Errorf("%s survived the cleanup pass", p)
		}
	}
	if !exists(heldTmp) {
		t.Error("a tmp directory whose owner is alive was removed")
	}
	held.unlock()
	if err := s.Check(ctx); err == nil {
		t.Error("Check missed an unlocked tmp entry")
	}
	if err := s.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check after cleanup: %v", err)
	}
}

func TestIDsNotReused(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(dir string, _ []uint64) error { return nil }
	a, _, err := s.Create(ctx, snapshot.KindActive, "a", "", mk)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	b, _, err := s.Create(ctx, snapshot.KindActive, "a", "", mk)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID == a.ID {
		t.Errorf("id %d handed out twice", a.ID)
	}
	if !exists(s.Dir(b.ID)) || exists(s.Dir(a.ID)) {
		t.Error("directories do not follow the records")
	}
}

func TestPopulateFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	_, _, err = s.Create(ctx, snapshot.KindActive, "a", "", func(string, []uint64) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Create: %v, want boom", err)
	}
	if _, _, err := s.Get(ctx, "a"); !errdefs.IsNotFound(err) {
		t.Errorf("Get after failed Create: %v", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

const envCrash = "BERTH_STORAGE_CRASH_POINT"

// TestCrashPoints kills a child process with SIGKILL at each named point
// of Create and Remove and checks the next Open repairs the root.
func TestCrashPoints(t *testing.T) {
	if point := os.Getenv(envCrash); point != "" {
		crashChild(t, point)
		return
	}
	ctx := context.Background()
	for _, point := range []string{"before-rename", "before-commit", "after-remove-commit", "locked-before-rename", "locked-before-commit"} {
		t.Run(point, func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashPoints$", "-test.count=1")
			cmd.Env = append(os.Environ(), envCrash+"="+point, "BERTH_STORAGE_ROOT="+root)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v\n%s", point, err, out)
			}
			// The crash left something behind…
			raw := &Store{root: root}
			if err := raw.Check(ctx); err == nil {
				t.Errorf("no leftover after a crash at %s", point)
			}
			// …which Open leaves alone (it writes nothing to an existing
			// store) and the next write operation cleans up.
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(ctx); err == nil {
				t.Errorf("Open wrote to an existing store: the leftover of %s is gone", point)
			}
			if _, _, err := s.CreateLocked(ctx, snapshot.KindActive, "next", "", func(string, []uint64) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if err := s.Remove(ctx, "next"); err != nil {
				t.Fatal(err)
			}
			if err := s.Check(ctx); err != nil {
				t.Errorf("after the next write: %v", err)
			}
			if _, _, err := s.Get(ctx, "victim"); !errdefs.IsNotFound(err) {
				t.Errorf("victim after crash at %s: %v, want not found", point, err)
			}
			if _, _, err := s.Get(ctx, "keep"); err != nil {
				t.Errorf("keep after crash: %v", err)
			}
		})
	}
}

func crashChild(t *testing.T, point string) {
	ctx := context.Background()
	s, err := Open(os.Getenv("BERTH_STORAGE_ROOT"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(dir string, _ []uint64) error {
		return os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	}
	if _, _, err := s.Create(ctx, snapshot.KindActive, "keep", "", mk); err != nil {
		t.Fatal(err)
	}
	if point == "after-remove-commit" {
		if _, _, err := s.Create(ctx, snapshot.KindActive, "victim", "", mk); err != nil {
			t.Fatal(err)
		}
	}
	testHook = func(p string) {
		if p == point {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	switch point {
	case "after-remove-commit":
		_ = s.Remove(ctx, "victim")
	case "locked-before-rename", "locked-before-commit":
		testHook = func(p string) {
			if "locked-"+p == point {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		_, _, _ = s.CreateLocked(ctx, snapshot.KindActive, "victim", "", mk)
	default:
		_, _, _ = s.Create(ctx, snapshot.KindActive, "victim", "", mk)
	}
	t.Fatal("crash point not reached")
}

// TestCreateLockedOneTransaction checks that CreateLocked records the
// snapshot with its populated directory in one write transaction (the
// bucket's sequence moves once per snapshot either way; the database's
// transaction id tells the transactions apart), and that Create still
// takes two.
func TestCreateLockedOneTransaction(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	txid := func() int {
		db, closeDB, err := s.openDB(true)
		if err != nil {
			t.Fatal(err)
		}
		defer closeDB()
		tx, err := db.Begin(false)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		return int(tx.ID())
	}
	mk := func(dir string, _ []uint64) error { return os.Mkdir(filepath.Join(dir, "fs"), 0o755) }
	for _, c := range []struct {
		name   string
		create func(context.Context, snapshot.Kind, string, string, Populate) (Record, []uint64, error)
		txns   int
	}{{"CreateLocked", s.CreateLocked, 1}, {"Create", s.Create, 2}} {
		before := txid()
		r, _, err := c.create(ctx, snapshot.KindActive, c.name, "", mk)
		if err != nil {
			t.Fatal(err)
		}
		if got := txid() - before; got != c.txns {
			t.Errorf("%s took %d write transactions, want %d", c.name, got, c.txns)
		}
		if !exists(filepath.Join(s.Dir(r.ID), "fs")) {
			t.Errorf("%s: populated directory not in place", c.name)
		}
	}
	boom := errors.New("boom")
	if _, _, err := s.CreateLocked(ctx, snapshot.KindActive, "bad", "", func(string, []uint64) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("CreateLocked with a failing populate: %v, want boom", err)
	}
	if _, _, err := s.CreateLocked(ctx, snapshot.KindActive, "Create", "", mk); !errdefs.IsAlreadyExists(err) {
		t.Errorf("CreateLocked of a key in use: %v, want AlreadyExists", err)
	}
	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestOpenWritesNothing checks that opening an existing store commits no
// transaction.
func TestOpenWritesNothing(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, dbName))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, dbName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(root, dbName))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(data) {
		t.Errorf("a second Open changed %s (%d bytes)", dbName, fi.Size())
	}
}

// TestMetadataLockWaitsAndTimesOut checks that metadata.lock blocks a second
// exclusive holder until the first lets go (handing it over at once, not
// at a poll interval), lets shared holders in together, and gives up
// with errdefs.ErrUnavailable after the timeout.
func TestMetadataLockWaitsAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), lockName)
	unlock, err := lockMetadata(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockMetadata(path, false, 50*time.Millisecond); !errdefs.IsUnavailable(err) {
		t.Fatalf("shared lock while held exclusively: %v, want Unavailable", err)
	}
	got := make(chan time.Time, 1)
	go func() {
		u, err := lockMetadata(path, true, 5*time.Second)
		if err == nil {
			got <- time.Now()
			u()
		}
		close(got)
	}()
	time.Sleep(100 * time.Millisecond)
	released := time.Now()
	unlock()
	at, ok := <-got
	if !ok {
		t.Fatal("the waiter never got the lock")
	}
	if wait := at.Sub(released); wait > 40*time.Millisecond {
		t.Errorf("the waiter got the lock %v after its release", wait)
	}
	a, err := lockMetadata(path, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lockMetadata(path, false, time.Second)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	a()
	b()
}
