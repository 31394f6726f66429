package helper

import (
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/berthproject/berth/privsep"
)

// The rules of the verbs (ops_verbs.go of package privsep) and of the exec
// ops, as SPEC.md states them.

// Bounds of the verbs' arguments.
const (
	maxStatsInterval      = 10 * time.Second
	maxContainerPathBytes = 4096
	maxPsArgs             = 32
	maxStatsRefs          = 256
	maxAliases            = 64
	maxCopyNameBytes      = 255
)

// isVerb reports whether op is one of the verbs (privsep's ops_verbs.go).
func isVerb(op privsep.Op) bool {
	switch op {
	case privsep.OpContainerTop, privsep.OpContainerStats, privsep.OpContainerPause, privsep.OpContainerUnpause, privsep.OpContainerRename,
		privsep.OpContainerPathStat, privsep.OpContainerCopyFrom, privsep.OpContainerCopyTo,
		privsep.OpNetworkConnect, privsep.OpNetworkDisconnect, privsep.OpImagePush:
		return true
	}
	return false
}

var psArg = pattern(`^[A-Za-z0-9,=:_+%./-]{0,256}$`)

// checkContainerPath accepts a path inside a container: non-empty, at
// most 4 KiB, no NUL. Confinement to the container's root is the
// engine's (every resolution goes through os.Root).
func checkContainerPath(what, p string) error {
	if p == "" || len(p) > maxContainerPathBytes || strings.ContainsRune(p, 0) {
		return bad("%s: invalid path in container (%d bytes)", what, len(p))
	}
	return nil
}

// validateVerb checks the arguments of the ops isVerb names; ok is false
// for any other op.
func validateVerb(op privsep.Op, args any) (err error, ok bool) {
	if !isVerb(op) {
		return nil, false
	}
	switch a := args.(type) {
	case *privsep.TopArgs:
		if len(a.PsArgs) > maxPsArgs {
			return bad("top: %d ps arguments, at most %d", len(a.PsArgs), maxPsArgs), true
		}
		for _, p := range a.PsArgs {
			if !psArg.MatchString(p) {
				return bad("top: invalid ps argument %.40q", p), true
			}
		}
		return checkName("top", a.Ref), true
	case *privsep.StatsArgs:
		if len(a.Refs) == 0 || len(a.Refs) > maxStatsRefs {
			return bad("stats: %d containers, want 1..%d", len(a.Refs), maxStatsRefs), true
		}
		if a.Interval < 0 || a.Interval > maxStatsInterval {
			return bad("stats: interval %s out of range", a.Interval), true
		}
		for _, r := range a.Refs {
			if err := checkName("stats", r); err != nil {
				return err, true
			}
		}
		return nil, true
	case *privsep.RefArgs:
		return checkName(string(op), a.Ref), true
	case *privsep.RenameArgs:
		if err := checkName("rename", a.Ref); err != nil {
			return err, true
		}
		if !objectName.MatchString(a.Name) {
			return bad("Invalid container name (%.80s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", a.Name), true
		}
		return nil, true
	case *privsep.PathArgs:
		if a.Rename != "" && (len(a.Rename) > maxCopyNameBytes || strings.ContainsAny(a.Rename, "/\x00") || a.Rename == "..") {
			return bad("%s: invalid entry name %.40q", op, a.Rename), true
		}
		if err := checkContainerPath(string(op), a.Path); err != nil {
			return err, true
		}
		return checkName(string(op), a.Ref), true
	case *privsep.CopyToArgs:
		if err := checkContainerPath("copy-to", a.Path); err != nil {
			return err, true
		}
		return checkName("copy-to", a.Ref), true
	case *privsep.ConnectArgs:
		if a.IP != "" {
			if ip, err := netip.ParseAddr(a.IP); err != nil || !ip.Is4() {
				return bad("connect: invalid IPv4 address %.40q", a.IP), true
			}
		}
		if len(a.Aliases) > maxAliases {
			return bad("connect: %d aliases, at most %d", len(a.Aliases), maxAliases), true
		}
		for _, al := range a.Aliases {
			if !volumeName.MatchString(al) {
				return bad("connect: invalid alias %.80q", al), true
			}
		}
		if err := checkName("connect: network", a.Network); err != nil {
			return err, true
		}
		return checkName("connect: container", a.Container), true
	case *privsep.DisconnectArgs:
		if err := checkName("disconnect: network", a.Network); err != nil {
			return err, true
		}
		return checkName("disconnect: container", a.Container), true
	case *privsep.PushArgs:
		if imageID.MatchString(a.Ref) {
			return bad("push: %.80q is an image ID, not a name", a.Ref), true
		}
		if err := checkCredential("push", a.Auth); err != nil {
			return err, true
		}
		return checkImage("push", a.Ref), true
	}
	return bad("no validation rule for %s", op), true
}

// Bounds of exec.start's argument.
const (
	maxExecArgs     = 4096      // argv entries
	maxExecEnv      = 4096      // environment entries
	maxExecArgBytes = 128 << 10 // one argv or environment entry
	maxExecPath     = 4096      // the working directory
)

var execUser = pattern(`^[A-Za-z0-9_.@$+-]{1,256}(:[A-Za-z0-9_.@$+-]{1,256})?$`)

// validateExec checks the exec ops' arguments; ok is false for any other
// op. exec.start: both IDs 64 hex digits; 1…4096 argv entries, the first
// non-empty; ≤ 4096 environment entries with a non-empty key; no entry
// over 128 KiB or with NUL; the user Docker's name|uid[:group|gid]
// characters; the working directory empty or absolute and clean.
func validateExec(op privsep.Op, args any) (err error, ok bool) {
	switch a := args.(type) {
	case *privsep.ExecStartArgs:
		if op != privsep.OpExecStart {
			return nil, false
		}
		return validateExecStart(a), true
	case *privsep.ResizeArgs:
		if op != privsep.OpExecResize {
			return nil, false
		}
		if err := checkSize("exec.resize", a.Height, a.Width); err != nil {
			return err, true
		}
		return checkID("exec.resize", a.ID), true
	}
	return nil, false
}

func validateExecStart(a *privsep.ExecStartArgs) error {
	if err := checkID("exec.start: exec", a.ID); err != nil {
		return err
	}
	if err := checkID("exec.start: container", a.Container); err != nil {
		return err
	}
	if len(a.Cmd) == 0 || a.Cmd[0] == "" {
		return bad("exec.start: no command specified")
	}
	if len(a.Cmd) > maxExecArgs || len(a.Env) > maxExecEnv {
		return bad("exec.start: %d arguments, %d environment entries (at most %d, %d)", len(a.Cmd), len(a.Env), maxExecArgs, maxExecEnv)
	}
	for _, s := range a.Cmd {
		if len(s) > maxExecArgBytes || strings.ContainsRune(s, 0) {
			return bad("exec.start: malformed argument %.40q", s)
		}
	}
	for _, kv := range a.Env {
		if k, _, _ := strings.Cut(kv, "="); k == "" || len(kv) > maxExecArgBytes || strings.ContainsRune(kv, 0) {
			return bad("exec.start: invalid environment variable %.40q", kv)
		}
	}
	if a.User != "" && !execUser.MatchString(a.User) {
		return bad("exec.start: invalid user %.40q", a.User)
	}
	if w := a.WorkingDir; w != "" && (!path.IsAbs(w) || path.Clean(w) != w || len(w) > maxExecPath || strings.ContainsRune(w, 0)) {
		return bad("exec.start: the working directory %.80q must be absolute and clean", w)
	}
	return nil
}
