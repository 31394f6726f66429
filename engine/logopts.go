package engine

import (
	"fmt"
	"strconv"

	"github.com/containerd/errdefs"
	"github.com/docker/go-units"
)

// LogLimits bound a container's log as Docker's json-file driver does:
// once the log file holds MaxSize bytes or more (0: unbounded) it is
// rotated before the next entry; MaxFiles (≥ 1; 0 means 1) is how many
// files are kept, the current one included (PATH, PATH.1 … PATH.N-1).
type LogLimits struct {
	MaxSize  int64
	MaxFiles int
}

// ParseLogOpts reads Docker's --log-opt / HostConfig.LogConfig.Config
// options for the json-file driver: max-size (a size with Docker's
// decimal units: "10k" is 10,000 bytes, "1m" 1,000,000), max-file (a
// whole number ≥ 1) and compress ("false" only: rotated files are kept
// uncompressed). The other json-file options (labels, env, tag and
// their -regex forms, which add attributes to each entry) are refused
// rather than ignored, and unknown keys with the daemon's message.
// Errors are errdefs.ErrInvalidArgument, one line each, worded as
// dockerd's.
func ParseLogOpts(opts map[string]string) (LogLimits, error) {
	var l LogLimits
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil {
				return l, fmt.Errorf("%s: %w", err.Error(), errdefs.ErrInvalidArgument)
			}
			if n <= 0 {
				return l, fmt.Errorf("max-size must be a positive number: %w", errdefs.ErrInvalidArgument)
			}
			l.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return l, fmt.Errorf("strconv.Atoi: parsing %q: invalid syntax: %w", v, errdefs.ErrInvalidArgument)
			}
			if n < 1 {
				return l, fmt.Errorf("max-file cannot be less than 1: %w", errdefs.ErrInvalidArgument)
			}
			l.MaxFiles = n
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return l, fmt.Errorf("strconv.ParseBool: parsing %q: invalid syntax: %w", v, errdefs.ErrInvalidArgument)
			}
			if b {
				return l, fmt.Errorf("log opt 'compress' is not supported by berth: rotated log files are kept uncompressed: %w", errdefs.ErrInvalidArgument)
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
			return l, fmt.Errorf("log opt '%s' is not supported by berth's json-file log (supported: max-size, max-file): %w", k, errdefs.ErrInvalidArgument)
		default:
			return l, fmt.Errorf("unknown log opt '%s' for json-file log driver: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = 1
	}
	return l, nil
}
