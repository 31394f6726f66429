// Package events is `berth events` (and `berth system events`): the
// engine's event log (package events) printed as the docker CLI prints
// GET /events. The window and filters are the API's (cli.ParseTime for
// the flags' values, api/convert for Docker's filters and message shape),
// so `berth events` and `docker events` against `berth system service`
// print the same lines.
package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/events"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// AddTo registers `events` on root and under its `system` group (made
// when root has none yet).
func AddTo(root *cobra.Command, g *cli.Globals) {
	root.AddCommand(NewEventsCmd(g))
	cli.Group(root, "system", "Manage Berth").AddCommand(NewEventsCmd(g))
}

// Options are `berth events`'s flags.
type Options struct {
	Since, Until string   // Docker's forms: RFC 3339, Unix seconds, a duration before now
	Filters      []string // KEY=VALUE, Docker's event filters (convert.Filters.MatchEvent)
	Format       string   // "" (Docker's line), "json" or a Go template over convert.EventMessage
}

// NewEventsCmd is `berth events`: the events from --since (default: now
// on) until --until, or until interrupted when there is no --until, as
// `docker events`. A signal ends it with status 128+signal, as the
// docker CLI.
func NewEventsCmd(g *cli.Globals) *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, _ []string) error {
			err := Run(ctx, e.Events(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if ie := cli.Interrupted(ctx); ie != nil {
				return ie
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.Since, "since", "", "Show all events created since timestamp")
	f.StringVar(&o.Until, "until", "", "Stream events until this timestamp")
	f.VarP(filterValue{&o.Filters}, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&o.Format, "format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	return cmd
}

// Run prints log's events per o on out until o.Until, or until ctx ends
// when o.Until is empty. A bad time or filter, or since after until, is
// errdefs.ErrInvalidArgument; a bad template prints Docker's "Error
// parsing format: …" on errOut and is cli.ExitError{Code: 64}.
func Run(ctx context.Context, log *events.Log, o Options, out, errOut io.Writer) error {
	tmpl, err := Template(o.Format)
	if err != nil {
		fmt.Fprintln(errOut, "Error parsing format:", err)
		return cli.ExitError{Code: 64}
	}
	opts, err := window(o.Since, o.Until, time.Now())
	if err != nil {
		return err
	}
	f, err := convert.FilterArgs(o.Filters)
	if err != nil {
		return err
	}
	return log.Read(ctx, opts, func(ev events.Event) error {
		if !f.MatchEvent(ev) {
			return nil
		}
		return Print(out, convert.Event(ev), tmpl)
	})
}

// window is what to read for --since and --until, as GET /events: from
// since (now when empty) and following, up to until when given.
func window(since, until string, now time.Time) (events.ReadOptions, error) {
	opts := events.ReadOptions{Follow: true}
	var err error
	if opts.Since, err = cli.ParseTime(since); err != nil {
		return opts, err
	}
	if opts.Until, err = cli.ParseTime(until); err != nil {
		return opts, err
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
		return opts, fmt.Errorf("`since` time (%s) cannot be after `until` time (%s): %w", since, until, errdefs.ErrInvalidArgument)
	}
	if opts.Since.IsZero() {
		opts.Since = now
	}
	return opts, nil
}

// Template parses a --format value as the docker CLI: nil for "" (the
// default line), "json" for {{json .}}, else a Go template with Docker's
// functions, checked by executing it on an empty message (so that
// "{{.Bogus}}" fails before any event).
func Template(format string) (*template.Template, error) {
	if format == "" {
		return nil, nil
	}
	tmpl, err := output.ParseFormat(format)
	if err != nil {
		return nil, err
	}
	if err := tmpl.Execute(io.Discard, convert.EventMessage{}); err != nil {
		return nil, err
	}
	return tmpl, nil
}

// timeLayout is RFC 3339 with nanoseconds always nine digits wide, as
// the docker CLI prints event times.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Print writes m as one line (in one write): tmpl's output, or with a nil tmpl the
// docker CLI's default "TIME TYPE ACTION ID (k=v, …)" with the
// attributes sorted by key and left out when there are none.
func Print(out io.Writer, m convert.EventMessage, tmpl *template.Template) error {
	var b strings.Builder
	if tmpl != nil {
		if err := tmpl.Execute(&b, m); err != nil {
			return err
		}
		_, err := io.WriteString(out, b.String()+"\n")
		return err
	}
	if m.TimeNano != 0 {
		b.WriteString(time.Unix(0, m.TimeNano).Format(timeLayout) + " ")
	} else if m.Time != 0 {
		b.WriteString(time.Unix(m.Time, 0).Format(timeLayout) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + m.Actor.Attributes[k]
		}
		b.WriteString(" (" + strings.Join(keys, ", ") + ")")
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}

// filterValue is the repeatable --filter flag; a value that is not
// KEY=VALUE is a flag error (status 125), as the docker CLI's.
type filterValue struct{ list *[]string }

func (v filterValue) String() string { return "" }
func (v filterValue) Type() string   { return "filter" }
func (v filterValue) Set(s string) error {
	if _, err := convert.FilterArgs([]string{s}); err != nil {
		return errors.New(cli.Message(err))
	}
	*v.list = append(*v.list, s)
	return nil
}
