package convert

import (
	"testing"

	networktypes "github.com/moby/moby/api/types/network"
)

func mustFilters(t *testing.T, v string) Filters {
	t.Helper()
	f, err := ParseFilters(v)
	if err != nil {
		t.Fatalf("ParseFilters(%s): %v", v, err)
	}
	return f
}

func TestMatchNetwork(t *testing.T) {
	n := networktypes.Inspect{Network: networktypes.Network{Name: "appnet", ID: "9a8b7c", Driver: "bridge", Labels: map[string]string{"a": "b"}}}
	for filters, want := range map[string]bool{
		``: true, `{"name":["appnet"]}`: true, `{"id":["9a8"]}`: true, `{"id":["a8b"]}`: true, `{"id":["^a8b"]}`: false,
		`{"driver":["host"]}`: false, `{"label":["a=b"]}`: true, `{"label":["c"]}`: false,
	} {
		if got := mustFilters(t, filters).MatchNetwork(n); got != want {
			t.Errorf("%s: %v, want %v", filters, got, want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.45", "1.45", 0}, {"1.44", "1.45", -1}, {"1.50", "1.9", 1}, {"2.0", "1.50", 1}} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
