package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// fakeDriver records the endpoints it holds, as a plugin's state would.
type fakeDriver struct {
	held      map[string]bool // containerID/ifName
	failAdd   error
	validated []byte
	detaches  int
}

func (d *fakeDriver) Validate(ctx context.Context, o CreateOptions) ([]byte, error) {
	if o.Options["fake.bad"] != "" {
		return nil, errdefs.ErrInvalidArgument
	}
	return d.validated, nil
}

func (d *fakeDriver) Attach(ctx context.Context, r DriverRequest) (DriverResult, error) {
	if string(r.Config) != string(d.validated) {
		return DriverResult{}, errors.New("config not handed back")
	}
	d.held[r.ContainerID+"/"+r.IfName] = true // made part-way before failing
	if d.failAdd != nil {
		return DriverResult{}, d.failAdd
	}
	return DriverResult{Address: netip.MustParsePrefix("10.99.0.5/24"), Gateway: netip.MustParseAddr("10.99.0.1"), MAC: "02:00:00:00:00:05"}, nil
}

func (d *fakeDriver) Detach(ctx context.Context, r DriverRequest) error {
	d.detaches++
	delete(d.held, r.ContainerID+"/"+r.IfName)
	return nil
}

func newDriverManager(t *testing.T) (*Manager, *fakeDriver, string) {
	t.Helper()
	d := &fakeDriver{held: map[string]bool{}, validated: []byte(`{"x":1}`)}
	m, err := Open(t.TempDir(), Options{Drivers: map[string]Driver{"fake": d}})
	if err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(ns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return m, d, ns
}

func TestDriverNetworkLifecycle(t *testing.T) {
	ctx := context.Background()
	m, d, ns := newDriverManager(t)
	if _, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "nosuch"}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "bridge, fake") {
		t.Fatalf("unknown driver: %v", err)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "fake", Subnet: netip.MustParsePrefix("10.99.0.0/24")}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("driver network with --subnet: %v", err)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "fake", Options: map[string]string{"fake.bad": "1"}}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("refused by Validate: %v", err)
	}
	n, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "fake", Options: map[string]string{"k": "v"}})
	if err != nil || n.Driver != "fake" || n.Options["k"] != "v" {
		t.Fatalf("create: %+v %v", n, err)
	}
	if _, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "fake"}); !errdefs.IsConflict(err) {
		t.Fatalf("second create: %v", err)
	}

	ep, err := m.Attach(ctx, "n", "c1", ns, AttachOptions{ContainerName: "one", Aliases: []string{"a"}})
	if err != nil || ep.Address.String() != "10.99.0.5/24" || ep.IfName != "eth0" || !ep.Ready || ep.MAC == "" {
		t.Fatalf("attach: %+v %v", ep, err)
	}
	if _, err := m.Attach(ctx, "n", "c2", ns, AttachOptions{IP: netip.MustParseAddr("10.99.0.9")}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("--ip on a driver network: %v", err)
	}
	if err := m.Remove(ctx, "n"); !errdefs.IsPermissionDenied(err) {
		t.Fatalf("remove with an endpoint: %v", err)
	}
	if err := m.ReleaseAll(ctx, "c1"); err != nil || len(d.held) != 0 {
		t.Fatalf("release: %v, driver holds %v", err, d.held)
	}

	// A failed Attach is undone and leaves no endpoint.
	d.failAdd = errors.New("plugin failed")
	if _, err := m.Attach(ctx, "n", "c3", ns, AttachOptions{}); err == nil {
		t.Fatal("attach did not fail")
	}
	if eps, _ := m.Endpoints(ctx, "c3"); len(eps) != 0 || len(d.held) != 0 {
		t.Fatalf("after a failed attach: endpoints %v, driver holds %v", eps, d.held)
	}
	d.failAdd = nil

	// An endpoint of a container that is not live is reclaimed.
	if _, err := m.Attach(ctx, "n", "c4", ns, AttachOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Reclaim(ctx, nil); err != nil || len(d.held) != 0 {
		t.Fatalf("reclaim: %v, driver holds %v", err, d.held)
	}
	if err := m.Remove(ctx, "n"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(m.dir, "ipam", "*")); len(left) != 0 {
		t.Errorf("ipam files left: %v", left)
	}
}

// A record left by an Attach that was killed after it recorded the
// endpoint is torn down by Reclaim even for a live container, and by
// the next Attach of the same container.
func TestDriverCrashedAttach(t *testing.T) {
	ctx := context.Background()
	m, d, ns := newDriverManager(t)
	n, err := m.Create(ctx, CreateOptions{Name: "n", Driver: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	crashed := func() {
		err := m.txn(ctx, func(st *state, save func() error) error {
			st.Endpoints[epKey("c1", n.ID)] = &epRecord{Endpoint: Endpoint{NetworkID: n.ID, NetworkName: "n", ContainerID: "c1", NetnsPath: ns, IfName: "eth0"}}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		d.held["c1/eth0"] = true
	}
	crashed()
	if err := m.Reclaim(ctx, []string{"c1"}); err != nil || len(d.held) != 0 {
		t.Fatalf("reclaim: %v, driver holds %v", err, d.held)
	}
	crashed()
	if _, err := m.Attach(ctx, "n", "c1", ns, AttachOptions{}); err != nil || d.detaches != 2 {
		t.Fatalf("attach over a crashed one: %v, %d detaches", err, d.detaches)
	}
	// Without the driver, the network's endpoints cannot be made or
	// undone, but the network is still listed.
	m2, err := Open(m.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ReleaseAll(ctx, "c1"); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("release without the driver: %v", err)
	}
	if nets, err := m2.List(ctx); err != nil || len(nets) != 1 {
		t.Fatalf("list without the driver: %v %v", nets, err)
	}
}
