package network

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
)

// HostsConfig is what a container's /etc/hosts is rendered from.
type HostsConfig struct {
	Hostname   string // --hostname (default: the short container ID)
	Domainname string // optional; adds "hostname.domainname" first
	// Addresses are the container's own addresses (one per endpoint);
	// empty for --network none/host.
	Addresses []netip.Addr
	// ExtraHosts are --add-host entries "name:ip" (also "name=ip").
	// The caller replaces the special value "host-gateway" with an address
	// (the gateway of the container's first network) before calling.
	ExtraHosts []string
	// Base, when not nil, replaces the loopback and IPv6 well-known
	// entries: --network host starts from a copy of the host's /etc/hosts,
	// as Docker does.
	Base []byte
}

// Hosts renders /etc/hosts like Docker does: the loopback and IPv6
// well-known entries (or Base), then the --add-host entries in order, then
// one line per container address naming the hostname. Name resolution of
// other containers is not done through this file (it would miss containers
// that join later). errdefs.ErrInvalidArgument for a malformed --add-host.
func Hosts(c HostsConfig) ([]byte, error) {
	var b bytes.Buffer
	if c.Base != nil {
		b.Write(c.Base)
		if len(c.Base) > 0 && c.Base[len(c.Base)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range c.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if i := strings.Index(h, "="); i >= 0 && (!ok || i < len(name)) {
			name, ip, ok = h[:i], h[i+1:], true
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		a, err := netip.ParseAddr(ip)
		if !ok || name == "" || err != nil || strings.ContainsAny(name, " \t\n#") {
			return nil, fmt.Errorf("invalid --add-host %q (want name:ip): %w", h, errdefs.ErrInvalidArgument)
		}
		fmt.Fprintf(&b, "%s\t%s\n", a, name)
	}
	names := c.Hostname
	if c.Domainname != "" && c.Hostname != "" {
		names = c.Hostname + "." + c.Domainname + " " + c.Hostname
	}
	if names != "" {
		for _, a := range c.Addresses {
			fmt.Fprintf(&b, "%s\t%s\n", a, names)
		}
	}
	return b.Bytes(), nil
}

// ResolvConfig is what a container's /etc/resolv.conf is rendered from.
type ResolvConfig struct {
	// Host is the host's resolv.conf content (usually /etc/resolv.conf,
	// or systemd-resolved's upstream file /run/systemd/resolve/resolv.conf).
	Host []byte
	// DNS, Search and Options override the host's nameserver, search and
	// options lines (--dns, --dns-search, --dns-option). Search ["."]
	// means no search line.
	DNS     []netip.Addr
	Search  []string
	Options []string
}

// FallbackDNS is used when the host has only loopback nameservers (which
// are unreachable from a container's namespace) and no --dns was given,
// as Docker does.
var FallbackDNS = []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("8.8.4.4")}

// ResolvConf renders a container's /etc/resolv.conf: the --dns servers, or
// else the host's nameservers without loopback ones (falling back to
// FallbackDNS), the search domains and the options. It also returns the
// upstream servers it chose. IPv6 nameservers of the host are kept.
func ResolvConf(c ResolvConfig) (content []byte, upstream []netip.Addr) {
	var hostNS []netip.Addr
	var search, options []string
	sc := bufio.NewScanner(bytes.NewReader(c.Host))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				hostNS = append(hostNS, a.WithZone(""))
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	upstream = slices.Clone(c.DNS)
	if len(upstream) == 0 {
		upstream = hostNS
	}
	if len(upstream) == 0 {
		upstream = slices.Clone(FallbackDNS)
	}
	if len(c.Search) > 0 {
		search = c.Search
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(c.Options) > 0 {
		options = c.Options
	}
	var b bytes.Buffer
	for _, a := range upstream {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(options, " "))
	}
	return b.Bytes(), upstream
}
