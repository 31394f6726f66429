package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

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

// LogDrivers are the log drivers a container may name (Docker's
// --log-driver, HostConfig.LogConfig.Type). Berth writes Docker's
// json-file log whichever is named: k8s-file is Podman's name for a file
// log, and none is accepted so that Docker command lines run (the log is
// still written and read back).
var LogDrivers = []string{"json-file", "k8s-file", "none"}

// ParseLogConfig checks a container's log driver ("" for json-file; one
// of LogDrivers) and reads its Docker --log-opt /
// HostConfig.LogConfig.Config options for the json-file driver: max-size
// (a size with Docker's decimal units: "10k" is 10,000 bytes, "1m"
// 1,000,000), max-file (a whole number ≥ 1), compress ("false" only:
// rotated files are kept uncompressed), and the options Docker takes for
// every driver, mode (blocking or non-blocking; berth's monitor never
// blocks the container on its log) and max-buffer-size (with
// mode=non-blocking). The other json-file options (labels, env, tag and
// their -regex forms, which add attributes to each entry) are refused
// rather than ignored, and unknown keys with the daemon's message.
// With driver none the options are not checked, as dockerd's; an empty
// mode is unset. Errors are errdefs.ErrInvalidArgument, one line each,
// worded as dockerd's.
func ParseLogConfig(driver string, opts map[string]string) (LogLimits, error) {
	var l LogLimits
	if driver != "" && !slices.Contains(LogDrivers, driver) {
		return l, fmt.Errorf("log driver %q is not supported: berth writes the json-file log (use %s): %w", driver, strings.Join(LogDrivers, ", "), errdefs.ErrInvalidArgument)
	}
	if driver == "none" {
		return LogLimits{MaxFiles: 1}, nil // dockerd checks no options for none
	}
	if m := opts["mode"]; m != "" && m != "blocking" && m != "non-blocking" {
		return l, fmt.Errorf("logger: logging mode not supported: %s: %w", m, errdefs.ErrInvalidArgument)
	}
	for k, v := range opts {
		switch k {
		case "mode":
		case "max-buffer-size":
			if opts["mode"] != "non-blocking" {
				return l, fmt.Errorf("logger: max-buffer-size option is only supported with 'mode=non-blocking': %w", errdefs.ErrInvalidArgument)
			}
			if _, err := units.RAMInBytes(v); err != nil {
				return l, fmt.Errorf("%s: %w", err.Error(), errdefs.ErrInvalidArgument)
			}
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

// ParseLogTail reads `docker logs --tail` / the API's tail parameter as
// dockerd does: a whole number ≥ 0 is that many last lines; "all", "",
// a negative number or anything that is not a number means every line
// (-1, LogOptions.Tail's "all").
func ParseLogTail(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
