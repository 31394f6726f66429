package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// ParseTime reads Docker's --since/--until values: RFC 3339 (with or
// without fractional seconds or zone), a Unix timestamp, or a duration
// before now ("42m").
func ParseTime(s string) (time.Time, error) {
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

// ReadEnv merges --env-file files and -e values in Docker's order; a bare
// KEY takes its value from berth's own environment and is dropped if unset.
func ReadEnv(files, vals []string) ([]string, error) {
	var out []string
	add := func(kv string) {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		} else if v, ok := os.LookupEnv(kv); ok {
			out = append(out, kv+"="+v)
		}
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("open %s: no such file or directory: %w", f, errdefs.ErrInvalidArgument)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimLeft(sc.Text(), " \t")
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			add(line)
		}
		fh.Close()
	}
	for _, v := range vals {
		if strings.HasPrefix(v, "=") {
			return nil, fmt.Errorf("invalid environment variable: %s: %w", v, errdefs.ErrInvalidArgument)
		}
		add(v)
	}
	return out, nil
}
