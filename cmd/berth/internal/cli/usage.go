package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// UsageError is a bad command line: an unknown or malformed flag, a
// wrong number of arguments, an unknown verb. main prints Msg, then the
// Hint lines, and exits with Code, as the docker CLI (28) does: 125 for
// flag errors (its cli.StatusError from FlagErrorFunc), 1 for argument
// and verb errors (plain errors from its Args validators).
type UsageError struct {
	Code    int
	Msg     string // one line, without the hint
	Command string // the command path, "berth run"
	Usage   string // the usage line, "berth run [OPTIONS] IMAGE ..."; "" for none
	See     bool   // the hint says "See" rather than "Run" (Docker's "requires at least N")
}

func (e UsageError) Error() string { return e.Msg }

// Hint is what main prints after Msg, as Docker 28 does: a blank line,
// "Usage:  USAGE" and another blank line when Usage is set, then "Run
// 'COMMAND --help' for more information" ("See ..." when See; no final
// newline).
func (e UsageError) Hint() string {
	h := "\n"
	if e.Usage != "" {
		h += "Usage:  " + e.Usage + "\n\n"
	}
	verb := "Run"
	if e.See {
		verb = "See"
	}
	return h + fmt.Sprintf("%s '%s --help' for more information", verb, e.Command)
}

// useLine is cmd's usage line as Docker prints it in a usage error: the
// parent's command path and cmd's Use (no "[flags]"); for a group, whose
// Use ends in COMMAND, only its command path ("docker network").
func useLine(cmd *cobra.Command) string {
	if cmd.HasSubCommands() && cmd.HasParent() {
		return cmd.CommandPath()
	}
	if !cmd.HasParent() {
		return cmd.Use
	}
	return cmd.Parent().CommandPath() + " " + cmd.Use
}

// FlagError is the root command's flag error function (cobra's
// SetFlagErrorFunc, inherited by every verb): pflag's message ("unknown
// flag: --bogus", "invalid argument ...") as a UsageError with Code 125.
func FlagError(cmd *cobra.Command, err error) error {
	return UsageError{Code: 125, Msg: err.Error(), Command: cmd.CommandPath(), Usage: useLine(cmd)}
}

// maxProbe bounds the argument counts DockerArgs tries on a validator; a
// validator that accepts maxProbe arguments is taken as unbounded.
const maxProbe = 8

// DockerArgs rewrites the argument validators of root and every command
// under it so that a wrong argument count gives Docker's message ("berth:
// 'berth logs' requires 1 argument", "... requires at least 1 argument",
// "... accepts no arguments") as a UsageError with Code 1, and an unknown
// verb gives "berth: unknown command: berth VERB". The accepted counts are
// found by trying the command's own validator (cobra.ExactArgs, RangeArgs
// and the like look only at the count), so verbs keep declaring Args the
// usual cobra way.
func DockerArgs(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		orig := c.Args
		if orig == nil {
			if !c.HasSubCommands() {
				return // cobra's default for a leaf: any arguments
			}
			orig = cobra.NoArgs
		}
		if c.HasSubCommands() && !c.Runnable() {
			// Cobra would print a group's help before checking its
			// arguments; Docker's groups show help only when called bare.
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		c.Args = func(cmd *cobra.Command, args []string) error {
			if orig(cmd, args) == nil {
				return nil
			}
			if cmd.HasSubCommands() && len(args) > 0 {
				// A group (`berth network bogus`) or the root: no verb of
				// that name. Docker shows a group's usage line, not the root's.
				ue := UsageError{Code: 1, Msg: fmt.Sprintf("%s: unknown command: %s %s", cmd.Root().Name(), cmd.CommandPath(), args[0]), Command: cmd.CommandPath()}
				if cmd.HasParent() {
					ue.Usage = useLine(cmd)
				}
				return ue
			}
			if len(args) <= maxProbe && acceptsCount(cmd, orig, len(args)) {
				return orig(cmd, args) // the validator looks at more than the count
			}
			a := arity(cmd, orig)
			// Docker's RequiresMinArgs alone ends its hint in "See ...".
			see := strings.HasPrefix(a, "requires at least") && !strings.Contains(a, "at most")
			return UsageError{Code: 1, Msg: fmt.Sprintf("%s: '%s' %s", cmd.Root().Name(), cmd.CommandPath(), a), Command: cmd.CommandPath(), Usage: useLine(cmd), See: see}
		}
	}
	walk(root)
}

// acceptsCount reports whether v accepts n placeholder arguments.
func acceptsCount(cmd *cobra.Command, v cobra.PositionalArgs, n int) bool {
	args := make([]string, n)
	for i := range args {
		args[i] = "x"
	}
	return v(cmd, args) == nil
}

// arity phrases the argument counts v accepts as Docker does.
func arity(cmd *cobra.Command, v cobra.PositionalArgs) string {
	lo, hi := -1, -1
	for n := 0; n <= maxProbe; n++ {
		if acceptsCount(cmd, v, n) {
			if lo < 0 {
				lo = n
			}
			hi = n
		}
	}
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case lo < 0:
		return "was given arguments it does not accept"
	case hi == 0:
		return "accepts no arguments"
	case hi == maxProbe && lo > 0:
		return "requires at least " + plural(lo)
	case hi == maxProbe:
		return "accepts any number of arguments" // not reached: such a validator never fails on a count
	case lo == hi:
		return "requires " + plural(lo)
	case lo == 0:
		return "requires at most " + plural(hi)
	}
	return fmt.Sprintf("requires at least %d and at most %s", lo, plural(hi))
}
