package helper

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/privsep"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Request is one decoded, validated request: Op and a pointer to its
// argument type (*privsep.CreateArgs for container.create, …).
type Request struct {
	Op   privsep.Op
	Args any
}

// DecodeRequest parses and checks one request frame body (without its
// length prefix). Anything but a known op with a well-formed argument that
// passes Validate gives errdefs.ErrInvalidArgument; nothing is run.
func DecodeRequest(body []byte, c Confinement) (Request, error) {
	if len(body) > privsep.MaxRequest {
		return Request{}, fmt.Errorf("request of %d bytes exceeds %d: %w", len(body), privsep.MaxRequest, errdefs.ErrInvalidArgument)
	}
	var w privsep.WireRequest
	if err := privsep.DecodeStrict(body, &w); err != nil {
		return Request{}, fmt.Errorf("malformed request: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	args, ok := privsep.NewArgs(w.Op)
	if !ok {
		return Request{}, fmt.Errorf("unknown request %.64q: %w", w.Op, errdefs.ErrInvalidArgument)
	}
	if len(w.Args) > 0 && !bytes.Equal(bytes.TrimSpace(w.Args), []byte("null")) {
		if err := privsep.DecodeStrict(w.Args, args); err != nil {
			return Request{}, fmt.Errorf("malformed %s arguments: %v: %w", w.Op, err, errdefs.ErrInvalidArgument)
		}
	}
	if err := Validate(w.Op, args, c); err != nil {
		return Request{}, err
	}
	return Request{Op: w.Op, Args: args}, nil
}

// Confinement is what the helper confines request paths to: berth's
// persistent and runtime roots. A bind-mount source inside either must be
// a volume's data directory (ROOT/volumes/NAME/_data).
type Confinement struct {
	Root, RunRoot string
}

// lazyPattern is a regular expression compiled on first use: the helper's
// patterns cost ~3 ms and 1.4 MB to compile, which every berth command
// (this package is linked into the one binary) would otherwise pay at
// start-up.
type lazyPattern struct {
	once sync.Once
	expr string
	re   *regexp.Regexp
}

func pattern(expr string) *lazyPattern { return &lazyPattern{expr: expr} }

// MatchString reports whether s matches the pattern.
func (p *lazyPattern) MatchString(s string) bool {
	p.once.Do(func() { p.re = regexp.MustCompile(p.expr) })
	return p.re.MatchString(s)
}

var (
	fullID      = pattern(`^[0-9a-f]{64}$`)
	objectName  = pattern(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)
	volumeName  = pattern(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)
	imageID     = pattern(`^(sha256:)?[0-9a-f]{1,64}$`)
	eventWord   = pattern(`^[a-z][a-z_-]{0,31}(: .{0,200})?$`)
	platformStr = pattern(`^[a-z0-9_]{1,32}(/[a-z0-9_.]{1,32}){0,2}$`)
	signalStr   = pattern(`^[A-Za-z0-9+]{0,16}$`)
	eventTypes  = map[string]bool{"container": true, "image": true, "network": true, "volume": true}
)

func bad(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// checkID accepts a full container ID (64 lower-case hex digits).
func checkID(what, s string) error {
	if !fullID.MatchString(s) {
		return bad("%s: not a 64-hex ID: %.80q", what, s)
	}
	return nil
}

// checkName accepts a container or network name or ID (prefix): Docker's
// name characters, at most 255, an optional leading "/".
func checkName(what, s string) error {
	if !objectName.MatchString(s) {
		return bad("%s: not a valid name or ID: %.80q", what, s)
	}
	return nil
}

// checkImage accepts an image reference (Docker's grammar, at most 512
// bytes) or an image ID or ID prefix.
func checkImage(what, s string) error {
	if len(s) > 512 || s == "" {
		return bad("%s: image reference of %d bytes", what, len(s))
	}
	if imageID.MatchString(s) {
		return nil
	}
	if _, err := reference.ParseAnyReference(s); err != nil {
		return bad("%s: invalid reference %.80q", what, s)
	}
	return nil
}

// within reports whether p is root or below it (both clean and absolute).
func within(p, root string) bool {
	if root == "" {
		return false
	}
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

// checkSize accepts a terminal size: height and width 0..65535.
func checkSize(what string, height, width int) error {
	if height < 0 || height > 65535 || width < 0 || width > 65535 {
		return bad("%s: %dx%d out of range", what, height, width)
	}
	return nil
}

// checkLabels bounds a label or option map.
func checkLabels(what string, m map[string]string) error {
	if len(m) > 256 {
		return bad("%s: %d entries, at most 256", what, len(m))
	}
	for k, v := range m {
		if k == "" || len(k) > 1024 || len(v) > 8192 || strings.ContainsRune(k+v, 0) {
			return bad("%s: malformed entry %.80q", what, k)
		}
	}
	return nil
}

// checkDriverMaps accepts what a network or volume create names besides
// its name: the driver (empty or want) and bounded label and option maps.
func checkDriverMaps(what, driver, want string, labels, options map[string]string) error {
	if driver != "" && driver != want {
		return bad("%s: driver %.20q", what, driver)
	}
	if err := checkLabels(what+" labels", labels); err != nil {
		return err
	}
	return checkLabels(what+" options", options)
}

// Validate checks a decoded request's argument (a pointer to op's argument
// type) against the rules of SPEC.md: IDs are 64 hex digits, names and
// references well-formed, host paths absolute, clean and confined, numbers
// in range. A violation gives errdefs.ErrInvalidArgument.
func Validate(op privsep.Op, args any, c Confinement) error {
	if err, ok := validateVerb(op, args); ok {
		return err
	}
	if err, ok := validateExec(op, args); ok {
		return err
	}
	if err, ok := validateImageOp(op, args); ok {
		return err
	}
	switch a := args.(type) {
	case *privsep.NoArgs:
		return nil
	case *privsep.RefArgs:
		switch op {
		case privsep.OpImageInspect:
			return checkImage("image", a.Ref)
		case privsep.OpVolumeGet, privsep.OpVolumeSize:
			if !volumeName.MatchString(a.Ref) {
				return bad("volume: invalid name %.80q", a.Ref)
			}
			return nil
		}
		return checkName(string(op), a.Ref)
	case *privsep.IDArgs:
		return checkID(string(op), a.ID)
	case *privsep.ListArgs:
		return nil
	case *privsep.StopArgs:
		if a.Timeout != nil && (*a.Timeout < 0 || *a.Timeout > 101*365*24*time.Hour) {
			return bad("stop: timeout out of range")
		}
		if !signalStr.MatchString(a.Signal) {
			return bad("stop: invalid signal %.20q", a.Signal)
		}
		return checkName("stop", a.Ref)
	case *privsep.KillArgs:
		if a.Signal < 1 || a.Signal > 64 {
			return bad("kill: signal %d out of range", a.Signal)
		}
		return checkName("kill", a.Ref)
	case *privsep.RemoveArgs:
		if op == privsep.OpImageRemove {
			if a.Volumes {
				return bad("image.remove: volumes is container.remove's")
			}
			return checkImage("image", a.Ref)
		}
		return checkName("remove", a.Ref)
	case *privsep.InspectArgs:
		return checkName("inspect", a.Ref)
	case *privsep.LogsArgs:
		if a.Tail < -1 {
			return bad("logs: tail %d", a.Tail)
		}
		return checkName("logs", a.Ref)
	case *privsep.FollowArgs:
		return checkID("follow-log", a.ID)
	case *privsep.ResizeTTYArgs:
		if err := checkSize("resize", a.Height, a.Width); err != nil {
			return err
		}
		return checkName("resize", a.Ref)
	case *privsep.PullArgs:
		if a.Platform != "" && !platformStr.MatchString(a.Platform) {
			return bad("pull: invalid platform %.40q", a.Platform)
		}
		if err := checkCredential("pull", a.Auth); err != nil {
			return err
		}
		return checkImage("pull", a.Ref)
	case *privsep.TagArgs:
		if err := checkImage("tag source", a.Source); err != nil {
			return err
		}
		return checkImage("tag target", a.Target)
	case *privsep.CreateArgs:
		return validateCreate(a, c)
	case *privsep.NetworkCreateArgs:
		o := a.Options
		if err := checkName("network", o.Name); err != nil {
			return err
		}
		return checkDriverMaps("network", o.Driver, "bridge", o.Labels, o.Options)
	case *privsep.VolumeCreateArgs:
		if a.Name != "" && !volumeName.MatchString(a.Name) {
			return bad("volume: invalid name %.80q", a.Name)
		}
		return checkDriverMaps("volume", a.Driver, "local", a.Labels, a.Options)
	case *privsep.VolumeRemoveArgs:
		if !volumeName.MatchString(a.Name) {
			return bad("volume: invalid name %.80q", a.Name)
		}
		return nil
	case *privsep.EventAppendArgs:
		ev := a.Event
		if !eventTypes[ev.Type] || !eventWord.MatchString(ev.Action) || len(ev.ID) > 512 || ev.TimeNano != 0 {
			return bad("event: malformed %.20q %.40q", ev.Type, ev.Action)
		}
		return checkLabels("event attributes", ev.Attributes)
	case *privsep.EventReadArgs:
		return nil
	}
	return bad("no validation rule for %s", op)
}

// validateCreate checks container.create: the name, the image, every
// host path the container would see, and the runtime fields the engine
// fills itself (which a request may not set).
func validateCreate(a *privsep.CreateArgs, c Confinement) error {
	if a.Name != "" && !objectName.MatchString(a.Name) {
		return bad("Invalid container name (%.80s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", a.Name)
	}
	if err := checkImage("create", a.Image); err != nil {
		return err
	}
	switch a.Pull {
	case "", "missing", "always", "never":
	default:
		return bad("create: pull policy %.20q", a.Pull)
	}
	if a.Runtime != "" && !slices.Contains(engine.APIRuntimes, a.Runtime) {
		return bad("unknown or invalid runtime name: %.40s", a.Runtime)
	}
	r := a.Run
	if r.NetworkNamespace != "" || r.CgroupsPath != "" || r.InitPath != "" {
		return bad("create: the network namespace, cgroup path and init path are the engine's to set")
	}
	for _, m := range r.Mounts {
		if !filepath.IsAbs(m.Destination) || strings.ContainsRune(m.Destination, 0) {
			return bad("create: mount destination %.120q is not absolute", m.Destination)
		}
	}
	if err := checkBindSources(r.Mounts, c); err != nil {
		return err
	}
	for _, src := range a.MakeBindSources {
		if !slices.ContainsFunc(r.Mounts, func(m specs.Mount) bool { return m.Source == src && (m.Type == "bind" || m.Type == "") }) {
			return bad("create: %.120q to create is not the source of a bind mount", src)
		}
	}
	mode := a.Network.Mode
	if target, ok := strings.CutPrefix(mode, "container:"); ok {
		if err := checkName("create: network mode", target); err != nil {
			return err
		}
	} else if mode != "" {
		if err := checkName("create: network mode", mode); err != nil {
			return err
		}
	}
	if a.StopTimeout != nil && (*a.StopTimeout < -1 || *a.StopTimeout > 1<<30) {
		return bad("create: stop timeout %d", *a.StopTimeout)
	}
	if a.StopSignal != "" && !signalStr.MatchString(a.StopSignal) {
		return bad("create: invalid stop signal %.20q", a.StopSignal)
	}
	return checkLabels("create: labels", a.Labels)
}
