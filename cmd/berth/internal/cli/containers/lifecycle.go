// Package containers holds berth's container verbs other than run and
// create: start, stop, restart, kill, wait, logs, rm, ps, exec, inspect,
// top, stats, pause, unpause, rename, cp, diff, commit, prune, port and
// export.
package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/run"
	"github.com/berthproject/berth/cmd/berth/internal/cli/tty"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	msignal "github.com/moby/sys/signal"
	"github.com/spf13/cobra"
)

// NewStartCmd is `berth start`: start one or more stopped containers.
func NewStartCmd(g *cli.Globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	var sigs *run.SignalProxy // attached: caught from the start, as `run`
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: catchSignals(&sigs, &attach, &interactive, cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			if attach || interactive {
				if len(args) > 1 {
					return fmt.Errorf("you cannot start and attach multiple containers at once")
				}
				if c, err := e.Container(ctx, args[0]); err == nil && c.Run.Tty {
					sigs.Stop() // tty.Run relays signals itself
					code, err := tty.Run(ctx, e, c.ID, tty.Options{Stdin: interactive, DetachKeys: detachKeys})
					if err != nil || code != 0 {
						return cli.ExitError{Code: max(code, 1), Err: err}
					}
					return nil
				}
				stdio := runtime.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
				if interactive {
					stdio.Stdin = os.Stdin
				}
				if sig, ok := sigs.Interrupted(); ok {
					return cli.ExitError{Code: 128 + int(sig)} // not started
				}
				// main's context ends at a signal: the start and the wait
				// go on, and the signal goes to the container.
				bg := context.WithoutCancel(ctx)
				p, err := e.Start(bg, args[0], stdio)
				if err != nil {
					return cli.ExitError{Code: 1, Err: err}
				}
				sigs.Forward(p.Signal)
				code, err := p.Wait(bg)
				if err != nil {
					return cli.ExitError{Code: 1, Err: err}
				}
				if code != 0 {
					return cli.ExitError{Code: code}
				}
				return nil
			}
			// Docker's CLI ends a failed start with a summary line.
			var failed []string
			if err := cli.EachContainer(cmd, args, func(ref string) error {
				err := startDetached(ctx, e, ref)
				if err != nil {
					failed = append(failed, ref)
				}
				return err
			}); err != nil {
				return cli.ExitError{Code: 1, Err: fmt.Errorf("failed to start containers: %s", strings.Join(failed, ", "))}
			}
			return nil
		})),
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startDetached starts ref under its monitor; a container that is
// already running (and not paused) counts as started, as Docker's daemon
// answers 304 Not Modified and its CLI prints the name and exits 0.
func startDetached(ctx context.Context, e *engine.Engine, ref string) error {
	err := e.StartDetached(ctx, ref)
	if errdefs.IsConflict(err) {
		if c, cerr := e.Container(ctx, ref); cerr == nil && c.State.Status == engine.StatusRunning && !c.State.Paused {
			return nil
		}
	}
	return err
}

// catchSignals wraps start's body: with -a or -i, signals are caught
// (into *sigs) before the engine is opened, as `run` does.
func catchSignals(sigs **run.SignalProxy, attach, interactive *bool, body func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if *attach || *interactive {
			*sigs = run.CatchSignals()
			defer (*sigs).Stop()
		}
		return body(cmd, args)
	}
}

func timeoutFlag(cmd *cobra.Command, secs int) *time.Duration {
	if !cmd.Flags().Changed("time") && !cmd.Flags().Changed("timeout") {
		return nil
	}
	d := time.Duration(secs) * time.Second
	if secs < 0 {
		d = 0 // -1: wait for ever is not offered; kill at once is the safe reading
		d = 24 * time.Hour
	}
	return &d
}

// NewStopCmd is `berth stop`: stop one or more running containers.
func NewStopCmd(g *cli.Globals) *cobra.Command {
	var secs int
	var sig string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			t := timeoutFlag(cmd, secs)
			return cli.EachContainer(cmd, args, func(ref string) error {
				if sig != "" {
					return e.StopWithSignal(ctx, ref, sig, t)
				}
				return e.Stop(ctx, ref, t)
			})
		}),
	}
	cmd.Flags().IntVarP(&secs, "time", "t", 10, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&secs, "timeout", 10, "Seconds to wait before killing the container")
	cmd.Flags().MarkHidden("timeout")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

// NewRestartCmd is `berth restart`: restart one or more containers.
func NewRestartCmd(g *cli.Globals) *cobra.Command {
	var secs int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			t := timeoutFlag(cmd, secs)
			return cli.EachContainer(cmd, args, func(ref string) error { return e.Restart(ctx, ref, t) })
		}),
	}
	cmd.Flags().IntVarP(&secs, "time", "t", 10, "Seconds to wait before killing the container")
	return cmd
}

// NewKillCmd is `berth kill`: kill one or more running containers.
func NewKillCmd(g *cli.Globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			s, err := msignal.ParseSignal(sig)
			if err != nil {
				return fmt.Errorf("invalid signal: %s: %w", sig, errdefs.ErrInvalidArgument)
			}
			return cli.EachContainer(cmd, args, func(ref string) error { return e.Kill(ctx, ref, s) })
		}),
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "Signal to send to the container")
	return cmd
}

// NewWaitCmd is `berth wait`: block until one or more containers stop, then print their exit codes.
func NewWaitCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return cli.EachArg(args, func(ref string) error {
				code, err := e.Wait(ctx, ref)
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), code)
				}
				return err
			})
		}),
	}
}

// NewLogsCmd is `berth logs`: fetch the logs of a container.
func NewLogsCmd(g *cli.Globals) *cobra.Command {
	var opts engine.LogOptions
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			opts.Tail = engine.ParseLogTail(tail)
			var err error
			if opts.Since, err = cli.ParseTime(since); err != nil {
				return err
			}
			if opts.Until, err = cli.ParseTime(until); err != nil {
				return err
			}
			err = e.Logs(ctx, args[0], opts, os.Stdout, os.Stderr)
			if err != nil && opts.Follow && ctx.Err() != nil {
				return nil // Ctrl-C ends `logs -f` quietly with status 0, as Docker
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	f.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	f.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.StringVar(&since, "since", "", "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVar(&until, "until", "", "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return cmd
}

// NewCleanupCmd is the hidden verb the monitor runs when a detached
// container exits.
func NewCleanupCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:    "container-cleanup CONTAINER",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return e.Cleanup(ctx, args[0])
		}),
	}
}

// NewRmCmd is `berth rm`: remove one or more containers.
func NewRmCmd(g *cli.Globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			// With --force a container that does not exist is no error and
			// prints nothing, as the docker CLI's rm.
			return cli.EachArg(args, func(ref string) error {
				var err error
				if volumes {
					err = e.RemoveWithVolumes(ctx, ref, force)
				} else {
					err = e.Remove(ctx, ref, force)
				}
				switch {
				case force && errdefs.IsNotFound(err):
				case err != nil:
					return err
				default:
					fmt.Fprintln(cmd.OutOrStdout(), ref)
				}
				return nil
			})
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

// NewExportCmd is `berth export`: export a container's filesystem as a tar archive.
func NewExportCmd(g *cli.Globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WriteOutput(g, &output, func(ctx context.Context, e *engine.Engine, args []string, w io.Writer) error {
			return e.ExportContainer(ctx, args[0], w)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
