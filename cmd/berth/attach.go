package main

import (
	"context"
	"io"
	"os"

	"github.com/berthproject/berth/cmd/berth/internal/cli"

	"github.com/berthproject/berth/engine"
	"github.com/spf13/cobra"
)

func newAttachCmd(g *globals) *cobra.Command {
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(&g.Globals, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			var stdin io.Reader
			if !noStdin {
				stdin = os.Stdin
			}
			if err := e.Attach(ctx, args[0], stdin, os.Stdout, os.Stderr); err != nil {
				return err
			}
			// As docker attach: exit with the container's status.
			code, err := e.Wait(ctx, args[0])
			if err != nil {
				return err
			}
			if code != 0 {
				return cli.ExitError{Code: code}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().Bool("sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}
