package cli

import (
	"testing"
	"time"
)

// TestParseTime: Docker's --since/--until forms (the docker CLI's
// GetTimestamp), "0" being the Unix epoch.
func TestParseTime(t *testing.T) {
	local := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.Local)
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"0", time.Unix(0, 0)},
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.5", time.Unix(1700000000, 5e8)},
		{"2026-11-30T14:48:05.25Z", time.Date(2026, 11, 30, 14, 48, 5, 25e7, time.UTC)},
		{"2026-11-30T14:48+01:00", time.Date(2026, 11, 30, 13, 48, 0, 0, time.UTC)},
		{"2026-11-30T14Z", time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)},
		{"2026-11-30T14:48:05", local(2026, 11, 30, 14, 48, 5)},
		{"2026-11-30T14:48", local(2026, 11, 30, 14, 48, 0)},
		{"2026-11-30T14", local(2026, 11, 30, 14, 0, 0)},
		{"2026-11-30", local(2026, 11, 30, 0, 0, 0)},
	} {
		got, err := ParseTime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	before := time.Now()
	if got, err := ParseTime("1h"); err != nil || got.After(before.Add(-time.Hour+time.Second)) || got.Before(before.Add(-time.Hour-time.Second)) {
		t.Errorf(`ParseTime("1h") = %v, %v; want an hour ago`, got, err)
	}
	if _, err := ParseTime("yesterday"); err == nil {
		t.Error(`ParseTime("yesterday") succeeded`)
	}
}
