package network

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParsePortSpecs(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		spec string
		want []PortBinding
	}{
		{"80", []PortBinding{{ContainerPort: 80, Proto: "tcp"}}},
		{"8080:80", []PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}},
		{"127.0.0.1:8080:80/udp", []PortBinding{{HostIP: lo, HostPort: 8080, ContainerPort: 80, Proto: "udp"}}},
		{"127.0.0.1::80", []PortBinding{{HostIP: lo, ContainerPort: 80, Proto: "tcp"}}},
		{"0.0.0.0:81:80", []PortBinding{{HostPort: 81, ContainerPort: 80, Proto: "tcp"}}},
		{"8000-8001:80-81", []PortBinding{{HostPort: 8000, ContainerPort: 80, Proto: "tcp"}, {HostPort: 8001, ContainerPort: 81, Proto: "tcp"}}},
		{"8000-8009:80", []PortBinding{{HostPort: 8000, HostPortEnd: 8009, ContainerPort: 80, Proto: "tcp"}}},
		{"80-81/sctp", []PortBinding{{ContainerPort: 80, Proto: "sctp"}, {ContainerPort: 81, Proto: "sctp"}}},
	} {
		got, err := ParsePortSpecs([]string{tc.spec}, nil, false)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v %v, want %+v", tc.spec, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "70000", "80/icmp", "a:80", "1.2.3.4:5:6:7", "8000-8002:80-81", "90-80", "::1:80:80", "[::1]:80:80", "x:80:80"} {
		if _, err := ParsePortSpecs([]string{bad}, nil, false); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: want invalid argument, got %v", bad, err)
		}
	}
	got, err := ParsePortSpecs([]string{"8080:80"}, map[string]struct{}{"80/tcp": {}, "53/udp": {}, "443": {}}, true)
	want := []PortBinding{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 53, Proto: "udp"}, {ContainerPort: 443, Proto: "tcp"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("publish all: %+v %v", got, err)
	}
}

func TestClashes(t *testing.T) {
	a := PortBinding{HostPort: 80, Proto: "tcp"}
	b := PortBinding{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80, Proto: "tcp"}
	c := PortBinding{HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: 80, Proto: "tcp"}
	u := PortBinding{HostPort: 80, Proto: "udp"}
	if !clashes(a, b) || !clashes(b, b) || clashes(b, c) || clashes(a, u) {
		t.Error("clash rules wrong")
	}
}

func TestHosts(t *testing.T) {
	got, err := Hosts(HostsConfig{Hostname: "web", Domainname: "example.internal", Addresses: []netip.Addr{netip.MustParseAddr("10.77.0.2")},
		ExtraHosts: []string{"db:10.1.2.3", "v6=[fd00::1]"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "10.1.2.3\tdb\n", "fd00::1\tv6\n", "10.77.0.2\tweb.example.internal web\n"} {
		if !strings.Contains(s, line) {
			t.Errorf("missing %q in\n%s", line, s)
		}
	}
	if strings.Index(s, "db") > strings.Index(s, "web") {
		t.Error("--add-host entries must precede the container's own line")
	}
	if _, err := Hosts(HostsConfig{ExtraHosts: []string{"nocolon"}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad add-host: %v", err)
	}
	// Base (host networking) replaces the standard entries; a missing
	// final newline is added before the extra entries.
	got, err = Hosts(HostsConfig{Base: []byte("127.0.0.1 localhost myhost"), ExtraHosts: []string{"db:10.1.2.3"}})
	if err != nil || string(got) != "127.0.0.1 localhost myhost\n10.1.2.3\tdb\n" {
		t.Errorf("hosts from a base: %q, %v", got, err)
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n")
	got, up := ResolvConf(ResolvConfig{Host: host})
	if string(got) != "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n" || len(up) != 1 {
		t.Errorf("from host: %q", got)
	}
	got, _ = ResolvConf(ResolvConfig{Host: []byte("nameserver 127.0.0.53\n")})
	if string(got) != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Errorf("fallback: %q", got)
	}
	got, _ = ResolvConf(ResolvConfig{Host: host, DNS: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, Search: []string{"."}, Options: []string{"ndots:2"}})
	if string(got) != "nameserver 10.0.0.53\noptions ndots:2\n" {
		t.Errorf("overrides: %q", got)
	}
}
