package convert

import (
	"testing"

	networktypes "github.com/moby/moby/api/types/network"
)

func TestMatchNetworkFilters(t *testing.T) {
	mk := func(name, driver string, containers int, labels map[string]string) networktypes.Inspect {
		n := networktypes.Inspect{Network: networktypes.Network{Name: name, ID: "abc123" + name, Driver: driver, Scope: "local", Labels: labels},
			Containers: map[string]networktypes.EndpointResource{}}
		for i := range containers {
			n.Containers[string(rune('a'+i))] = networktypes.EndpointResource{}
		}
		return n
	}
	nets := []networktypes.Inspect{
		mk("bridge", "bridge", 0, nil), mk("host", "host", 0, nil), mk("none", "null", 0, nil),
		mk("front-x", "bridge", 0, map[string]string{"tier": "front"}), mk("back-x", "bridge", 2, nil),
	}
	for _, c := range []struct {
		filters string
		want    string
	}{
		{`{"name":{"x":true}}`, "front-x,back-x"},
		{`{"name":{"^back":true}}`, "back-x"},
		{`{"name":{"[":true}}`, ""},
		{`{"type":{"custom":true}}`, "front-x,back-x"},
		{`{"type":{"builtin":true}}`, "bridge,host,none"},
		{`{"dangling":{"true":true}}`, "front-x"},
		{`{"dangling":{"0":true}}`, "bridge,host,none,back-x"},
		{`{"driver":{"null":true}}`, "none"},
		{`{"label":{"tier=front":true}}`, "front-x"},
		{`{"id":{"abc123b":true}}`, "bridge,back-x"},
		{`{"name":["host","none"]}`, "host,none"},
	} {
		f, err := ParseFilters(c.filters)
		if err == nil {
			err = f.CheckNetworkFilters()
		}
		if err != nil {
			t.Fatalf("%s: %v", c.filters, err)
		}
		var got []string
		for _, n := range nets {
			if f.MatchNetwork(n) {
				got = append(got, n.Name)
			}
		}
		if s := join(got); s != c.want {
			t.Errorf("%s: %q, want %q", c.filters, s, c.want)
		}
	}
	for _, bad := range []string{`{"odd":{"x":true}}`, `{"type":{"x":true}}`, `{"dangling":{"maybe":true}}`} {
		f, _ := ParseFilters(bad)
		if err := f.CheckNetworkFilters(); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}
