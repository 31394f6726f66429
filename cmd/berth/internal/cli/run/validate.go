package run

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/network"
	"github.com/berthproject/berth/runtime"
	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// Log drivers `run --log-driver` accepts. Berth's monitor always writes
// the container's output to one file in the CRI k8s-file format, which
// `logs` reads back; json-file (Docker's default, and what inspect
// reports) and k8s-file name that log. none is accepted so that Docker
// command lines run, but the log is still written and `logs` still works.
var logDrivers = []string{"json-file", "k8s-file", "none"}

// validate checks and completes what createOptions built from the flags
// that Docker's CLI or daemon validate at create: --log-driver and
// --log-opt (into opts.LogMaxSize), --stop-signal and --expose ranges
// (expanded to one port each, as the docker CLI sends them). Errors are
// errdefs.ErrInvalidArgument, one line each; `run` and `create` exit 125
// with them.
func (rf *runFlags) validate(cmd *cobra.Command, opts *engine.CreateOptions) error {
	if f := cmd.Flags().Lookup("log-driver"); f != nil && f.Changed {
		if d := f.Value.String(); !slices.Contains(logDrivers, d) {
			return fmt.Errorf("log driver %q is not supported: berth's monitor writes the k8s-file log (use %s): %w", d, strings.Join(logDrivers, ", "), errdefs.ErrInvalidArgument)
		}
	}
	n, err := logMaxSize(rf.logOpts)
	if err != nil {
		return err
	}
	opts.LogMaxSize = n
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
	f.StringArrayVar(&rf.logOpts, "log-opt", nil, "Log driver options (max-size)")
	f.String("log-driver", "json-file", "Logging driver for the container ("+strings.Join(logDrivers, ", ")+")")
}

// logMaxSize reads --log-opt KEY=VALUE values. Only max-size is
// supported (the monitor starts the log afresh when it reaches that many
// bytes); max-file and every other option are refused rather than
// ignored, since berth keeps one file and no rotated ones.
func logMaxSize(logOpts []string) (int64, error) {
	var size int64
	for _, o := range logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return 0, fmt.Errorf("invalid log opt %q: want KEY=VALUE: %w", o, errdefs.ErrInvalidArgument)
		}
		if k != "max-size" {
			return 0, fmt.Errorf("log opt '%s' is not supported by berth's k8s-file log (supported: max-size): %w", k, errdefs.ErrInvalidArgument)
		}
		n, err := units.RAMInBytes(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("invalid value for log-opt max-size: %s: %w", v, errdefs.ErrInvalidArgument)
		}
		size = n
	}
	return size, nil
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
