package main

import "github.com/spf13/cobra"

// newContainerCmd is `berth container`: the container verbs under one
// group, as `docker container` (ls/ps/list, run, create, start, stop,
// restart, kill, wait, logs, rm, inspect, exec, top, stats, pause,
// unpause, rename, cp, diff, commit, prune, port, export). Each
// subcommand is a fresh instance of the top-level verb.
func newContainerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers", Args: cobra.NoArgs}
	cmd.AddCommand(
		renamed(newPsCmd(g), "ls [OPTIONS]", "ps", "list"),
		newRunCmd(g), newCreateCmd(g), newStartCmd(g), newStopCmd(g), newRestartCmd(g),
		newKillCmd(g), newWaitCmd(g), newLogsCmd(g), renamed(newRmCmd(g), "rm [OPTIONS] CONTAINER [CONTAINER...]", "remove"),
		newInspectCmd(g, "container"), newExecCmd(g), newTopCmd(g), newStatsCmd(g),
		newPauseCmd(g), newUnpauseCmd(g), newRenameCmd(g), newCpCmd(g), newDiffCmd(g),
		newCommitCmd(g), newContainerPruneCmd(g), newPortCmd(g), newExportCmd(g),
	)
	return cmd
}
