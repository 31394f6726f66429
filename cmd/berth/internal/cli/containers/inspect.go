package containers

import (
	"context"
	"fmt"
	"os"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// NewInspectCmd is `berth inspect`: containers or images (objType
// "container", "image", or "" for either, containers first), printed as
// one JSON array or through a -f template per object. Unknown names are
// reported one line each and make the exit code 1; the others are still
// printed.
func NewInspectCmd(g *cli.Globals, objType string) *cobra.Command {
	var format string
	var size bool
	use, short := "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects"
	if objType == "container" {
		use, short = "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			switch objType {
			case "", "container", "image":
			default:
				return fmt.Errorf("%q is not a valid value for --type: %w", objType, errdefs.ErrInvalidArgument)
			}
			if format != "" && format != "json" {
				if _, err := output.Parse(format); err != nil {
					return err
				}
			}
			var objs []any
			var failed []error
			for _, ref := range args {
				obj, err := inspectObject(ctx, e, objType, ref, size)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				objs = append(objs, obj)
			}
			if err := output.PrintInspect(cmd.OutOrStdout(), format, objs); err != nil {
				return err
			}
			for _, err := range failed {
				fmt.Fprintln(os.Stderr, "Error:", cli.Message(err))
			}
			if len(failed) > 0 {
				return cli.ExitError{Code: 1}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	if objType == "" {
		cmd.Flags().StringVar(&objType, "type", "", "Only inspect objects of the given type (container or image)")
	}
	return cmd
}

func inspectObject(ctx context.Context, e *engine.Engine, objType, ref string, size bool) (any, error) {
	if objType != "image" {
		c, err := e.InspectContainer(ctx, ref, size)
		if err == nil || objType == "container" || !errdefs.IsNotFound(err) {
			return c, err
		}
	}
	img, err := e.InspectImage(ctx, ref)
	if err != nil && errdefs.IsNotFound(err) && objType == "" {
		return nil, fmt.Errorf("No such object: %s: %w", ref, errdefs.ErrNotFound)
	}
	return img, err
}
