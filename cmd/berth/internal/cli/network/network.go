// Package network holds `berth network` and its verbs: create, ls,
// inspect, rm, prune, connect and disconnect.
package network

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// NewNetworkCmd is `berth network`: Docker's network verbs over the
// engine's bridge networks. Errors exit 1, as Docker's CLI does.
func NewNetworkCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network COMMAND",
		Short: "Manage networks",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newNetworkCreateCmd(g), newNetworkLsCmd(g), newNetworkInspectCmd(g), newNetworkRmCmd(g),
		newNetworkPruneCmd(g), newNetworkConnectCmd(g), newNetworkDisconnectCmd(g))
	return cmd
}

func newNetworkCreateCmd(g *cli.Globals) *cobra.Command {
	var subnet, gateway, ipRange, driver string
	var labels, opts []string
	var internal, ipv6, attachable bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := engine.NetworkCreateOptions{Name: args[0], Driver: driver, Internal: internal}
			if ipv6 {
				return fmt.Errorf("IPv6 networks are not supported yet: %w", errdefs.ErrNotImplemented)
			}
			var err error
			if subnet != "" {
				if o.Subnet, err = netip.ParsePrefix(subnet); err != nil {
					return fmt.Errorf("invalid CIDR address: %s: %w", subnet, errdefs.ErrInvalidArgument)
				}
			}
			if gateway != "" {
				if o.Gateway, err = netip.ParseAddr(gateway); err != nil {
					return fmt.Errorf("invalid gateway address: %s: %w", gateway, errdefs.ErrInvalidArgument)
				}
			}
			if ipRange != "" {
				if o.IPRange, err = netip.ParsePrefix(ipRange); err != nil {
					return fmt.Errorf("invalid CIDR address: %s: %w", ipRange, errdefs.ErrInvalidArgument)
				}
			}
			if o.Labels, err = cli.KeyValues(labels, "label"); err != nil {
				return err
			}
			if o.Options, err = cli.KeyValues(opts, "opt"); err != nil {
				return err
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			n, err := e.CreateNetwork(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network (bridge or cni)")
	f.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	f.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	f.StringVar(&ipRange, "ip-range", "", "Allocate container ip from a sub-range")
	f.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	f.StringArrayVar(&labels, "label", nil, "Set metadata on a network")
	f.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	f.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 networking (not supported)")
	f.BoolVar(&attachable, "attachable", false, "Enable manual container attachment (always on)")
	return cmd
}

// networkRow is what `network ls --format` templates see, with Docker's
// field names.
type networkRow struct {
	ID, Name, Driver, Scope string
	IPv4, IPv6, Internal    bool
	CreatedAt, Labels       string
	n                       engine.Network
}

// Label returns the value of one label (Docker's {{.Label "k"}}).
func (r networkRow) Label(k string) string { return r.n.Labels[k] }

func rowOf(n engine.Network, noTrunc bool) networkRow {
	id := n.ID
	if !noTrunc && len(id) > 12 {
		id = id[:12]
	}
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		labels = append(labels, k+"="+n.Labels[k])
	}
	created := ""
	if !n.Created.IsZero() {
		created = n.Created.Local().Format("2006-01-02 15:04:05.999999999 -0700 MST")
	}
	return networkRow{ID: id, Name: n.Name, Driver: n.Driver, Scope: "local", IPv4: !isPredefined(n),
		Internal: n.Internal, CreatedAt: created, Labels: strings.Join(labels, ","), n: n}
}

// isPredefined reports whether n is the predefined "host" or "none"
// network (drivers "host" and "null"), which no container attaches to.
func isPredefined(n engine.Network) bool { return n.Driver == "host" || n.Driver == "null" }

// networkFilter is Docker's --filter for networks: values of one key are
// OR-ed, keys are AND-ed.
type networkFilter map[string][]string

func parseNetworkFilters(args []string) (networkFilter, error) {
	f := networkFilter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s: %w", a, errdefs.ErrInvalidArgument)
		}
		switch k {
		case "name", "id", "driver", "label", "type", "scope", "dangling":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
		if k == "type" && v != "custom" && v != "builtin" {
			return nil, fmt.Errorf("invalid filter: 'type'='%s': %w", v, errdefs.ErrInvalidArgument)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func (f networkFilter) match(n engine.Network) bool {
	builtin := n.Default || isPredefined(n)
	test := func(key string, one func(v string) bool) bool {
		vs, ok := f[key]
		return !ok || slices.ContainsFunc(vs, one)
	}
	return test("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
		test("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		test("driver", func(v string) bool { return n.Driver == v }) &&
		test("scope", func(v string) bool { return v == "local" }) &&
		test("type", func(v string) bool { return (v == "builtin") == builtin }) &&
		test("dangling", func(v string) bool { return (v == "true" || v == "1") == (!builtin && len(n.Endpoints) == 0) }) &&
		test("label", func(v string) bool {
			k, val, hasVal := strings.Cut(v, "=")
			got, ok := n.Labels[k]
			return ok && (!hasVal || got == val)
		})
}

func newNetworkLsCmd(g *cli.Globals) *cobra.Command {
	var quiet, noTrunc bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flt, err := parseNetworkFilters(filters)
			if err != nil {
				return err
			}
			var tmpl *template.Template
			if format != "" && format != "table" && format != "json" {
				text := strings.TrimPrefix(format, "table ")
				if tmpl, err = template.New("format").Parse(text); err != nil {
					return fmt.Errorf("template parsing error: %v: %w", err, errdefs.ErrInvalidArgument)
				}
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			nets, err := e.ListNetworks(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
			if !quiet && format == "" || format == "table" {
				fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
			}
			for _, n := range nets {
				if !flt.match(n) {
					continue
				}
				r := rowOf(n, noTrunc)
				switch {
				case quiet:
					fmt.Fprintln(out, r.ID)
				case format == "json":
					b, _ := json.Marshal(r)
					fmt.Fprintln(out, string(b))
				case tmpl != nil:
					if err := tmpl.Execute(out, r); err != nil {
						return fmt.Errorf("template: %v: %w", err, errdefs.ErrInvalidArgument)
					}
					fmt.Fprintln(out)
				default:
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Driver, r.Scope)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. 'driver=bridge')")
	f.StringVar(&format, "format", "", "Format output using a Go template, 'table' or 'json'")
	return cmd
}

// inspectJSON renders n in the shape of Docker's NetworkInspect.
func inspectJSON(n engine.Network) mobynet.Inspect {
	out := mobynet.Inspect{
		Network: mobynet.Network{
			Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
			EnableIPv4: !isPredefined(n), Internal: n.Internal, Attachable: !isPredefined(n),
			IPAM:    mobynet.IPAM{Driver: "default", Options: nil, Config: []mobynet.IPAMConfig{}},
			Options: map[string]string{}, Labels: map[string]string{},
		},
		Containers: map[string]mobynet.EndpointResource{},
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, mobynet.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange})
	}
	maps.Copy(out.Options, n.Options)
	maps.Copy(out.Labels, n.Labels)
	for _, ep := range n.Endpoints {
		r := mobynet.EndpointResource{Name: ep.ContainerName, EndpointID: ep.EndpointID(), IPv4Address: ep.Address}
		if mac, err := parseMAC(ep.MAC); err == nil {
			r.MacAddress = mac
		}
		out.Containers[ep.ContainerID] = r
	}
	return out
}

func parseMAC(s string) (mobynet.HardwareAddr, error) {
	var m mobynet.HardwareAddr
	err := m.UnmarshalText([]byte(s))
	return m, err
}

func newNetworkInspectCmd(g *cli.Globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tmpl *template.Template
			if format != "" {
				var err error
				if tmpl, err = template.New("format").Funcs(template.FuncMap{"json": func(v any) (string, error) {
					b, err := json.Marshal(v)
					return string(b), err
				}}).Parse(format); err != nil {
					return fmt.Errorf("template parsing error: %v: %w", err, errdefs.ErrInvalidArgument)
				}
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			out := cmd.OutOrStdout()
			docs := []mobynet.Inspect{}
			failed := cli.EachArg(args, func(ref string) error {
				n, err := e.InspectNetwork(cmd.Context(), ref)
				if err == nil {
					docs = append(docs, inspectJSON(n))
				}
				return err
			})
			if tmpl != nil {
				for _, d := range docs {
					if err := tmpl.Execute(out, d); err != nil {
						return fmt.Errorf("template: %v: %w", err, errdefs.ErrInvalidArgument)
					}
					fmt.Fprintln(out)
				}
				return failed
			}
			b, err := json.MarshalIndent(docs, "", "    ")
			if err != nil {
				return err
			}
			fmt.Fprintln(out, string(b))
			return failed
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func newNetworkRmCmd(g *cli.Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return cli.EachArg(args, func(ref string) error {
				err := e.RemoveNetwork(ctx, ref)
				if force && errdefs.IsNotFound(err) {
					return nil
				}
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), ref)
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func newNetworkPruneCmd(g *cli.Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cli.ConfirmPrune(cmd, force, "WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			names, err := e.PruneNetworks(cmd.Context())
			if len(names) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range names {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCmd(g *cli.Globals) *cobra.Command {
	var o engine.ConnectOptions
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return e.ConnectNetwork(cmd.Context(), args[0], args[1], o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.IP, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringArrayVar(&o.Aliases, "alias", nil, "Add network-scoped alias for the container")
	return cmd
}

func newNetworkDisconnectCmd(g *cli.Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return e.DisconnectNetwork(cmd.Context(), args[0], args[1], force)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
