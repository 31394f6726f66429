package system

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/docker/go-units"
	systemtypes "github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

// ClientInfo is the ClientInfo of `info --format` data, docker's shape:
// the client's version fields inline, no CLI plugins.
type ClientInfo struct {
	Debug bool
	ClientVersion
	Plugins  []struct{}
	Warnings []string
}

// Info is what `berth info --format` templates see, as docker's `info
// --format`: GET /info's body (convert.Info) inline ({{.DefaultRuntime}},
// {{.Driver}}, {{.Containers}} …) and ClientInfo ({{.ClientInfo.Version}}).
type Info struct {
	*systemtypes.Info `json:",omitempty"`
	ClientInfo        *ClientInfo `json:",omitempty"`
}

// NewInfoCmd is `berth info [-f FORMAT]` (and `berth system info`):
// docker's `info` for the engine the global flags open, Berth version
// version.
func NewInfoCmd(g *cli.Globals, version string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var tmpl *template.Template
			if format != "" {
				var err error
				if tmpl, err = output.ParseFormat(format); err != nil {
					return templateParseError(cmd, err)
				}
			}
			return cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, _ []string) error {
				in, err := newInfo(ctx, e, version)
				if err != nil {
					return err
				}
				if tmpl == nil {
					writeInfo(cmd.OutOrStdout(), cmd.ErrOrStderr(), in)
					return nil
				}
				return templateResult(cmd, formatInfo(cmd.OutOrStdout(), tmpl, in))
			})(cmd, args)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// newInfo is Info for the engine e: GET /info's conversion over the
// same containers and images the API service would count.
func newInfo(ctx context.Context, e *engine.Engine, version string) (Info, error) {
	cs, err := e.Containers(ctx, true)
	if err != nil {
		return Info{}, err
	}
	imgs, err := e.Images(ctx)
	if err != nil {
		return Info{}, err
	}
	si := convert.Info(e.Options(), version, cs, len(imgs))
	return Info{Info: &si, ClientInfo: &ClientInfo{ClientVersion: newClientVersion(version), Plugins: []struct{}{}}}, nil
}

// formatInfo prints in through a --format template, then a newline
// (docker's behaviour, also after a template error).
func formatInfo(w io.Writer, tmpl *template.Template, in Info) error {
	err := tmpl.Execute(w, in)
	fmt.Fprintln(w)
	return err
}

// writeInfo prints docker 28's `info` text for in: a Client section
// (Version, Context, Debug Mode), then the Server section line by line as
// docker's CLI lays it out (lines for empty optional values left out,
// as docker does), then a blank line; Warnings go to errw.
func writeInfo(w, errw io.Writer, in Info) {
	line := func(a ...any) { fmt.Fprintln(w, a...) }
	nonEmpty := func(label, v string) {
		if v != "" {
			line(label, v)
		}
	}
	line("Client:")
	nonEmpty(" Version:   ", in.ClientInfo.Version)
	line(" Context:   ", in.ClientInfo.Context)
	line(" Debug Mode:", in.ClientInfo.Debug)
	line()
	line("Server:")
	i := in.Info
	line(" Containers:", i.Containers)
	line("  Running:", i.ContainersRunning)
	line("  Paused:", i.ContainersPaused)
	line("  Stopped:", i.ContainersStopped)
	line(" Images:", i.Images)
	nonEmpty(" Server Version:", i.ServerVersion)
	nonEmpty(" Storage Driver:", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	nonEmpty(" Logging Driver:", i.LoggingDriver)
	nonEmpty(" Cgroup Driver:", i.CgroupDriver)
	nonEmpty(" Cgroup Version:", i.CgroupVersion)
	line(" Plugins:")
	line("  Volume:", strings.Join(i.Plugins.Volume, " "))
	line("  Network:", strings.Join(i.Plugins.Network, " "))
	line("  Log:", strings.Join(i.Plugins.Log, " "))
	line(" Swarm:", i.Swarm.LocalNodeState)
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for name := range i.Runtimes {
			names = append(names, name)
		}
		sort.Strings(names)
		line(" Runtimes:", strings.Join(names, " "))
		line(" Default Runtime:", i.DefaultRuntime)
	}
	if i.OSType == "linux" {
		line(" Init Binary:", i.InitBinary)
		line(" containerd version:", i.ContainerdCommit.ID)
		line(" runc version:", i.RuncCommit.ID)
		line(" init version:", i.InitCommit.ID)
		if opts := securityOptions(i.SecurityOptions); len(opts) > 0 {
			line(" Security Options:")
			for _, o := range opts {
				line("  " + o.name)
				if o.profile != "" {
					line("   Profile:", o.profile)
				}
			}
		}
	}
	nonEmpty(" Kernel Version:", i.KernelVersion)
	nonEmpty(" Operating System:", i.OperatingSystem)
	nonEmpty(" OSType:", i.OSType)
	nonEmpty(" Architecture:", i.Architecture)
	line(" CPUs:", i.NCPU)
	line(" Total Memory:", units.BytesSize(float64(i.MemTotal)))
	nonEmpty(" Name:", i.Name)
	nonEmpty(" ID:", i.ID)
	line(" Docker Root Dir:", i.DockerRootDir)
	line(" Debug Mode:", i.Debug)
	nonEmpty(" HTTP Proxy:", i.HTTPProxy)
	nonEmpty(" HTTPS Proxy:", i.HTTPSProxy)
	nonEmpty(" No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		line(" Labels:")
		for _, l := range i.Labels {
			line("  " + l)
		}
	}
	line(" Experimental:", i.ExperimentalBuild)
	line(" Live Restore Enabled:", i.LiveRestoreEnabled)
	line()
	for _, warn := range i.Warnings {
		fmt.Fprintln(errw, warn)
	}
}

// securityOption is one of Info.SecurityOptions ("name=seccomp,profile=builtin").
type securityOption struct{ name, profile string }

// securityOptions decodes Info.SecurityOptions, docker's
// "name=NAME[,key=value…]" strings; entries without a name are skipped.
func securityOptions(raw []string) []securityOption {
	var out []securityOption
	for _, s := range raw {
		var o securityOption
		for _, kv := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "name":
				o.name = v
			case "profile":
				o.profile = v
			}
		}
		if o.name != "" {
			out = append(out, o)
		}
	}
	return out
}

// AddTo registers `version` and `info` on root and `info` under its
// `system` group (made if no other file has), for Berth version version.
func AddTo(root *cobra.Command, g *cli.Globals, version string) {
	root.AddCommand(NewVersionCmd(g, version), NewInfoCmd(g, version))
	cli.Group(root, "system", "Manage Berth").AddCommand(NewInfoCmd(g, version))
}
