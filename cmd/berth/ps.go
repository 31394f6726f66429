package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berthproject/berth/engine"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc, latest bool
	var last int
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			if latest {
				last = 1
			}
			cs, err := e.Containers(cmd.Context(), all || last > 0)
			if err != nil {
				return err
			}
			if last > 0 && len(cs) > last {
				cs = cs[:last]
			}
			return printContainers(cmd.OutOrStdout(), cs, quiet, noTrunc)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	return cmd
}

func printContainers(out io.Writer, cs []engine.Container, quiet, noTrunc bool) error {
	if quiet {
		for _, c := range cs {
			id := c.ShortID()
			if noTrunc {
				id = c.ID
			}
			fmt.Fprintln(out, id)
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, c := range cs {
		id, command := c.ShortID(), strings.Join(append([]string{c.Path}, c.Args...), " ")
		if noTrunc {
			id = c.ID
		} else if len([]rune(command)) > 20 {
			command = string([]rune(command)[:19]) + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t\t%s\n", id, c.Image, command, ago(c.Created), status(c.State), c.Name)
	}
	return tw.Flush()
}

// status renders a State as Docker's STATUS column.
func status(s engine.State) string {
	switch s.Status {
	case engine.StatusRunning:
		return "Up " + units.HumanDuration(time.Since(s.StartedAt))
	case engine.StatusExited:
		return fmt.Sprintf("Exited (%d) %s", s.ExitCode, ago(s.FinishedAt))
	case engine.StatusRemoving:
		return "Removal In Progress"
	}
	return "Created"
}
