package run

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// validate checks and completes what createOptions built from the flags
// that Docker's CLI or daemon validate at create: --log-driver and
// --log-opt (into opts.LogOpts), --stop-signal and --expose ranges
// (expanded to one port each, as the docker CLI sends them). Errors are
// errdefs.ErrInvalidArgument, one line each; `run` and `create` exit 125
// with them.
func (rf *runFlags) validate(cmd *cobra.Command, opts *engine.CreateOptions) error {
	if f := cmd.Flags().Lookup("log-driver"); f != nil && f.Changed {
		opts.LogDriver = f.Value.String() // checked by engine.Create
	}
	var err error
	if opts.LogOpts, err = logOpts(rf.logOpts); err != nil {
		return err
	}
	if err := runtime.ValidateStopSignal(opts.StopSignal); err != nil {
		return err
	}
	opts.Network.Expose, err = expandExpose(rf.expose)
	return err
}

// registerValidated adds the flags validate reads: --log-opt and
// --log-driver.
func (rf *runFlags) registerValidated(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&rf.logOpts, "log-opt", nil, "Log driver options (max-size, max-file)")
	f.String("log-driver", "json-file", "Logging driver for the container ("+strings.Join(engine.LogDrivers, ", ")+")")
}

// logOpts reads --log-opt KEY=VALUE values (engine.Create checks them as
// the daemon does); a value without "=" is refused. nil when there are
// none.
func logOpts(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	kv := map[string]string{}
	for _, o := range values {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("invalid log opt %q: want KEY=VALUE: %w", o, errdefs.ErrInvalidArgument)
		}
		kv[k] = v
	}
	return kv, nil
}

// expandExpose turns --expose values, PORT[/PROTO] or a range
// START-END[/PROTO], into one "PORT/PROTO" entry per port, as the docker
// CLI does before it sends Config.ExposedPorts.
func expandExpose(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		bad := func(why string) error {
			return fmt.Errorf("invalid range format for --expose: %s, error: %s: %w", v, why, errdefs.ErrInvalidArgument)
		}
		if strings.Contains(v, ":") {
			return nil, bad("a host port cannot be exposed")
		}
		bs, err := network.ParsePortSpecs([]string{v}, nil, false)
		if err != nil {
			return nil, bad("want PORT[/PROTO] or START-END[/PROTO]")
		}
		for _, b := range bs {
			out = append(out, strconv.Itoa(int(b.ContainerPort))+"/"+b.Proto)
		}
	}
	return out, nil
}
