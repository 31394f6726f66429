// Package volume holds `berth volume` and its verbs: create, ls, inspect,
// rm and prune, Docker's flags, output and exit codes (1 when a request
// fails) over the engine's volume store.
package volume

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// NewVolumeCmd is `berth volume`.
func NewVolumeCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "volume COMMAND",
		Short: "Manage volumes",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCreateCmd(g), newLsCmd(g), newInspectCmd(g), newRmCmd(g), newPruneCmd(g))
	return cmd
}

func newCreateCmd(g *cli.Globals) *cobra.Command {
	var name, driver string
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg: %w", errdefs.ErrInvalidArgument)
				}
				name = args[0]
			}
			l, err := cli.KeyValues(labels, "label")
			if err != nil {
				return err
			}
			o, err := cli.KeyValues(opts, "opt")
			if err != nil {
				return err
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			v, err := e.CreateVolume(cmd.Context(), name, driver, l, o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "Specify volume name")
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	f.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

// filter is Docker's --filter for volumes: values of one key are OR-ed,
// keys are AND-ed.
type filter map[string][]string

func parseFilters(args []string, allowed ...string) (filter, error) {
	f := filter{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %w", errdefs.ErrInvalidArgument)
		}
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
		if k == "dangling" && !slices.Contains([]string{"true", "false", "1", "0"}, strings.ToLower(v)) {
			return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

func (f filter) match(v engine.Volume, inUse bool) bool {
	test := func(key string, one func(val string) bool) bool {
		vs, ok := f[key]
		return !ok || slices.ContainsFunc(vs, one)
	}
	return test("name", func(s string) bool { return strings.Contains(v.Name, s) }) &&
		test("driver", func(s string) bool { return s == "local" }) &&
		test("dangling", func(s string) bool { d := s == "true" || s == "1"; return d == !inUse }) &&
		f.labels(v.Labels)
}

// labels matches every label=KEY[=VALUE] filter (AND, as Docker's).
func (f filter) labels(have map[string]string) bool {
	for _, l := range f["label"] {
		k, val, hasVal := strings.Cut(l, "=")
		got, ok := have[k]
		if !ok || hasVal && got != val {
			return false
		}
	}
	return true
}

func newLsCmd(g *cli.Globals) *cobra.Command {
	var quiet bool
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flt, err := parseFilters(filters, "name", "driver", "label", "dangling")
			if err != nil {
				return err
			}
			def := "{{.Driver}}\t{{.Name}}"
			if quiet && (format == "" || format == "table") {
				format = "{{.Name}}"
			}
			rows, err := output.NewRows(cmd.OutOrStdout(), format, def, map[string]string{
				"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
				"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED", "Availability": "AVAILABILITY",
				"Group": "GROUP", "Status": "STATUS",
			})
			if err != nil {
				return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			vols, use, err := e.ListVolumes(cmd.Context())
			if err != nil {
				return err
			}
			for _, v := range vols {
				if !flt.match(v, len(use[v.Name]) > 0) {
					continue
				}
				if err := rows.Row(row(v)); err != nil {
					return err
				}
			}
			return rows.Flush()
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	f.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

// row is a volume's fields for `volume ls --format`, Docker's names.
func row(v engine.Volume) map[string]string {
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(v.Labels)) {
		labels = append(labels, k+"="+v.Labels[k])
	}
	view := engine.VolumeView(v)
	return map[string]string{
		"Name": v.Name, "Driver": "local", "Scope": "local", "Mountpoint": v.Mountpoint,
		"Labels": strings.Join(labels, ","), "Links": "N/A", "Size": "N/A", "CreatedAt": view.CreatedAt,
		"Availability": "N/A", "Group": "N/A", "Status": "N/A",
	}
}

func newInspectCmd(g *cli.Globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" {
				if _, err := output.Parse(format); err != nil {
					return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
				}
			}
			var objs []any
			var failed []error
			for _, name := range args {
				v, err := e.InspectVolume(ctx, name)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				objs = append(objs, engine.VolumeView(v))
			}
			if err := output.PrintInspect(cmd.OutOrStdout(), format, objs); err != nil {
				return err
			}
			for _, err := range failed {
				cli.PrintError(err)
			}
			if len(failed) > 0 {
				return cli.ExitError{Code: 1}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

func newRmCmd(g *cli.Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return cli.EachContainer(cmd, args, func(name string) error { return e.RemoveVolume(ctx, name, force) })
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newPruneCmd(g *cli.Globals) *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flt, err := parseFilters(filters, "label", "label!", "all")
			if err != nil {
				return err
			}
			for _, v := range flt["all"] {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("invalid filter 'all=%s': %w", v, errdefs.ErrInvalidArgument)
				}
				all = all || b
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !cli.ConfirmPrune(cmd, force, warning) {
				return nil
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			names, space, err := e.PruneVolumes(cmd.Context(), all, func(v engine.Volume) bool {
				if !flt.labels(v.Labels) {
					return true
				}
				for _, l := range flt["label!"] {
					if filter(map[string][]string{"label": {l}}).labels(v.Labels) {
						return true
					}
				}
				return false
			})
			out := cmd.OutOrStdout()
			if len(names) > 0 {
				fmt.Fprintln(out, "Deleted Volumes:")
				for _, n := range names {
					fmt.Fprintln(out, n)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSize(float64(space)))
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	f.StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}
