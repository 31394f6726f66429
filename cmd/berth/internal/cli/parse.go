package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/containerd/errdefs"
)

// ParseTime reads Docker's --since/--until values as the docker CLI's
// GetTimestamp does: a duration before now ("42m"); RFC 3339 down to the
// hour or the day ("2026-11-30T14", "2026-11-30"), with a zone or in
// local time without one; or a Unix timestamp with optional fraction
// ("0" is the Unix epoch, not a zero duration).
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && s != "0" {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
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
// Files are read as the docker CLI reads them (see envFileLines). Errors
// are errdefs.ErrInvalidArgument.
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
		lines, err := envFileLines(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			add(l)
		}
	}
	for _, v := range vals {
		if strings.HasPrefix(v, "=") {
			return nil, fmt.Errorf("invalid environment variable: %s: %w", v, errdefs.ErrInvalidArgument)
		}
		add(v)
	}
	return out, nil
}

// envFileLines reads an --env-file with the docker CLI's rules: a UTF-8
// BOM is dropped, leading whitespace is trimmed, empty lines and lines
// starting with # are skipped, and trailing whitespace belongs to the
// value. A variable name that is empty or contains a space or tab is an
// error ("variable 'C ' contains whitespaces"), as is invalid UTF-8.
func envFileLines(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: no such file or directory: %w", path, errdefs.ErrInvalidArgument)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d of %s: %w", n, path, errdefs.ErrInvalidArgument)
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, _ := strings.Cut(line, "=")
		switch {
		case key == "":
			return nil, fmt.Errorf("no variable name on line '%s': %w", line, errdefs.ErrInvalidArgument)
		case strings.ContainsAny(key, " \t"):
			return nil, fmt.Errorf("variable '%s' contains whitespaces: %w", key, errdefs.ErrInvalidArgument)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// KeyValues parses repeated KEY=VALUE flag values (a bare KEY means value
// "") into a map, as Docker's --label and --opt; nil for none. Errors:
// errdefs.ErrInvalidArgument for an empty key, naming --flag.
func KeyValues(kvs []string, flag string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid --%s %q: empty key: %w", flag, kv, errdefs.ErrInvalidArgument)
		}
		out[k] = v
	}
	return out, nil
}
