package netops

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/containerd/errdefs"
)

// fakeNetworking knows one container, "owner", whose hostname is
// "ownerhost".
func fakeNetworking() *Networking {
	return &Networking{Container: func(_ context.Context, ref string) (record.Container, error) {
		if ref != "owner" {
			return record.Container{}, fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
		}
		c := record.Container{ID: strings.Repeat("a", 64)}
		c.Run.Hostname = "ownerhost"
		return c, nil
	}}
}

func TestHostname(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	nw := fakeNetworking()
	for _, c := range []struct {
		mode, requested, want string
		isErr                 func(error) bool
	}{
		{mode: "bridge", want: "0123456789ab"},
		{mode: "bridge", requested: "picked", want: "picked"},
		{mode: "none", want: "0123456789ab"},
		{mode: "host", want: host},
		{mode: "host", requested: "picked", want: "picked"},
		{mode: "container:owner", want: "ownerhost"},
		{mode: "container:owner", requested: "picked", isErr: errdefs.IsInvalidArgument},
		{mode: "container:nobody", isErr: errdefs.IsNotFound},
	} {
		got, err := nw.Hostname(context.Background(), c.mode, c.requested, "0123456789ab")
		if c.isErr != nil {
			if !c.isErr(err) {
				t.Errorf("%s -h %q: error %v, want another category", c.mode, c.requested, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s -h %q: %q, %v; want %q", c.mode, c.requested, got, err, c.want)
		}
	}
}

func TestResolveContainerModeConflicts(t *testing.T) {
	nw := fakeNetworking()
	req := func(f func(r *record.NetworkRequest)) record.NetworkRequest {
		r := record.NetworkRequest{NetworkSettings: record.NetworkSettings{Mode: "container:owner"}}
		f(&r)
		return r
	}
	for _, c := range []struct {
		req  record.NetworkRequest
		want string
	}{
		{req(func(r *record.NetworkRequest) {}), ""},
		{req(func(r *record.NetworkRequest) { r.Publish = []string{"80"} }), "conflicting options: port publishing and the container type network mode"},
		{req(func(r *record.NetworkRequest) { r.PublishAll = true }), "conflicting options: port publishing and the container type network mode"},
		{req(func(r *record.NetworkRequest) { r.Expose = []string{"80/tcp"} }), "conflicting options: port exposing and the container type network mode"},
		{req(func(r *record.NetworkRequest) { r.DNS = []string{"192.0.2.1"} }), "conflicting options: dns and the network mode"},
		{req(func(r *record.NetworkRequest) { r.DNSSearch = []string{"x"} }), "conflicting options: dns and the network mode"},
		{req(func(r *record.NetworkRequest) { r.DNSOptions = []string{"ndots:1"} }), "conflicting options: dns and the network mode"},
		{req(func(r *record.NetworkRequest) { r.ExtraHosts = []string{"a:192.0.2.1"} }), "conflicting options: custom host-to-IP mapping and the network mode"},
		{req(func(r *record.NetworkRequest) { r.Aliases = []string{"a"} }), "network-scoped alias is supported only for containers in user defined networks"},
		{req(func(r *record.NetworkRequest) { r.IP = "10.0.0.2" }), "user specified IP address is supported on user defined networks only"},
		{req(func(r *record.NetworkRequest) { r.Mode = "container:" }), "Invalid network mode: invalid container format container:<name|id>"},
		// In Docker's order: dns is reported before port publishing.
		{req(func(r *record.NetworkRequest) { r.Publish, r.DNS = []string{"80"}, []string{"192.0.2.1"} }), "conflicting options: dns"},
	} {
		_, err := nw.Resolve(context.Background(), c.req, map[string]struct{}{})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.req, err)
		case c.want != "" && (!errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q (invalid argument)", c.req, err, c.want)
		}
	}
	// host mode keeps -p (discarded) but refuses --ip.
	r := record.NetworkRequest{NetworkSettings: record.NetworkSettings{Mode: "host", IP: "10.0.0.2"}}
	if _, err := nw.Resolve(context.Background(), r, map[string]struct{}{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("host --ip: %v", err)
	}
}
