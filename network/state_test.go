package network

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStateFiles: networks live in state.json, endpoints in
// endpoints.json; an endpoint-only change leaves state.json alone; a torn
// endpoints.json reads as no endpoint; a state.json of an older berth
// that still holds endpoints is read, and the next save moves them out.
func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	m := &Manager{dir: dir}
	ctx := context.Background()
	stateInfo := func() os.FileInfo {
		fi, err := os.Stat(filepath.Join(dir, stateFile))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	readMap := func(name string) map[string]json.RawMessage {
		var v map[string]json.RawMessage
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}

	if err := m.txn(ctx, func(st *state, _ func() error) error {
		st.Networks["n1"] = &netRecord{Network: Network{ID: "n1", Name: "one"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := stateInfo()
	time.Sleep(10 * time.Millisecond)
	if err := m.txn(ctx, func(st *state, _ func() error) error {
		st.Endpoints["c1/n1"] = &epRecord{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if after := stateInfo(); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Error("an endpoint-only change rewrote state.json")
	}
	if s := readMap(stateFile); s["endpoints"] != nil || s["networks"] == nil {
		t.Errorf("state.json = %v, want networks only", s)
	}
	if eps := readMap(endpointsFile); len(eps) != 1 || eps["c1/n1"] == nil {
		t.Errorf("endpoints.json = %v", eps)
	}

	// A torn endpoints.json (a power loss) holds no endpoint.
	if err := os.WriteFile(filepath.Join(dir, endpointsFile), []byte(`{"c1/n1": {"Add`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.read(ctx, func(st *state) error {
		if len(st.Endpoints) != 0 || st.Networks["n1"] == nil {
			t.Errorf("after a torn endpoints.json: %d endpoints, networks %v", len(st.Endpoints), st.Networks)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// An older berth's state.json with endpoints and no endpoints.json.
	os.Remove(filepath.Join(dir, endpointsFile))
	old := `{"networks":{"n1":{"ID":"n1","Name":"one"}},"endpoints":{"c2/n1":{}}}`
	if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.txn(ctx, func(st *state, _ func() error) error {
		if st.Endpoints["c2/n1"] == nil {
			t.Error("the older state.json's endpoint was not read")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := readMap(stateFile); s["endpoints"] != nil {
		t.Errorf("state.json still holds endpoints: %s", s["endpoints"])
	}
	if eps := readMap(endpointsFile); eps["c2/n1"] == nil {
		t.Errorf("endpoints.json = %v, want the moved endpoint", eps)
	}
}
