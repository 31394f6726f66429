// Package run holds `berth run` and `berth create`: their flags, the
// container options built from them (mounts, limits, security), and the
// foreground run with Docker's exit codes.
package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/tty"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// runFlags are the flags of `run` and `create`.
type runFlags struct {
	name, entrypoint, user, workdir, hostname, network, pull, platform string
	restart, stopSignal, ip, memory, memorySwap, shmSize               string
	cpus                                                               float64
	pidsLimit                                                          int64
	volumes, mounts, tmpfs, ulimits, securityOpts, sysctls             []string
	init                                                               bool
	publish, expose, dns, dnsSearch, dnsOptions, addHosts, aliases     []string
	publishAll                                                         bool
	stopTimeout                                                        int
	env, envFiles, capAdd, capDrop, labels, logOpts                    []string
	rm, interactive, tty, detach, readOnly, privileged                 bool
	detachKeys                                                         string // run only
	devices                                                            []runtime.DeviceMapping
}

// NewRunCmd is `berth run`: create and run a new container from an image.
func NewRunCmd(g *cli.Globals) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := runContainer(cmd, g, &rf, args)
			if err != nil {
				return cli.ExitError{Code: code, Err: err}
			}
			if code != 0 {
				return cli.ExitError{Code: code}
			}
			return nil
		},
	}
	rf.register(cmd)
	cmd.Flags().BoolVarP(&rf.detach, "detach", "d", false, "Run container in background and print container ID")
	cmd.Flags().StringVar(&rf.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// register adds the flags `run` and `create` share.
func (rf *runFlags) register(cmd *cobra.Command) {
	cmd.Flags().SetInterspersed(false) // flags after IMAGE belong to the command
	f := cmd.Flags()
	f.StringVar(&rf.name, "name", "", "Assign a name to the container")
	f.BoolVar(&rf.rm, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	f.BoolVarP(&rf.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&rf.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.StringArrayVarP(&rf.env, "env", "e", nil, "Set environment variables")
	f.StringArrayVar(&rf.envFiles, "env-file", nil, "Read in a file of environment variables")
	f.StringVar(&rf.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	f.StringVarP(&rf.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&rf.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVarP(&rf.hostname, "hostname", "h", "", "Container host name")
	f.StringVar(&rf.network, "network", "bridge", "Connect a container to a network")
	f.StringVar(&rf.network, "net", "bridge", "Connect a container to a network")
	f.MarkHidden("net")
	f.StringVar(&rf.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringArrayVar(&rf.aliases, "network-alias", nil, "Add network-scoped alias for the container")
	f.StringArrayVarP(&rf.publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	f.BoolVarP(&rf.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	f.StringArrayVar(&rf.expose, "expose", nil, "Expose a port or a range of ports")
	f.StringArrayVar(&rf.dns, "dns", nil, "Set custom DNS servers")
	f.StringArrayVar(&rf.dnsSearch, "dns-search", nil, "Set custom DNS search domains")
	f.StringArrayVar(&rf.dnsOptions, "dns-option", nil, "Set DNS options")
	f.StringArrayVar(&rf.addHosts, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	f.StringVar(&rf.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	f.StringVar(&rf.platform, "platform", "", "Set platform if server is multi-platform capable")
	f.BoolVar(&rf.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	f.BoolVar(&rf.privileged, "privileged", false, "Give extended privileges to this container")
	f.Func("device", "Add a host device to the container", func(v string) error {
		d, err := runtime.ParseDevice(v)
		if err == nil {
			rf.devices = append(rf.devices, d)
		}
		return err
	})
	f.StringSliceVar(&rf.capAdd, "cap-add", nil, "Add Linux capabilities")
	f.StringSliceVar(&rf.capDrop, "cap-drop", nil, "Drop Linux capabilities")
	f.StringVar(&rf.restart, "restart", "no", "Restart policy to apply when a container exits")
	f.StringVar(&rf.stopSignal, "stop-signal", "", "Signal to stop the container")
	f.IntVar(&rf.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	f.StringArrayVarP(&rf.labels, "label", "l", nil, "Set meta data on a container")
	rf.registerValidated(cmd) // --log-opt, --log-driver (validate.go)
	f.StringArrayVarP(&rf.volumes, "volume", "v", nil, "Bind mount a volume (HOST-PATH:CONTAINER-PATH[:ro])")
	f.StringArrayVar(&rf.mounts, "mount", nil, "Attach a filesystem mount to the container")
	f.StringArrayVar(&rf.tmpfs, "tmpfs", nil, "Mount a tmpfs directory")
	f.BoolVar(&rf.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	f.StringVarP(&rf.memory, "memory", "m", "", "Memory limit")
	f.StringVar(&rf.memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	f.Float64Var(&rf.cpus, "cpus", 0, "Number of CPUs")
	f.Int64Var(&rf.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	f.StringArrayVar(&rf.ulimits, "ulimit", nil, "Ulimit options (NAME=SOFT[:HARD])")
	f.StringArrayVar(&rf.securityOpts, "security-opt", nil, "Security Options")
	f.StringVar(&rf.shmSize, "shm-size", "", "Size of /dev/shm")
	f.StringArrayVar(&rf.sysctls, "sysctl", nil, "Sysctl options")
	f.BoolP("help", "", false, "Print usage") // -h is --hostname, as in Docker
}

// createOptions turns flags and arguments into engine options, validating
// what Docker's CLI validates before any request.
func (rf *runFlags) createOptions(cmd *cobra.Command, args []string) (engine.CreateOptions, error) {
	opts := engine.CreateOptions{Name: rf.name, Image: args[0], AutoRemove: rf.rm, Pull: rf.pull}
	switch rf.pull {
	case "always", "missing", "never":
	default:
		return opts, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\": %w", rf.pull, errdefs.ErrInvalidArgument)
	}
	env, err := cli.ReadEnv(rf.envFiles, rf.env)
	if err != nil {
		return opts, err
	}
	r := runtime.RunOptions{
		Cmd: args[1:], Env: env, User: rf.user, WorkingDir: rf.workdir, Hostname: rf.hostname,
		Tty: rf.tty, OpenStdin: rf.interactive, StdinOnce: rf.interactive && !rf.detach, ReadOnlyRootfs: rf.readOnly, Privileged: rf.privileged,
		CapAdd: rf.capAdd, CapDrop: rf.capDrop, Devices: rf.devices,
		AttachStdin: rf.interactive && !rf.detach, AttachStdout: !rf.detach, AttachStderr: !rf.detach,
	}
	if cmd.Flags().Changed("entrypoint") {
		r.EntrypointSet = true
		if rf.entrypoint != "" {
			r.Entrypoint = []string{rf.entrypoint}
		}
	}
	if err := rf.resourceOptions(&r); err != nil {
		return opts, err
	}
	opts.Network = engine.NetworkRequest{
		NetworkSettings: engine.NetworkSettings{
			Mode: rf.network, IP: rf.ip, Aliases: rf.aliases,
			DNS: rf.dns, DNSSearch: rf.dnsSearch, DNSOptions: rf.dnsOptions, ExtraHosts: rf.addHosts,
		},
		Publish: rf.publish, PublishAll: rf.publishAll, Expose: rf.expose,
	}
	opts.Run = r
	opts.Progress = os.Stderr
	if opts.Restart, err = engine.ParseRestartPolicy(rf.restart); err != nil {
		return opts, err
	}
	opts.StopSignal = rf.stopSignal
	if cmd.Flags().Changed("stop-timeout") {
		opts.StopTimeout = &rf.stopTimeout
	}
	if len(rf.labels) > 0 {
		opts.Labels = map[string]string{}
		for _, l := range rf.labels {
			k, v, _ := strings.Cut(l, "=")
			opts.Labels[k] = v
		}
	}
	err = rf.validate(cmd, &opts) // validate.go: log, stop signal, expose
	return opts, err
}

// runContainer creates and starts the container in the foreground and
// returns the exit code berth should exit with: the container's, or 125
// (engine error), 126/127 (command cannot run / not found), as Docker.
//
// Signals are caught from the start (see SignalProxy): the engine's work
// is never cancelled half-way. A SIGINT or SIGTERM that arrives before the
// container is started leaves it unstarted (removed with --rm) and berth
// exits 130 or 143; later ones reach the container.
func runContainer(cmd *cobra.Command, g *cli.Globals, rf *runFlags, args []string) (int, error) {
	sigs := CatchSignals()
	defer sigs.Stop()
	// main's context ends at the first SIGINT/SIGTERM; what is made here
	// must be finished (or undone) whatever arrives.
	ctx := context.WithoutCancel(cmd.Context())
	if rf.tty && rf.interactive && !rf.detach && !term.IsTerminal(int(os.Stdin.Fd())) {
		return 1, fmt.Errorf("the input device is not a TTY")
	}
	opts, err := rf.createOptions(cmd, args)
	if err != nil {
		return 125, err
	}
	if _, err := tty.DetachKeys(rf.detachKeys); err != nil && rf.tty && !rf.detach {
		return 125, err
	}
	e, err := g.Open(ctx)
	if err != nil {
		return 125, err
	}
	defer e.Close()
	c, err := e.Create(ctx, opts)
	if err != nil {
		return 125, err
	}
	if sig, ok := sigs.Interrupted(); ok {
		return 128 + int(sig), abandon(ctx, e, c.ID, rf.rm)
	}
	if rf.detach {
		if err := e.StartDetached(ctx, c.ID); err != nil {
			return startCode(err), err
		}
		fmt.Fprintln(cmd.OutOrStdout(), c.ID)
		return 0, nil
	}
	if rf.tty {
		// Under the monitor, attached: the detach keys leave it running.
		// tty.Run relays signals itself and ends at main's context.
		sigs.Stop()
		code, err := tty.Run(cmd.Context(), e, c.ID, tty.Options{Stdin: rf.interactive, DetachKeys: rf.detachKeys})
		if err != nil {
			return startCode(err), err
		}
		return code, nil
	}
	stdio := runtime.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
	if rf.interactive {
		stdio.Stdin = os.Stdin
	}
	p, err := e.Start(ctx, c.ID, stdio)
	if err != nil {
		return startCode(err), err
	}
	sigs.Forward(p.Signal) // what arrived during the start, then the rest
	code, err := p.Wait(ctx)
	if err != nil {
		return startCode(err), err
	}
	return code, nil
}

// startCode is the exit code of a failed start: 127 when the command is
// not found, 126 when it cannot be executed, else 125 (Docker's).
func startCode(err error) int {
	switch {
	case errors.Is(err, runtime.ErrCommandNotFound):
		return 127
	case errors.Is(err, runtime.ErrCommandNotExecutable):
		return 126
	}
	return 125
}

// NewCreateCmd is `berth create`: create a new container.
func NewCreateCmd(g *cli.Globals) *cobra.Command {
	var rf runFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := rf.createOptions(cmd, args)
			if err != nil {
				return cli.ExitError{Code: 125, Err: err}
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return cli.ExitError{Code: 125, Err: err}
			}
			defer e.Close()
			c, err := e.Create(cmd.Context(), opts)
			if err != nil {
				return cli.ExitError{Code: 125, Err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}
