package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/tty"
	"github.com/berthproject/berth/engine"
	"github.com/spf13/cobra"
)

// newAttachCmd is `berth attach`: Docker's exit status is the container's;
// detaching with the detach keys prints "read escape sequence" on stderr
// and exits 1, as the docker CLI 28 does (its attach returns the escape
// error, which it prints).
func newAttachCmd(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(&g.Globals, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			code, err := tty.Attach(ctx, e, args[0], tty.Options{Stdin: !noStdin, DetachKeys: detachKeys, SigProxy: sigProxy})
			switch {
			case errors.Is(err, engine.ErrDetached):
				fmt.Fprintln(os.Stderr, err)
				return cli.ExitError{Code: 1}
			case err != nil:
				if ie := cli.Interrupted(ctx); ie != nil {
					return ie
				}
				return err
			case code != 0:
				return cli.ExitError{Code: code}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}
