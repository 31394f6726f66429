package main

import (
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/containers"
	"github.com/berthproject/berth/cmd/berth/internal/cli/run"
	"github.com/spf13/cobra"
)

// newContainerCmd is `berth container`: the container verbs under one
// group, as `docker container` (ls/ps/list, run, create, start, stop,
// restart, kill, wait, logs, rm, inspect, exec, top, stats, pause,
// unpause, rename, cp, diff, commit, prune, port, export). Each
// subcommand is a fresh instance of the top-level verb.
func newContainerCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: cobra.NoArgs}
	cmd.AddCommand(
		cli.Renamed(containers.NewPsCmd(g), "ls [OPTIONS]", "ps", "list"),
		run.NewRunCmd(g), run.NewCreateCmd(g), containers.NewStartCmd(g), containers.NewStopCmd(g), containers.NewRestartCmd(g),
		containers.NewKillCmd(g), containers.NewWaitCmd(g), containers.NewLogsCmd(g), cli.Renamed(containers.NewRmCmd(g), "rm [OPTIONS] CONTAINER [CONTAINER...]", "remove"),
		containers.NewInspectCmd(g, "container"), containers.NewExecCmd(g), containers.NewTopCmd(g), containers.NewStatsCmd(g),
		containers.NewPauseCmd(g), containers.NewUnpauseCmd(g), containers.NewRenameCmd(g), containers.NewCpCmd(g), containers.NewDiffCmd(g),
		containers.NewCommitCmd(g), containers.NewContainerPruneCmd(g), containers.NewPortCmd(g), containers.NewExportCmd(g),
	)
	return cmd
}
