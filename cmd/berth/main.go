// Command berth is Berth's command line: Docker's verbs over the embeddable
// engine, with no daemon. The verbs live in internal/cli/... packages; this file
// holds the root command, global flags and error handling.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/containers"
	berthevents "github.com/berthproject/berth/cmd/berth/internal/cli/events"
	"github.com/berthproject/berth/cmd/berth/internal/cli/images"
	"github.com/berthproject/berth/cmd/berth/internal/cli/network"
	"github.com/berthproject/berth/cmd/berth/internal/cli/run"
	"github.com/berthproject/berth/cmd/berth/internal/cli/system"
	"github.com/berthproject/berth/cmd/berth/internal/cli/volume"
	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// globals are the flags every verb shares (package cli's), with the
// opener service.go uses.
type globals struct{ cli.Globals }

func (g *globals) open(ctx context.Context) (*engine.Engine, error) { return g.Open(ctx) }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND",
		Short:         "A daemonless container engine that speaks Docker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	if s := os.Getenv("BERTH_DEFAULT_SUBNET"); s != "" {
		prefixValue{&g.Opts.Network.DefaultSubnet}.Set(s)
	}
	f := root.PersistentFlags()
	f.StringVar(&g.Opts.Root, "root", envOr("BERTH_ROOT", engine.DefaultRoot), "Persistent state directory (images, snapshots, containers)")
	f.StringVar(&g.Opts.RunRoot, "runroot", envOr("BERTH_RUNROOT", engine.DefaultRunRoot), "Runtime state directory (bundles, OCI runtime state)")
	f.StringVar(&g.Opts.Runtime, "runtime", os.Getenv("BERTH_RUNTIME"), "OCI runtime binary (runc, crun, …) for new containers (default crun if installed, else runc)")
	g.Opts.Monitor = os.Getenv("BERTH_MONITOR")
	f.StringVar(&g.Opts.Snapshotter, "storage-driver", envOr("BERTH_STORAGE_DRIVER", "overlay"), "Snapshotter: overlay or vfs")
	f.StringSliceVar(&g.Insecure, "insecure-registry", nil, "Registry (host:port) to reach over plain HTTP; repeatable")
	f.StringVar(&g.Opts.Network.DefaultBridge, "default-bridge", os.Getenv("BERTH_DEFAULT_BRIDGE"), "Linux bridge of the default network (default berth0, or one derived from --root for another root)")
	f.Var(prefixValue{&g.Opts.Network.DefaultSubnet}, "default-subnet", "Subnet of the default network (default 10.77.0.0/16, or a free /24 of 10.78.0.0/15 for another root)")
	f.StringVar(&g.Opts.Network.ChainPrefix, "firewall-prefix", os.Getenv("BERTH_FIREWALL_PREFIX"), "Prefix of berth's iptables chains (default BERTH, or one derived from --root for another root)")
	c := &g.Globals
	root.AddCommand(
		run.NewRunCmd(c), run.NewCreateCmd(c), containers.NewStartCmd(c), containers.NewStopCmd(c), containers.NewRestartCmd(c),
		containers.NewKillCmd(c), containers.NewWaitCmd(c), containers.NewLogsCmd(c), containers.NewPsCmd(c), containers.NewRmCmd(c), containers.NewCleanupCmd(c),
		images.NewPullCmd(c), images.NewImagesCmd(c), images.NewRmiCmd(c),
		images.NewPushCmd(c), images.NewTagCmd(c), images.NewHistoryCmd(c), images.NewSaveCmd(c), images.NewLoadCmd(c), images.NewImportCmd(c), containers.NewExportCmd(c), images.NewLoginCmd(c), images.NewLogoutCmd(c), images.NewImageCmd(c), images.NewSystemCmd(c),
	)
	root.AddCommand(containers.NewExecCmd(c), containers.NewInspectCmd(c, ""), containers.NewTopCmd(c), containers.NewStatsCmd(c), containers.NewPauseCmd(c), containers.NewUnpauseCmd(c), containers.NewRenameCmd(c), containers.NewCpCmd(c), containers.NewDiffCmd(c), containers.NewCommitCmd(c), newContainerCmd(c))
	root.AddCommand(network.NewNetworkCmd(c), containers.NewPortCmd(c), newAttachCmd(g), volume.NewVolumeCmd(c))
	// `version`, `info` and `system info`
	system.AddTo(root, c, berthVersion)
	berthevents.AddTo(root, c)       // `events` and `system events`
	root.AddCommand(newFetcherCmd()) // hidden: the unprivileged registry fetcher
	addSystemService(root, g)        // `system service`: the Docker Engine API (service.go)
	root.SetFlagErrorFunc(cli.FlagError)
	cli.DockerArgs(root)
	noFlagsInUseLine(root)
	return root
}

// noFlagsInUseLine keeps cobra from appending " [flags]" to the usage
// lines, which already say [OPTIONS] as Docker's do.
func noFlagsInUseLine(c *cobra.Command) {
	c.DisableFlagsInUseLine = true
	for _, sub := range c.Commands() {
		noFlagsInUseLine(sub)
	}
}

// prefixValue is a pflag.Value for a netip.Prefix (also read from
// $BERTH_DEFAULT_SUBNET).
type prefixValue struct{ p *netip.Prefix }

func (v prefixValue) String() string {
	if v.p == nil || !v.p.IsValid() {
		return ""
	}
	return v.p.String()
}
func (v prefixValue) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("invalid subnet %q: %w", s, errdefs.ErrInvalidArgument)
	}
	*v.p = p
	return nil
}
func (v prefixValue) Type() string { return "CIDR" }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	// Descriptors the caller left open without close-on-exec (a shell's
	// `9>&1`, a make jobserver's pipe) would pass to every program berth
	// starts, and stay open for a container's life in its monitor:
	// conmon, which keeps them, never let such a pipeline end. (Socket
	// activation's descriptors are used in this process, not passed on.)
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	cancel()
	os.Exit(report(err))
}

// report prints err as one line on stderr and returns the exit code: the
// one a cli.ExitError carries, else 1 (Docker's CLI exits 1 when a request
// fails; `run` and `create` use 125, via cli.ExitError). A command-line
// error (cli.UsageError) is its message and a "See '... --help'." line,
// with its own code (125 for flags, 1 for arguments, as Docker's CLI).
func report(err error) int {
	if err == nil {
		return 0
	}
	var ue cli.UsageError
	if errors.As(err, &ue) {
		fmt.Fprintln(os.Stderr, ue.Msg)
		fmt.Fprintln(os.Stderr, ue.Hint())
		return ue.Code
	}
	var ee cli.ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "Error:", cli.Message(ee.Err))
		}
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "Error:", cli.Message(err))
	return 1
}
