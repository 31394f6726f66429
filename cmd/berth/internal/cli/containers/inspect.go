package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
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
		if err == nil {
			return dockerInspect{c}, nil
		}
		if objType == "container" || !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	img, err := e.InspectImage(ctx, ref)
	if err != nil && errdefs.IsNotFound(err) && objType == "" {
		return nil, fmt.Errorf("No such object: %s: %w", ref, errdefs.ErrNotFound)
	}
	return img, err
}

// dockerInspect is a container's inspect object as docker 28 prints it:
// Config.OnBuild is null there, where the API module's type (a newer
// one) omits an empty OnBuild.
type dockerInspect struct{ container.InspectResponse }

// configStart and configLabels find where Docker's Config has OnBuild: before Labels,
// Config starting with Hostname (compact JSON, so no string holds it).
var configStart, configLabels = []byte(`"Config":{"Hostname":`), []byte(`,"Labels":`)

func (d dockerInspect) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(engine.ContainerInspectJSON{InspectResponse: d.InspectResponse}); err != nil {
		return nil, err
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if d.Config == nil || d.Config.OnBuild != nil {
		return data, nil
	}
	i := bytes.Index(data, configStart)
	if i < 0 {
		return data, nil
	}
	j := bytes.Index(data[i:], configLabels)
	if j < 0 {
		return data, nil
	}
	at := i + j
	return slices.Concat(data[:at], []byte(`,"OnBuild":null`), data[at:]), nil
}
