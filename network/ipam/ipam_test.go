package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
)

const childEnv = "BERTH_IPAM_TEST_CHILD"

// TestMain lets the test binary act as a separate allocating process.
func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		// v = dir|pool|subnet|owner
		f := strings.Split(v, "|")
		s, err := Open(f[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		a, err := s.Allocate(context.Background(), f[1], Range{Subnet: netip.MustParsePrefix(f[2]), Gateway: netip.MustParsePrefix(f[2]).Addr().Next()}, f[3], netip.Addr{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			if errdefs.IsUnavailable(err) {
				os.Exit(3)
			}
			os.Exit(2)
		}
		fmt.Println(a)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChildren(t *testing.T, dir, pool, subnet string, n int) (addrs []string, exhausted int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|owner-%d", childEnv, dir, pool, subnet, i))
			out, err := cmd.Output()
			mu.Lock()
			defer mu.Unlock()
			var ee *exec.ExitError
			switch {
			case err == nil:
				addrs = append(addrs, strings.TrimSpace(string(out)))
			case errors.As(err, &ee) && ee.ExitCode() == 3:
				exhausted++
			default:
				t.Errorf("child %d: %v: %s", i, err, ee.Stderr)
			}
		}()
	}
	wg.Wait()
	return addrs, exhausted
}

func TestConcurrentProcessesGetDistinctAddresses(t *testing.T) {
	dir := t.TempDir()
	addrs, exhausted := runChildren(t, dir, "net1", "10.213.7.0/24", 200)
	if exhausted != 0 || len(addrs) != 200 {
		t.Fatalf("got %d addresses, %d exhausted; want 200, 0", len(addrs), exhausted)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("address %s handed out twice", a)
		}
		seen[a] = true
		if a == "10.213.7.1" || a == "10.213.7.0" || a == "10.213.7.255" {
			t.Fatalf("reserved address %s handed out", a)
		}
	}
	s, _ := Open(dir)
	all, err := s.Allocations(context.Background(), "net1")
	if err != nil || len(all) != 200 {
		t.Fatalf("store has %d allocations (%v), want 200", len(all), err)
	}
}

func TestExhaustionSlash28(t *testing.T) {
	dir := t.TempDir()
	// A /28 has 16 addresses: minus network, broadcast and gateway, 13 usable.
	addrs, exhausted := runChildren(t, dir, "small", "10.213.8.0/28", 15)
	if len(addrs) != 13 || exhausted != 2 {
		t.Fatalf("got %d addresses and %d exhausted, want 13 and 2", len(addrs), exhausted)
	}
	s, _ := Open(dir)
	ctx := context.Background()
	r := Range{Subnet: netip.MustParsePrefix("10.213.8.0/28"), Gateway: netip.MustParseAddr("10.213.8.1")}
	_, err := s.Allocate(ctx, "small", r, "late", netip.Addr{})
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "no available IPv4 addresses") {
		t.Fatalf("want ErrUnavailable 'no available IPv4 addresses', got %v", err)
	}
	all, _ := s.Allocations(ctx, "small")
	if len(all) != 13 {
		t.Fatalf("failed allocation leaked: %d allocations", len(all))
	}
	// Releasing one frees exactly one slot.
	var someOwner string
	for _, o := range all {
		someOwner = o
	}
	if err := s.Release(ctx, "small", someOwner); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "small", someOwner); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, err := s.Allocate(ctx, "small", r, "late", netip.Addr{}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestAllocateRequestedAndIdempotent(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := Range{Subnet: netip.MustParsePrefix("10.213.9.0/24"), IPRange: netip.MustParsePrefix("10.213.9.128/25"), Gateway: netip.MustParseAddr("10.213.9.1")}
	a, err := s.Allocate(ctx, "p", r, "c1", netip.Addr{})
	if err != nil || a != netip.MustParseAddr("10.213.9.128") {
		t.Fatalf("first from ip-range: %v %v", a, err)
	}
	again, err := s.Allocate(ctx, "p", r, "c1", netip.Addr{})
	if err != nil || again != a {
		t.Fatalf("idempotent allocate: %v %v", again, err)
	}
	b, err := s.Allocate(ctx, "p", r, "c2", netip.MustParseAddr("10.213.9.5"))
	if err != nil || b != netip.MustParseAddr("10.213.9.5") {
		t.Fatalf("requested: %v %v", b, err)
	}
	for _, tc := range []struct {
		want  string
		check func(error) bool
	}{
		{"10.213.9.5", errdefs.IsConflict},
		{"10.213.10.5", errdefs.IsInvalidArgument},
		{"10.213.9.1", errdefs.IsInvalidArgument},
		{"10.213.9.255", errdefs.IsInvalidArgument},
	} {
		if _, err := s.Allocate(ctx, "p", r, "c3", netip.MustParseAddr(tc.want)); !tc.check(err) {
			t.Errorf("allocate %s: wrong error %v", tc.want, err)
		}
	}
	all, _ := s.Allocations(ctx, "p")
	if len(all) != 2 {
		t.Fatalf("failed requests leaked: %v", all)
	}
}

func TestRangeValidate(t *testing.T) {
	for _, tc := range []struct {
		r  Range
		ok bool
	}{
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/24")}, true},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.1/24")}, false},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/31")}, false},
		{Range{Subnet: netip.MustParsePrefix("fd00::/64")}, false},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.1.1")}, false},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.0")}, false},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.0.0/16")}, false},
		{Range{Subnet: netip.MustParsePrefix("10.0.0.0/24"), IPRange: netip.MustParsePrefix("10.0.0.64/26")}, true},
	} {
		err := tc.r.Validate()
		if (err == nil) != tc.ok || (err != nil && !errdefs.IsInvalidArgument(err)) {
			t.Errorf("%+v: got %v", tc.r, err)
		}
	}
	if b := Broadcast(netip.MustParsePrefix("10.1.0.0/20")); b != netip.MustParseAddr("10.1.15.255") {
		t.Errorf("broadcast %v", b)
	}
}

// TestUnreadablePoolIsEmpty checks that a pool file left empty or torn
// (what a power loss can do to a file written without fsync) counts as a
// pool with no allocations, while one that cannot be read for another
// reason is still an error.
func TestUnreadablePoolIsEmpty(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := Range{Subnet: netip.MustParsePrefix("10.213.7.0/29")}
	if _, err := s.Allocate(ctx, "p", r, "c1", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"", `{"allocations": {"10.213.7.1": "c`} {
		if err := os.WriteFile(dir+"/p.json", []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		all, err := s.Allocations(ctx, "p")
		if err != nil || len(all) != 0 {
			t.Fatalf("pool file %q: allocations %v, %v; want none", content, all, err)
		}
		a, err := s.Allocate(ctx, "p", r, "c2", netip.Addr{})
		if err != nil || !r.Subnet.Contains(a) {
			t.Fatalf("allocate from pool file %q: %v %v", content, a, err)
		}
		if all, _ := s.Allocations(ctx, "p"); len(all) != 1 || all[a] != "c2" {
			t.Fatalf("after allocate: %v", all)
		}
		if err := s.Release(ctx, "p", "c2"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir+"/p.json", []byte(`{"allocations": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Allocations(ctx, "p"); err == nil {
		t.Fatal("a pool file of the wrong shape was taken as empty")
	}
}
