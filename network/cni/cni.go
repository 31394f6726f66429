// Package cni is the network driver "cni": a berth network whose
// endpoints are made by the plugins of a CNI network configuration list
// (https://www.cni.dev/docs/spec/), run through the CNI project's own
// library, libcni. It implements network.Driver; package network keeps
// the network and endpoint records, the plugins keep their own state
// (addresses, links, rules).
//
// # Configuration
//
// `berth network create --driver cni NAME` takes the configuration from
// the driver options:
//
//	cni.config=FILE            a .conflist file (plugins in a NAME/ folder
//	                           next to it are loaded too, as libcni does)
//	cni.confdir=DIR            the .conflist (or legacy .conf) in DIR whose
//	                           "name" is cni.name (default DefaultConfDir)
//	cni.name=NAME              default: the berth network's name
//	cni.path=DIR[:DIR...]      where the plugin executables are (default:
//	                           the driver's Options.PluginDirs)
//
// The configuration is read, checked (it parses, every plugin executable
// is found and supports the configuration's cniVersion, which execs each
// plugin with VERSION) and recorded at create, with every plugin inlined:
// later edits of the file do not change the network, and DEL always sees
// the configuration ADD saw.
//
// # Endpoints
//
// Attach runs ADD of the whole list against the container's namespace
// (CNI_CONTAINERID the container ID, CNI_IFNAME eth0, eth1, ...); the
// result's first IPv4 address on that interface becomes the endpoint
// address. An ADD that fails part-way is followed by DEL of the whole
// list, as the spec asks. Detach runs DEL with the result libcni cached
// under Options.CacheDir at ADD (spec ≥ 0.4.0), so a DEL after a berth
// crash or a reboot of the runroot gets the same input a clean stop
// would. CHECK, GC and STATUS are not used.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/berthproject/berth/network"
	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/utils"
	"github.com/containernetworking/cni/pkg/version"
)

// DriverName is the name `network create --driver` uses for this driver.
const DriverName = "cni"

// Driver options (`network create -o KEY=VALUE`); see the package doc.
const (
	OptConfig  = "cni.config"
	OptConfDir = "cni.confdir"
	OptName    = "cni.name"
	OptPath    = "cni.path"
)

// DefaultConfDir is where cni.name is looked up without cni.confdir (the
// directory CNI runtimes conventionally use).
const DefaultConfDir = "/etc/cni/net.d"

// DefaultPluginDirs are searched for plugin executables when neither
// cni.path nor Options.PluginDirs nor $CNI_PATH says otherwise: Debian's
// containernetworking-plugins, then the upstream release's location.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// Options configure a Driver.
type Options struct {
	// PluginDirs are searched, in order, for plugin executables.
	// Default: $CNI_PATH (colon-separated) if set, else DefaultPluginDirs.
	PluginDirs []string
	// CacheDir is libcni's cache of ADD results, read by DEL; it belongs
	// under berth's runroot (e.g. RUNROOT/cni). Required.
	CacheDir string
	// Exec runs the plugins; nil execs them (their stderr is dropped:
	// errors come back on stdout, per the spec).
	Exec invoke.Exec
}

// Driver runs CNI plugins for berth endpoints. It holds no state of its
// own beyond libcni's cache; it is safe for concurrent use.
type Driver struct {
	dirs     []string
	cacheDir string
	exec     invoke.Exec
}

var _ network.Driver = (*Driver)(nil)

// New returns the cni driver.
func New(o Options) *Driver {
	dirs := o.PluginDirs
	if len(dirs) == 0 {
		if p := os.Getenv("CNI_PATH"); p != "" {
			dirs = splitPath(p)
		} else {
			dirs = DefaultPluginDirs
		}
	}
	ex := o.Exec
	if ex == nil {
		ex = &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: io.Discard}, PluginDecoder: version.PluginDecoder{}}
	}
	return &Driver{dirs: slices.Clone(dirs), cacheDir: o.CacheDir, exec: ex}
}

func splitPath(p string) []string {
	var out []string
	for _, d := range strings.Split(p, ":") {
		if d != "" {
			out = append(out, d)
		}
	}
	return out
}

// config is what the driver records with a network (network.Driver's
// config bytes).
type config struct {
	// ConfList is the configuration list with every plugin inlined.
	ConfList json.RawMessage `json:"confList"`
	// Path overrides the driver's plugin directories (cni.path).
	Path []string `json:"path,omitempty"`
}

// Validate reads and checks the configuration named by o.Options (see the
// package doc) and returns it for the network record. Every error is
// errdefs.ErrInvalidArgument: an unknown cni.* option, cni.config with
// cni.confdir, a missing or unparsable file, no configuration of that
// name, a network name CNI refuses, a plugin executable not found in the
// plugin directories, or a plugin that does not support the
// configuration's cniVersion.
func (d *Driver) Validate(ctx context.Context, o network.CreateOptions) ([]byte, error) {
	for k := range o.Options {
		if strings.HasPrefix(k, "cni.") && k != OptConfig && k != OptConfDir && k != OptName && k != OptPath {
			return nil, invalid("unknown cni driver option %q (known: %s, %s, %s, %s)", k, OptConfig, OptConfDir, OptName, OptPath)
		}
	}
	list, err := load(o.Name, o.Options)
	if err != nil {
		return nil, err
	}
	if err := utils.ValidateNetworkName(list.Name); err != nil {
		return nil, invalid("CNI network name %q: %s", list.Name, err.Msg)
	}
	cfg := config{Path: splitPath(o.Options[OptPath])}
	lib := d.lib(cfg)
	for _, p := range list.Plugins {
		if _, err := d.exec.FindInPath(p.Network.Type, lib.Path); err != nil {
			return nil, invalid("CNI plugin %q not found in %s", p.Network.Type, strings.Join(lib.Path, ":"))
		}
	}
	if _, err := lib.ValidateNetworkList(ctx, list); err != nil {
		return nil, invalid("CNI network %s: %s", list.Name, oneLine(strings.Trim(err.Error(), "[]")))
	}
	if cfg.ConfList, err = inline(list); err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

// load reads the configuration list that opts name.
func load(netName string, opts map[string]string) (*libcni.NetworkConfigList, error) {
	file, dir, name := opts[OptConfig], opts[OptConfDir], opts[OptName]
	if file != "" && (dir != "" || name != "") {
		return nil, invalid("%s cannot be combined with %s or %s", OptConfig, OptConfDir, OptName)
	}
	if file != "" {
		list, err := libcni.NetworkConfFromFile(file)
		if err != nil {
			return nil, invalid("CNI configuration %s: %s", file, oneLine(err.Error()))
		}
		return list, nil
	}
	if dir == "" {
		dir = DefaultConfDir
	}
	if name == "" {
		name = netName
	}
	list, err := libcni.LoadNetworkConf(dir, name)
	if err != nil {
		return nil, invalid("CNI configuration %q in %s: %s", name, dir, oneLine(err.Error()))
	}
	return list, nil
}

// inline returns list as one conflist document with every plugin inline
// (and loadOnlyInlinedPlugins set), the cniVersion libcni chose, and
// the list's other keys kept.
func inline(list *libcni.NetworkConfigList) ([]byte, error) {
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(list.Bytes, &raw); err != nil {
		return nil, invalid("CNI configuration %s: %v", list.Name, err)
	}
	plugins := make([]json.RawMessage, len(list.Plugins))
	for i, p := range list.Plugins {
		plugins[i] = p.Bytes
	}
	delete(raw, "cniVersions")
	raw["plugins"], _ = json.Marshal(plugins)
	raw["cniVersion"], _ = json.Marshal(list.CNIVersion)
	raw["loadOnlyInlinedPlugins"] = json.RawMessage("true")
	return json.Marshal(raw)
}

// parse returns the recorded configuration.
func parse(b []byte) (config, *libcni.NetworkConfigList, error) {
	var cfg config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, nil, fmt.Errorf("cni: bad network record: %v: %w", err, errdefs.ErrDataLoss)
	}
	list, err := libcni.NetworkConfFromBytes(cfg.ConfList)
	if err != nil {
		return cfg, nil, fmt.Errorf("cni: bad network record: %v: %w", err, errdefs.ErrDataLoss)
	}
	return cfg, list, nil
}

func (d *Driver) lib(cfg config) *libcni.CNIConfig {
	dirs := d.dirs
	if len(cfg.Path) > 0 {
		dirs = cfg.Path
	}
	return libcni.NewCNIConfigWithCacheDir(slices.Clone(dirs), d.cacheDir, d.exec)
}

func runtimeConf(r network.DriverRequest) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: r.ContainerID, NetNS: r.NetnsPath, IfName: r.IfName}
}

// Attach runs ADD of the network's plugins for the endpoint r and returns
// the first IPv4 address of the result on r.IfName (or on no interface in
// particular). When ADD fails, or gives no IPv4 address, DEL runs before
// the error returns. Errors: errdefs.ErrFailedPrecondition when a plugin
// executable is missing, errdefs.ErrUnavailable when a plugin says "try
// again later" (CNI error 11), errdefs.ErrInvalidArgument when the result
// has no IPv4 address, errdefs.ErrUnknown for other plugin failures.
func (d *Driver) Attach(ctx context.Context, r network.DriverRequest) (network.DriverResult, error) {
	cfg, list, err := parse(r.Config)
	if err != nil {
		return network.DriverResult{}, err
	}
	lib := d.lib(cfg)
	rt := runtimeConf(r)
	res, err := lib.AddNetworkList(ctx, list, rt)
	var out network.DriverResult
	if err == nil {
		out, err = resultOf(res, r.IfName)
	}
	if err != nil {
		err = d.classify(lib, list, err)
		if derr := d.del(context.WithoutCancel(ctx), lib, list, rt); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return network.DriverResult{}, err
	}
	return out, nil
}

// resultOf picks the endpoint's address, gateway and MAC from an ADD
// result.
func resultOf(res cnitypes.Result, ifName string) (network.DriverResult, error) {
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return network.DriverResult{}, fmt.Errorf("CNI result: %v: %w", err, errdefs.ErrUnknown)
	}
	var out network.DriverResult
	ours := func(i *int) bool {
		if i == nil {
			return true
		}
		if *i < 0 || *i >= len(cur.Interfaces) {
			return false
		}
		itf := cur.Interfaces[*i]
		return itf.Sandbox != "" && (itf.Name == ifName || itf.Name == "")
	}
	for _, ip := range cur.IPs {
		a, ok := netip.AddrFromSlice(ip.Address.IP.To4())
		if !ok || ip.Address.IP.To4() == nil || !ours(ip.Interface) {
			continue
		}
		ones, _ := ip.Address.Mask.Size()
		out.Address = netip.PrefixFrom(a, ones)
		if gw, ok := netip.AddrFromSlice(ip.Gateway.To4()); ok && ip.Gateway.To4() != nil {
			out.Gateway = gw
		}
		break
	}
	if !out.Address.IsValid() {
		return out, fmt.Errorf("the CNI plugins gave %s no IPv4 address (berth needs one; add an ipam section): %w", ifName, errdefs.ErrInvalidArgument)
	}
	for _, itf := range cur.Interfaces {
		if itf.Sandbox != "" && itf.Name == ifName {
			out.MAC = itf.Mac
		}
	}
	return out, nil
}

// classify gives a plugin failure its errdefs category and one line.
func (d *Driver) classify(lib *libcni.CNIConfig, list *libcni.NetworkConfigList, err error) error {
	if errdefs.IsInvalidArgument(err) || errdefs.IsUnknown(err) {
		return err // ours already
	}
	for _, p := range list.Plugins {
		if _, ferr := d.exec.FindInPath(p.Network.Type, lib.Path); ferr != nil {
			return fmt.Errorf("CNI plugin %q not found in %s: %w", p.Network.Type, strings.Join(lib.Path, ":"), errdefs.ErrFailedPrecondition)
		}
	}
	var cat error = errdefs.ErrUnknown
	var ce *cnitypes.Error
	if errors.As(err, &ce) && ce.Code == cnitypes.ErrTryAgainLater {
		cat = errdefs.ErrUnavailable
	}
	return fmt.Errorf("CNI network %s: %s: %w", list.Name, oneLine(err.Error()), cat)
}

// Detach runs DEL of the network's plugins (last first) for the endpoint
// r, with the result cached at ADD when there is one. Plugins whose
// executable is gone are skipped (nothing can ask them; whatever state
// they keep stays theirs), so a removed plugin does not make the
// container impossible to remove. Idempotent, as DEL is by the spec.
// Errors: errdefs.ErrUnknown when a plugin fails DEL.
func (d *Driver) Detach(ctx context.Context, r network.DriverRequest) error {
	cfg, list, err := parse(r.Config)
	if err != nil {
		return err
	}
	lib := d.lib(cfg)
	if err := d.del(ctx, lib, list, runtimeConf(r)); err != nil {
		return fmt.Errorf("CNI network %s: %s: %w", list.Name, oneLine(err.Error()), errdefs.ErrUnknown)
	}
	return nil
}

func (d *Driver) del(ctx context.Context, lib *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	found := *list
	found.Plugins = slices.DeleteFunc(slices.Clone(list.Plugins), func(p *libcni.PluginConfig) bool {
		_, err := d.exec.FindInPath(p.Network.Type, lib.Path)
		return err != nil
	})
	// With no plugin left this still forgets the cached result.
	return lib.DelNetworkList(ctx, &found, rt)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// oneLine folds a multi-line plugin message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
