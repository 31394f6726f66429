// Command berth is Berth's command line: Docker's verbs over the embeddable
// engine, with no daemon. Each verb group lives in its own file; this file
// holds the root command, global flags and error handling.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// exitError carries an exit code chosen by a command (a container's status,
// 125 for an engine error in run) up to main.
type exitError struct {
	code int
	err  error // printed when non-nil
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// globals are the flags every verb shares.
type globals struct {
	opts     engine.Options
	insecure []string
}

func (g *globals) open(ctx context.Context) (*engine.Engine, error) {
	o := g.opts
	o.InsecureRegistries = g.insecure
	return engine.Open(ctx, o)
}

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
		prefixValue{&g.opts.Network.DefaultSubnet}.Set(s)
	}
	f := root.PersistentFlags()
	f.StringVar(&g.opts.Root, "root", envOr("BERTH_ROOT", engine.DefaultRoot), "Persistent state directory (images, snapshots, containers)")
	f.StringVar(&g.opts.RunRoot, "runroot", envOr("BERTH_RUNROOT", engine.DefaultRunRoot), "Runtime state directory (bundles, OCI runtime state)")
	f.StringVar(&g.opts.Runtime, "runtime", envOr("BERTH_RUNTIME", "runc"), "OCI runtime binary (runc, crun, …)")
	f.StringVar(&g.opts.Snapshotter, "storage-driver", envOr("BERTH_STORAGE_DRIVER", "overlay"), "Snapshotter: overlay or vfs")
	f.StringSliceVar(&g.insecure, "insecure-registry", nil, "Registry (host:port) to reach over plain HTTP; repeatable")
	f.StringVar(&g.opts.Network.DefaultBridge, "default-bridge", os.Getenv("BERTH_DEFAULT_BRIDGE"), "Linux bridge of the default network (default berth0)")
	f.Var(prefixValue{&g.opts.Network.DefaultSubnet}, "default-subnet", "Subnet of the default network (default 10.77.0.0/16)")
	f.StringVar(&g.opts.Network.ChainPrefix, "firewall-prefix", os.Getenv("BERTH_FIREWALL_PREFIX"), "Prefix of berth's iptables chains (default BERTH)")
	root.AddCommand(
		newRunCmd(g), newCreateCmd(g), newStartCmd(g), newStopCmd(g), newRestartCmd(g),
		newKillCmd(g), newWaitCmd(g), newLogsCmd(g), newPsCmd(g), newRmCmd(g), newCleanupCmd(g),
		newPullCmd(g), newImagesCmd(g), newRmiCmd(g),
		newPushCmd(g), newTagCmd(g), newHistoryCmd(g), newSaveCmd(g), newLoadCmd(g), newImportCmd(g), newExportCmd(g), newLoginCmd(g), newLogoutCmd(g), newImageCmd(g), newSystemCmd(g),
	)
	root.AddCommand(newExecCmd(g), newInspectCmd(g, ""), newTopCmd(g), newStatsCmd(g), newPauseCmd(g), newUnpauseCmd(g), newRenameCmd(g), newCpCmd(g), newDiffCmd(g), newCommitCmd(g), newContainerCmd(g))
	root.AddCommand(newNetworkCmd(g), newPortCmd(g), newAttachCmd(g))
	root.AddCommand(newFetcherCmd()) // hidden: the unprivileged registry fetcher
	addSystemService(root, g)        // `system service`: the Docker Engine API (service.go)
	return root
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
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	cancel()
	os.Exit(report(err))
}

// report prints err as one line on stderr and returns the exit code: the
// one an exitError carries, else 1 (Docker's CLI exits 1 when a request
// fails; `run` and `create` use 125, via exitError).
func report(err error) int {
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "Error:", message(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "Error:", message(err))
	return 1
}

// categorySuffixes are the texts errdefs categories append when wrapped
// with %w; users see the message without them.
var categorySuffixes = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict,
	errdefs.ErrUnavailable, errdefs.ErrDataLoss, errdefs.ErrNotImplemented, errdefs.ErrFailedPrecondition,
	errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated, errdefs.ErrUnknown, errdefs.ErrAborted,
}

// message is err's text on one line, without errdefs category suffixes.
func message(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	for _, c := range categorySuffixes {
		if s := ": " + c.Error(); strings.HasSuffix(msg, s) {
			return strings.TrimSuffix(msg, s)
		}
	}
	return msg
}
