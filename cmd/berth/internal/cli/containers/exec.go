package containers

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/tty"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/runtime"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// NewExecCmd is `berth exec`: Docker's exit codes are the process's own,
// 126/127 when the command cannot run or is not found (126 for an unknown
// user too), 1 when the request fails (unknown or stopped container) and
// for any failure of a detached (-d) exec.
func NewExecCmd(g *cli.Globals) *cobra.Command {
	var opts engine.ExecOptions
	var env, envFiles []string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			var err error
			if opts.Env, err = cli.ReadEnv(envFiles, env); err != nil {
				return err
			}
			opts.Cmd = args[1:]
			code, err := execIn(ctx, e, args[0], opts)
			if err != nil {
				return cli.ExitError{Code: code, Err: err}
			}
			if code != 0 {
				return cli.ExitError{Code: code}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&opts.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&opts.Tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVarP(&opts.Detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	f.StringArrayVar(&envFiles, "env-file", nil, "Read in a file of environment variables")
	f.StringVarP(&opts.User, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	f.StringVarP(&opts.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

// execIn runs the exec and returns the exit code berth should exit with.
func execIn(ctx context.Context, e *engine.Engine, ref string, opts engine.ExecOptions) (int, error) {
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	if opts.Tty && opts.Interactive && !opts.Detach && !stdinTTY {
		return 1, errors.New("the input device is not a TTY")
	}
	stdio := engine.ExecIO{Stdout: os.Stdout, Stderr: os.Stderr}
	if opts.Interactive {
		stdio.Stdin = os.Stdin
	}
	// Forward signals to the process (Docker's --sig-proxy); with a
	// terminal they arrive as keystrokes instead.
	sigs := make(chan os.Signal, 8)
	if !opts.Detach && !opts.Tty {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}
	// The local terminal goes raw before the process starts: its first
	// output must not pass through a cooked terminal (nor early input be
	// echoed twice).
	if opts.Tty && opts.Interactive && !opts.Detach && stdinTTY {
		restore, err := tty.Raw(os.Stdin)
		if err != nil {
			return 1, err
		}
		defer restore()
	}
	p, err := e.Exec(ctx, ref, opts, stdio)
	if err != nil {
		if opts.Detach {
			return 1, err // docker exec -d reports the daemon's error: exit 1
		}
		return execCode(err), err
	}
	if opts.Detach {
		return 0, nil
	}
	if opts.Tty {
		out := os.Stdout
		if !cli.IsTerminal(out) {
			out = os.Stdin
		}
		stop := tty.WatchSize(out, p.Resize)
		defer stop()
	} else {
		go func() {
			for s := range sigs {
				p.Signal(s.(syscall.Signal))
			}
		}()
	}
	code, err := p.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 1, err
	}
	return code, nil
}

// execCode is the exit code of a failed exec: 127 when the command is not
// found, 126 when it cannot be executed, else 1 (the request failed).
func execCode(err error) int {
	switch {
	case errors.Is(err, runtime.ErrCommandNotFound):
		return 127
	case errors.Is(err, runtime.ErrCommandNotExecutable):
		return 126
	}
	return 1
}
