// Package cli holds what berth's verb packages share: the global flags
// and how to open the engine with them, the exit-code error, one-line
// error messages, and the loops and prompts of Docker's multi-object
// verbs. The verbs themselves live in the sibling packages (images,
// containers, run, network); cmd/berth wires them into the root command.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/internal/errtext"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// Globals are the flags every verb shares.
type Globals struct {
	Opts     engine.Options
	Insecure []string // --insecure-registry
}

// Open opens the engine with the global flags.
func (g *Globals) Open(ctx context.Context) (*engine.Engine, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("berth needs root for now (rootless mode is not implemented yet): %w", errdefs.ErrPermissionDenied)
	}
	o := g.Opts
	o.InsecureRegistries = g.Insecure
	return engine.Open(ctx, o)
}

// ExitError carries an exit code chosen by a command (a container's
// status, 125 for an engine error in run) up to main.
type ExitError struct {
	Code int
	Err  error // printed when non-nil
}

func (e ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Message is err's text on one line without an errdefs category's
// suffix (internal/errtext), as the CLI prints it.
func Message(err error) string { return errtext.OneLine(err) }

// PrintError prints err as Docker's CLI does for one failed object of
// many: "Error: MESSAGE" on stderr.
func PrintError(err error) { fmt.Fprintln(os.Stderr, "Error:", Message(err)) }

// WithEngine wraps a verb's body with opening and closing the engine.
func WithEngine(g *Globals, fn func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e, err := g.Open(cmd.Context())
		if err != nil {
			return err
		}
		defer e.Close()
		return fn(cmd.Context(), e, cmd, args)
	}
}

// EachArg calls fn for every argument, as Docker's multi-object verbs
// do: a failure prints an error line (PrintError) and the others still
// run; any failure makes the result ExitError{Code: 1}.
func EachArg(args []string, fn func(arg string) error) error {
	var failed error
	for _, a := range args {
		if err := fn(a); err != nil {
			PrintError(err)
			failed = ExitError{Code: 1}
		}
	}
	return failed
}

// EachContainer is EachArg that prints each argument on success (`stop`,
// `rm`, `pause` ...).
func EachContainer(cmd *cobra.Command, args []string, fn func(ref string) error) error {
	return EachArg(args, func(ref string) error {
		if err := fn(ref); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
		return nil
	})
}

// Renamed gives cmd another usage line and aliases, for the management
// groups (`image ls` for `images`).
func Renamed(cmd *cobra.Command, use string, aliases ...string) *cobra.Command {
	cmd.Use = use
	cmd.Aliases = aliases
	return cmd
}

// Confirm asks question on cmd's output and reports whether the answer
// read from its input is y or yes.
func Confirm(cmd *cobra.Command, question string) bool {
	fmt.Fprint(cmd.OutOrStdout(), question+" [y/N] ")
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

// ConfirmPrune is the prune verbs' question: true at once with force
// (-f), else the warning then Docker's "Are you sure you want to
// continue? [y/N]" and the user's answer.
func ConfirmPrune(cmd *cobra.Command, force bool, warning string) bool {
	return force || Confirm(cmd, warning+"\nAre you sure you want to continue?")
}

// Interrupted returns the error a command gives when a signal cancelled
// ctx: nothing printed and exit status 128+signal (130 for Ctrl-C, 143 for
// SIGTERM), as the docker CLI does. It returns nil when ctx was not
// cancelled by a signal.
func Interrupted(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil || cause == context.Canceled {
		return nil
	}
	// os/signal.NotifyContext's cause reads "<signal> signal received"
	// (and matches context.Canceled, hence the identity test above).
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		if cause.Error() == s.String()+" signal received" {
			return ExitError{Code: 128 + int(s)}
		}
	}
	return nil
}

// ForwardSignals relays the signals a user sends berth to a process
// (Docker's --sig-proxy); the returned func stops it.
func ForwardSignals(send func(syscall.Signal) error) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		for s := range sigs {
			send(s.(syscall.Signal))
		}
	}()
	return func() { signal.Stop(sigs); close(sigs) }
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// OutputFile opens path for writing ("" or "-": stdout, which must not be
// a terminal). The returned function closes it and reports the close
// error; on failure a partial file is removed.
func OutputFile(path string) (io.Writer, func(failed bool) error, error) {
	if path == "" || path == "-" {
		if IsTerminal(os.Stdout) {
			return nil, nil, errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return os.Stdout, func(bool) error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to save: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	return bw, func(failed bool) error {
		err := bw.Flush()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if failed || err != nil {
			os.Remove(path)
		}
		return err
	}, nil
}

// WriteOutput is the body of the verbs that write an archive to -o
// (path; "" or "-" for stdout, see OutputFile): it opens the output,
// then the engine, and has write fill it; on failure a partial file is
// removed.
func WriteOutput(g *Globals, path *string, write func(ctx context.Context, e *engine.Engine, args []string, w io.Writer) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		w, done, err := OutputFile(*path)
		if err != nil {
			return err
		}
		e, err := g.Open(cmd.Context())
		if err != nil {
			done(true)
			return err
		}
		defer e.Close()
		err = write(cmd.Context(), e, args, w)
		if cerr := done(err != nil); err == nil {
			err = cerr
		}
		return err
	}
}

// Group returns root's subcommand group name (such as "system"), adding
// it with the given short help when no verb has made it yet: several
// packages add verbs to one group.
func Group(root *cobra.Command, name, short string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	grp := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs}
	root.AddCommand(grp)
	return grp
}
