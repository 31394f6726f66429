package containers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// eachContainerCmd is a verb "NAME CONTAINER [CONTAINER...]" that applies
// op to every argument (cli.EachContainer).
func eachContainerCmd(g *cli.Globals, name, short string, op func(e *engine.Engine, ctx context.Context, ref string) error) *cobra.Command {
	return &cobra.Command{
		Use:   name + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return cli.EachContainer(cmd, args, func(ref string) error { return op(e, ctx, ref) })
		}),
	}
}

// NewPauseCmd is `berth pause`: pause all processes within one or more containers.
func NewPauseCmd(g *cli.Globals) *cobra.Command {
	return eachContainerCmd(g, "pause", "Pause all processes within one or more containers", (*engine.Engine).Pause)
}

// NewUnpauseCmd is `berth unpause`: unpause all processes within one or more containers.
func NewUnpauseCmd(g *cli.Globals) *cobra.Command {
	return eachContainerCmd(g, "unpause", "Unpause all processes within one or more containers", (*engine.Engine).Unpause)
}

// NewRenameCmd is `berth rename`: rename a container.
func NewRenameCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return e.Rename(ctx, args[0], args[1])
		}),
	}
}

// NewTopCmd is `berth top`: display the running processes of a container.
func NewTopCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			res, err := e.Top(ctx, args[0], args[1:])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// NewDiffCmd is `berth diff`: inspect changes to files or directories on a container's filesystem.
func NewDiffCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			changes, err := e.Diff(ctx, args[0])
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintln(cmd.OutOrStdout(), c.Kind, c.Path)
			}
			return nil
		}),
	}
}

// NewCommitCmd is `berth commit`: create a new image from a container's changes.
func NewCommitCmd(g *cli.Globals) *cobra.Command {
	var opts engine.CommitOptions
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.Reference = args[1]
			}
			rec, err := e.Commit(ctx, args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.Config.String())
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&opts.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&opts.Comment, "message", "m", "", "Commit message")
	f.BoolVarP(&opts.Pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

// NewContainerPruneCmd is `berth container prune`: remove all stopped containers.
func NewContainerPruneCmd(g *cli.Globals) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			keep, err := containerPruneFilter(filters)
			if err != nil {
				return err
			}
			if !cli.ConfirmPrune(cmd, force, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			rep, err := e.PruneContainers(ctx, keep)
			out := cmd.OutOrStdout()
			if len(rep.Deleted) > 0 {
				fmt.Fprintln(out, "Deleted Containers:")
				for _, id := range rep.Deleted {
					fmt.Fprintln(out, id)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSize(float64(rep.SpaceReclaimed)))
			return err
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// containerPruneFilter turns prune's until= and label= / label!= filters
// into a keep predicate (true: leave the container).
func containerPruneFilter(filters []string) (func(engine.Container) bool, error) {
	var keeps []func(engine.Container) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %w", errdefs.ErrInvalidArgument)
		}
		switch k {
		case "until":
			t, err := cli.ParseTime(v)
			if err != nil {
				return nil, err
			}
			keeps = append(keeps, func(c engine.Container) bool { return !c.Created.Before(t) })
		case "label", "label!":
			lk, lv, hasValue := strings.Cut(v, "=")
			negate := k == "label!"
			keeps = append(keeps, func(c engine.Container) bool {
				got, ok := c.Labels[lk]
				match := ok && (!hasValue || got == lv)
				return match == negate
			})
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	return func(c engine.Container) bool {
		for _, k := range keeps {
			if k(c) {
				return true
			}
		}
		return false
	}, nil
}

var statsHeaders = map[string]string{
	"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
}

const statsDefaultTable = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// NewStatsCmd is `berth stats`: display a live stream of container(s) resource usage statistics.
func NewStatsCmd(g *cli.Globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			refs := args
			if len(refs) == 0 {
				cs, err := e.Containers(ctx, all)
				if err != nil {
					return err
				}
				for _, c := range cs {
					refs = append(refs, c.ID)
				}
			}
			out := cmd.OutOrStdout()
			for {
				stats, err := e.Stats(ctx, refs, time.Second)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if !noStream {
					fmt.Fprint(out, "\033[2J\033[H")
				}
				rf, err := output.NewRows(out, format, statsDefaultTable, statsHeaders)
				if err != nil {
					return err
				}
				for i, s := range stats {
					if err := rf.Row(statsRow(refs[i], s, noTrunc)); err != nil {
						return err
					}
				}
				if err := rf.Flush(); err != nil || noStream {
					return err
				}
			}
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	f.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return cmd
}

// statsRow renders one reading as Docker's stats fields: memory in
// binary units, I/O in decimal units.
func statsRow(ref string, s engine.Stats, noTrunc bool) map[string]string {
	id := s.ID
	if !noTrunc {
		id = id[:12]
	}
	pair := func(a, b uint64) string {
		return units.HumanSizeWithPrecision(float64(a), 3) + " / " + units.HumanSizeWithPrecision(float64(b), 3)
	}
	return map[string]string{
		"ID": id, "Container": ref, "Name": s.Name,
		"CPUPerc":  fmt.Sprintf("%.2f%%", s.CPUPercent),
		"MemUsage": units.BytesSize(float64(s.MemUsage)) + " / " + units.BytesSize(float64(s.MemLimit)),
		"MemPerc":  fmt.Sprintf("%.2f%%", s.MemPercent),
		"NetIO":    pair(s.NetRx, s.NetTx), "BlockIO": pair(s.BlockRead, s.BlockWrite),
		"PIDs": strconv.FormatUint(s.Pids, 10),
	}
}
