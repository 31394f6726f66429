package containers

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// NewPortCmd is `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the
// container's published ports, one "80/tcp -> 0.0.0.0:8080" line each, or
// only the host addresses of one private port, as Docker prints them.
func NewPortCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var port uint16
			proto := "tcp"
			if len(args) == 2 {
				p, pr, hasProto := strings.Cut(args[1], "/")
				n, err := strconv.ParseUint(p, 10, 16)
				if err != nil || n == 0 || (hasProto && pr != "tcp" && pr != "udp" && pr != "sctp") {
					return fmt.Errorf("invalid port: %s: %w", args[1], errdefs.ErrInvalidArgument)
				}
				port = uint16(n)
				if hasProto {
					proto = pr
				}
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			_, ports, err := e.PublishedPorts(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			found := false
			for _, p := range ports {
				if port == 0 {
					fmt.Fprintf(out, "%d/%s -> %s\n", p.ContainerPort, p.Proto, hostAddr(p))
					continue
				}
				if p.ContainerPort == port && p.Proto == proto {
					fmt.Fprintln(out, hostAddr(p))
					found = true
				}
			}
			if port != 0 && !found {
				// The port as given ("80", not "80/tcp"), as Docker's CLI.
				return fmt.Errorf("No public port '%s' published for %s: %w", args[1], args[0], errdefs.ErrNotFound)
			}
			return nil
		},
	}
}

// hostAddr is the host side of a binding: "0.0.0.0:8080" for all
// addresses.
func hostAddr(p engine.PortBinding) string {
	ip := p.HostIP
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(ip, p.HostPort).String()
}

// FormatPorts renders a container's published ports as Docker's PORTS
// column of `ps`: "0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp", sorted
// by container port; consecutive ports published to consecutive host
// ports on one address are merged into ranges ("0.0.0.0:8000-8001->80-81/tcp").
// Only a running container publishes anything; the host ports are those
// its last start resolved.
func FormatPorts(c engine.Container) string {
	if c.State.Status != engine.StatusRunning || c.Net.PrimaryDetached {
		return ""
	}
	ports := c.Net.Published
	if len(ports) == 0 {
		ports = c.Net.Ports
	}
	ports = slices.Clone(ports)
	slices.SortStableFunc(ports, func(a, b engine.PortBinding) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		if c := a.HostIP.Compare(b.HostIP); c != 0 {
			return c
		}
		return int(a.ContainerPort) - int(b.ContainerPort)
	})
	var parts []string
	for i := 0; i < len(ports); {
		p, j := ports[i], i+1
		for j < len(ports) && p.HostPort != 0 && ports[j].Proto == p.Proto && ports[j].HostIP == p.HostIP &&
			int(ports[j].ContainerPort) == int(p.ContainerPort)+(j-i) && int(ports[j].HostPort) == int(p.HostPort)+(j-i) {
			j++
		}
		last := ports[j-1]
		host, ctr := strconv.Itoa(int(p.HostPort)), strconv.Itoa(int(p.ContainerPort))
		if j-i > 1 {
			host += "-" + strconv.Itoa(int(last.HostPort))
			ctr += "-" + strconv.Itoa(int(last.ContainerPort))
		}
		ip := p.HostIP
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		parts = append(parts, fmt.Sprintf("%s:%s->%s/%s", ip, host, ctr, p.Proto))
		i = j
	}
	return strings.Join(parts, ", ")
}
