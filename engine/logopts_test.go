package engine

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseLogConfig(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want LogLimits
		err  string // "" for success
	}{
		{nil, LogLimits{MaxFiles: 1}, ""},
		{map[string]string{"max-size": "10k"}, LogLimits{MaxSize: 10000, MaxFiles: 1}, ""},
		{map[string]string{"max-size": "1m", "max-file": "3"}, LogLimits{MaxSize: 1000000, MaxFiles: 3}, ""},
		{map[string]string{"max-size": "2MB"}, LogLimits{MaxSize: 2000000, MaxFiles: 1}, ""},
		{map[string]string{"max-file": "2", "compress": "false"}, LogLimits{MaxFiles: 2}, ""},
		{map[string]string{"max-size": "lots"}, LogLimits{}, "invalid size: 'lots'"},
		{map[string]string{"max-size": "0"}, LogLimits{}, "max-size must be a positive number"},
		{map[string]string{"max-file": "0"}, LogLimits{}, "max-file cannot be less than 1"},
		{map[string]string{"max-file": "x"}, LogLimits{}, `parsing "x": invalid syntax`},
		{map[string]string{"compress": "true"}, LogLimits{}, "log opt 'compress' is not supported"},
		{map[string]string{"labels": "a"}, LogLimits{}, "log opt 'labels' is not supported"},
		{map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}, LogLimits{MaxFiles: 1}, ""},
		{map[string]string{"mode": "blocking"}, LogLimits{MaxFiles: 1}, ""},
		{map[string]string{"mode": ""}, LogLimits{MaxFiles: 1}, ""},
		{map[string]string{"mode": "lossy"}, LogLimits{}, "logging mode not supported: lossy"},
		{map[string]string{"max-buffer-size": "4m"}, LogLimits{}, "only supported with 'mode=non-blocking'"},
		{map[string]string{"syslog-address": "udp://127.0.0.1:1"}, LogLimits{}, "unknown log opt 'syslog-address' for json-file log driver"},
	} {
		got, err := ParseLogConfig("", tc.opts)
		if tc.err != "" {
			if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q (invalid argument)", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v, %v; want %+v", tc.opts, got, err, tc.want)
		}
	}
}

func TestParseLogConfigDriver(t *testing.T) {
	for _, d := range []string{"", "json-file", "k8s-file", "none"} {
		if _, err := ParseLogConfig(d, nil); err != nil {
			t.Errorf("driver %q: %v", d, err)
		}
	}
	if l, err := ParseLogConfig("none", map[string]string{"foo": "1", "max-file": "x"}); err != nil || l != (LogLimits{MaxFiles: 1}) {
		t.Errorf("driver none: %+v, %v; want its options unchecked and unused", l, err)
	}
	for _, d := range []string{"syslog", "local", "bogus"} {
		if _, err := ParseLogConfig(d, map[string]string{"syslog-address": "x"}); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "log driver \""+d+"\" is not supported") {
			t.Errorf("driver %q: %v, want the driver refused first", d, err)
		}
	}
}

// TestParseLogTail: dockerd reads a tail that is not a whole number ≥ 0 as
// "all".
func TestParseLogTail(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "3": 3, "all": -1, "": -1, "-2": -1, "abc": -1, "1.5": -1} {
		if got := ParseLogTail(in); got != want {
			t.Errorf("ParseLogTail(%q) = %d, want %d", in, got, want)
		}
	}
}
