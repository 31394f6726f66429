package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	msignal "github.com/moby/sys/signal"
	"github.com/spf13/cobra"
)

// withEngine wraps a verb's body with opening and closing the engine.
func withEngine(g *globals, fn func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := g.open(cmd.Context())
		if err != nil {
			return err
		}
		defer e.Close()
		return fn(cmd.Context(), e, cmd, args)
	}
}

// eachContainer applies fn to every argument, printing the argument on
// success and an error line on failure, as Docker's multi-container verbs
// do; any failure makes the exit code 1.
func eachContainer(cmd *cobra.Command, args []string, fn func(ref string) error) error {
	var failed error
	for _, ref := range args {
		if err := fn(ref); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", message(err))
			failed = exitError{code: 1}
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	return failed
}

func newCreateCmd(g *globals) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := rf.createOptions(cmd, args)
			if err != nil {
				return exitError{code: 125, err: err}
			}
			e, err := g.open(cmd.Context())
			if err != nil {
				return exitError{code: 125, err: err}
			}
			defer e.Close()
			c, err := e.Create(cmd.Context(), opts)
			if err != nil {
				return exitError{code: 125, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			if attach || interactive {
				if len(args) > 1 {
					return fmt.Errorf("you cannot start and attach multiple containers at once")
				}
				stdio := runtime.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
				if interactive {
					stdio.Stdin = os.Stdin
				}
				p, err := e.Start(ctx, args[0], stdio)
				if err != nil {
					return exitError{code: 1, err: err}
				}
				stopForwarding := forwardSignals(p.Signal)
				defer stopForwarding()
				code, err := p.Wait(ctx)
				if err != nil {
					return exitError{code: 1, err: err}
				}
				if code != 0 {
					return exitError{code: code}
				}
				return nil
			}
			return eachContainer(cmd, args, func(ref string) error { return e.StartDetached(ctx, ref) })
		}),
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

// forwardSignals relays the signals a user sends berth to the container
// (Docker's --sig-proxy); the returned func stops it.
func forwardSignals(send func(syscall.Signal) error) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			send(s.(syscall.Signal))
		}
	}()
	return func() { signal.Stop(sigs); close(sigs) }
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

func newStopCmd(g *globals) *cobra.Command {
	var secs int
	var sig string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			t := timeoutFlag(cmd, secs)
			return eachContainer(cmd, args, func(ref string) error {
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

func newRestartCmd(g *globals) *cobra.Command {
	var secs int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			t := timeoutFlag(cmd, secs)
			return eachContainer(cmd, args, func(ref string) error { return e.Restart(ctx, ref, t) })
		}),
	}
	cmd.Flags().IntVarP(&secs, "time", "t", 10, "Seconds to wait before killing the container")
	return cmd
}

func newKillCmd(g *globals) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			s, err := msignal.ParseSignal(sig)
			if err != nil {
				return fmt.Errorf("invalid signal: %s: %w", sig, errdefs.ErrInvalidArgument)
			}
			return eachContainer(cmd, args, func(ref string) error { return e.Kill(ctx, ref, s) })
		}),
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "Signal to send to the container")
	return cmd
}

func newWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			var failed error
			for _, ref := range args {
				code, err := e.Wait(ctx, ref)
				if err != nil {
					fmt.Fprintln(os.Stderr, "Error:", message(err))
					failed = exitError{code: 1}
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			return failed
		}),
	}
}

func newLogsCmd(g *globals) *cobra.Command {
	var opts engine.LogOptions
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			opts.Tail = -1
			if tail != "all" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return fmt.Errorf("invalid value for --tail: %q: %w", tail, errdefs.ErrInvalidArgument)
				}
				opts.Tail = n
			}
			var err error
			if opts.Since, err = parseTime(since); err != nil {
				return err
			}
			if opts.Until, err = parseTime(until); err != nil {
				return err
			}
			return e.Logs(ctx, args[0], opts, os.Stdout, os.Stderr)
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

// parseTime reads Docker's --since/--until values: RFC 3339 (with or
// without fractional seconds or zone), a Unix timestamp, or a duration
// before now ("42m").
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want RFC 3339, a Unix timestamp or a duration: %w", s, errdefs.ErrInvalidArgument)
}

// newCleanupCmd is the hidden verb the monitor runs when a detached
// container exits.
func newCleanupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "container-cleanup CONTAINER",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: withEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return e.Cleanup(ctx, args[0])
		}),
	}
}
