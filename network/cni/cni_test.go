package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/pkg/version"
)

// fakeExec stands in for plugin executables: the plugins in have exist,
// "fail" fails ADD, every ADD returns one address on the sandbox
// interface; calls are logged as "COMMAND type".
type fakeExec struct {
	have  []string
	calls []string
}

func (f *fakeExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	var conf struct {
		Type       string          `json:"type"`
		PrevResult json.RawMessage `json:"prevResult"`
	}
	json.Unmarshal(stdin, &conf)
	cmd, ifName := "", ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			cmd = v
		}
		if v, ok := strings.CutPrefix(kv, "CNI_IFNAME="); ok {
			ifName = v
		}
	}
	call := cmd + " " + conf.Type
	if cmd == "DEL" && len(conf.PrevResult) > 0 {
		call += " prev"
	}
	f.calls = append(f.calls, call)
	switch {
	case cmd == "VERSION":
		return []byte(`{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}`), nil
	case cmd == "ADD" && conf.Type == "fail":
		return nil, fmt.Errorf("plugin fail: boom\nsecond line")
	case cmd == "ADD":
		return fmt.Appendf(nil, `{"cniVersion":"1.0.0","interfaces":[{"name":"br0"},{"name":%q,"mac":"aa:bb:cc:dd:ee:ff","sandbox":"/ns"}],
			"ips":[{"interface":0,"address":"10.9.0.1/24"},{"interface":1,"address":"10.9.0.7/24","gateway":"10.9.0.1"}]}`, ifName), nil
	}
	return nil, nil
}

func (f *fakeExec) FindInPath(plugin string, paths []string) (string, error) {
	if slices.Contains(f.have, plugin) {
		return "/fake/" + plugin, nil
	}
	return "", fmt.Errorf("failed to find plugin %q in path %v", plugin, paths)
}

func (f *fakeExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

func writeConf(t *testing.T, plugins ...string) string {
	t.Helper()
	var ps []string
	for _, p := range plugins {
		ps = append(ps, fmt.Sprintf(`{"type":%q}`, p))
	}
	path := filepath.Join(t.TempDir(), "n.conflist")
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"testnet","plugins":[%s]}`, strings.Join(ps, ","))
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	ctx := context.Background()
	fe := &fakeExec{have: []string{"bridge", "loopback"}}
	d := New(Options{CacheDir: t.TempDir(), Exec: fe, PluginDirs: []string{"/x"}})
	good := writeConf(t, "bridge", "loopback")
	dir := filepath.Dir(good)
	for name, opts := range map[string]map[string]string{
		"missing file":    {OptConfig: filepath.Join(dir, "none.conflist")},
		"unknown plugin":  {OptConfig: writeConf(t, "bridge", "nosuch")},
		"file and dir":    {OptConfig: good, OptConfDir: dir},
		"unknown option":  {OptConfig: good, "cni.colour": "red"},
		"name not in dir": {OptConfDir: dir, OptName: "other"},
	} {
		if _, err := d.Validate(ctx, network.CreateOptions{Name: "n", Options: opts}); !errdefs.IsInvalidArgument(err) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, opts := range map[string]map[string]string{
		"file":             {OptConfig: good},
		"dir and name":     {OptConfDir: dir, OptName: "testnet"},
		"dir, berth name":  {OptConfDir: dir},
		"other option too": {OptConfig: good, "com.example": "x"},
	} {
		netName := "n"
		if name == "dir, berth name" {
			netName = "testnet"
		}
		b, err := d.Validate(ctx, network.CreateOptions{Name: netName, Options: opts})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		_, list, err := parse(b)
		if err != nil || list.Name != "testnet" || len(list.Plugins) != 2 || !list.LoadOnlyInlinedPlugins {
			t.Errorf("%s: recorded %s: %v", name, b, err)
		}
	}
}

func TestAttachDetach(t *testing.T) {
	ctx := context.Background()
	fe := &fakeExec{have: []string{"bridge", "loopback", "fail"}}
	cache := t.TempDir()
	d := New(Options{CacheDir: cache, Exec: fe, PluginDirs: []string{"/x"}})
	cfg, err := d.Validate(ctx, network.CreateOptions{Name: "n", Options: map[string]string{OptConfig: writeConf(t, "bridge", "loopback")}})
	if err != nil {
		t.Fatal(err)
	}
	r := network.DriverRequest{Config: cfg, ContainerID: "c0ffee", NetnsPath: "/ns", IfName: "eth1"}
	fe.calls = nil
	res, err := d.Attach(ctx, r)
	if err != nil || res.Address.String() != "10.9.0.7/24" || res.Gateway.String() != "10.9.0.1" || res.MAC != "aa:bb:cc:dd:ee:ff" {
		t.Fatalf("attach: %+v %v", res, err)
	}
	if err := d.Detach(ctx, r); err != nil {
		t.Fatal(err)
	}
	// DEL runs last plugin first, with the result cached at ADD.
	want := []string{"ADD bridge", "ADD loopback", "DEL loopback prev", "DEL bridge prev"}
	if !slices.Equal(fe.calls, want) {
		t.Errorf("calls %v, want %v", fe.calls, want)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "results", "*")); len(left) != 0 {
		t.Errorf("cache left: %v", left)
	}

	// A failing ADD is followed by DEL of the whole list, and a plugin
	// that is gone is skipped by DEL.
	cfg, err = d.Validate(ctx, network.CreateOptions{Name: "n", Options: map[string]string{OptConfig: writeConf(t, "bridge", "fail", "loopback")}})
	if err != nil {
		t.Fatal(err)
	}
	r.Config = cfg
	fe.calls = nil
	if _, err := d.Attach(ctx, r); !errdefs.IsUnknown(err) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("failing ADD: %v", err)
	}
	want = []string{"ADD bridge", "ADD fail", "DEL loopback", "DEL fail", "DEL bridge"}
	if !slices.Equal(fe.calls, want) {
		t.Errorf("calls %v, want %v", fe.calls, want)
	}
	fe.have = []string{"bridge", "loopback"}
	fe.calls = nil
	if _, err := d.Attach(ctx, r); !errdefs.IsFailedPrecondition(err) || !strings.Contains(err.Error(), `"fail" not found`) {
		t.Fatalf("ADD with a plugin gone: %v", err)
	}
	want = []string{"ADD bridge", "DEL loopback", "DEL bridge"}
	if !slices.Equal(fe.calls, want) {
		t.Errorf("calls %v, want %v", fe.calls, want)
	}
}

// The driver checks the real plugins' VERSION answers when Debian's
// containernetworking-plugins are installed.
func TestValidateRealPlugins(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("containernetworking-plugins not installed")
	}
	d := New(Options{CacheDir: t.TempDir(), PluginDirs: []string{"/usr/lib/cni"}})
	ctx := context.Background()
	if _, err := d.Validate(ctx, network.CreateOptions{Name: "n", Options: map[string]string{OptConfig: writeConf(t, "bridge", "loopback")}}); err != nil {
		t.Errorf("bridge+loopback: %v", err)
	}
	p := filepath.Join(t.TempDir(), "v.conflist")
	os.WriteFile(p, []byte(`{"cniVersion":"9.9.9","name":"v","plugins":[{"type":"loopback"}]}`), 0o644)
	if _, err := d.Validate(ctx, network.CreateOptions{Name: "n", Options: map[string]string{OptConfig: p}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("unsupported cniVersion: %v", err)
	}
}
