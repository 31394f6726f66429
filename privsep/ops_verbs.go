package privsep

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// The container, network and image verbs beyond create/start/stop
// (Berth issue 6: top, stats, pause, rename, cp, network connect, push). Each has its own argument type below, validated by
// validateVerb and run by runVerb; SPEC.md lists them.
const (
	OpContainerTop      Op = "container.top"
	OpContainerStats    Op = "container.stats"
	OpContainerPause    Op = "container.pause"
	OpContainerUnpause  Op = "container.unpause"
	OpContainerRename   Op = "container.rename"
	OpContainerPathStat Op = "container.path-stat"
	OpContainerCopyFrom Op = "container.copy-from"
	OpContainerCopyTo   Op = "container.copy-to"
	OpNetworkConnect    Op = "network.connect"
	OpNetworkDisconnect Op = "network.disconnect"
	OpImagePush         Op = "image.push"
)

// Bounds of the verbs' arguments.
const (
	maxStatsInterval         = 10 * time.Second
	maxContainerPathBytes    = 4096
	maxPsArgs                = 32
	maxStatsRefs             = 256
	maxAliases               = 64
	maxCopyNameBytes         = 255
	copyToInputDescription   = "a pipe or unix stream socket carrying the tar stream"
	copyToInputNotAllowedMsg = "request carried a descriptor it does not take"
)

// TopArgs is container.top's argument: ps's arguments (default -ef),
// each at most 256 bytes of [A-Za-z0-9,=:_+%./-], at most 32.
type TopArgs struct {
	Ref    string   `json:"ref"`
	PsArgs []string `json:"psArgs"`
}

// StatsArgs is container.stats's argument: 1..256 containers, sampled
// Interval apart (0..10 s).
type StatsArgs struct {
	Refs     []string      `json:"refs"`
	Interval time.Duration `json:"interval"`
}

// RenameArgs is container.rename's argument: the new name, Docker's name
// characters with an optional leading "/".
type RenameArgs struct {
	Ref  string `json:"ref"`
	Name string `json:"name"`
}

// PathArgs is container.path-stat's and container.copy-from's argument:
// Path inside the container (resolved by the engine inside the
// container's root), at most 4 KiB, no NUL. Rename is "" or a single
// path element ("." for Docker's "SRC/." form); KeepOwner is cp -a.
type PathArgs struct {
	Ref        string `json:"ref"`
	Path       string `json:"path"`
	FollowLink bool   `json:"followLink"`
	Rename     string `json:"rename"`
	KeepOwner  bool   `json:"keepOwner"`
}

// CopyToArgs is container.copy-to's argument: the directory Path to
// extract into. The tar stream is not in the frame: the request frame
// carries one descriptor (SCM_RIGHTS), a pipe or a unix stream socket the
// helper reads the tar from until EOF.
type CopyToArgs struct {
	Ref       string `json:"ref"`
	Path      string `json:"path"`
	KeepOwner bool   `json:"keepOwner"`
}

// ConnectArgs is network.connect's argument: IP empty or an IPv4 address,
// at most 64 aliases with Docker's name characters.
type ConnectArgs struct {
	Network   string   `json:"network"`
	Container string   `json:"container"`
	IP        string   `json:"ip"`
	Aliases   []string `json:"aliases"`
}

// DisconnectArgs is network.disconnect's argument.
type DisconnectArgs struct {
	Network   string `json:"network"`
	Container string `json:"container"`
	Force     bool   `json:"force"`
}

// PushArgs is image.push's argument: a stored image's name (not an ID).
type PushArgs struct {
	Ref string `json:"ref"`
}

// The argument constructors of this file's ops, as ops (protocol.go)
// lists them.
var (
	newTopArgs        = func() any { return &TopArgs{} }
	newStatsArgs      = func() any { return &StatsArgs{} }
	newRenameArgs     = func() any { return &RenameArgs{} }
	newPathArgs       = func() any { return &PathArgs{} }
	newCopyToArgs     = func() any { return &CopyToArgs{} }
	newConnectArgs    = func() any { return &ConnectArgs{} }
	newDisconnectArgs = func() any { return &DisconnectArgs{} }
	newPushArgs       = func() any { return &PushArgs{} }
	newRefArgs        = func() any { return &RefArgs{} }
)

// isVerb reports whether op is one of this file's ops.
func isVerb(op Op) bool {
	switch op {
	case OpContainerTop, OpContainerStats, OpContainerPause, OpContainerUnpause, OpContainerRename,
		OpContainerPathStat, OpContainerCopyFrom, OpContainerCopyTo,
		OpNetworkConnect, OpNetworkDisconnect, OpImagePush:
		return true
	}
	return false
}

var psArg = regexp.MustCompile(`^[A-Za-z0-9,=:_+%./-]{0,256}$`)

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
func validateVerb(op Op, args any) (err error, ok bool) {
	if !isVerb(op) {
		return nil, false
	}
	switch a := args.(type) {
	case *TopArgs:
		if len(a.PsArgs) > maxPsArgs {
			return bad("top: %d ps arguments, at most %d", len(a.PsArgs), maxPsArgs), true
		}
		for _, p := range a.PsArgs {
			if !psArg.MatchString(p) {
				return bad("top: invalid ps argument %.40q", p), true
			}
		}
		return checkName("top", a.Ref), true
	case *StatsArgs:
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
	case *RefArgs:
		return checkName(string(op), a.Ref), true
	case *RenameArgs:
		if err := checkName("rename", a.Ref); err != nil {
			return err, true
		}
		if !objectName.MatchString(a.Name) {
			return bad("Invalid container name (%.80s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", a.Name), true
		}
		return nil, true
	case *PathArgs:
		if a.Rename != "" && (len(a.Rename) > maxCopyNameBytes || strings.ContainsAny(a.Rename, "/\x00") || a.Rename == "..") {
			return bad("%s: invalid entry name %.40q", op, a.Rename), true
		}
		if err := checkContainerPath(string(op), a.Path); err != nil {
			return err, true
		}
		return checkName(string(op), a.Ref), true
	case *CopyToArgs:
		if err := checkContainerPath("copy-to", a.Path); err != nil {
			return err, true
		}
		return checkName("copy-to", a.Ref), true
	case *ConnectArgs:
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
	case *DisconnectArgs:
		if err := checkName("disconnect: network", a.Network); err != nil {
			return err, true
		}
		return checkName("disconnect: container", a.Container), true
	case *PushArgs:
		if imageID.MatchString(a.Ref) {
			return bad("push: %.80q is an image ID, not a name", a.Ref), true
		}
		return checkImage("push", a.Ref), true
	}
	return bad("no validation rule for %s", op), true
}

// takesInput reports whether op's request frame carries a descriptor.
func takesInput(op Op) bool { return op == OpContainerCopyTo }

// requestInput checks the descriptor a request frame carried (fd, -1 for
// none) against what op takes, and returns it as a file (nil for none).
// A descriptor that op does not take, a missing one, or one that is not
// a pipe or unix stream socket gives errdefs.ErrInvalidArgument; fd is
// closed then.
func requestInput(op Op, fd int) (*os.File, error) {
	if !takesInput(op) {
		if fd >= 0 {
			unix.Close(fd)
			return nil, bad("%s: %s", op, copyToInputNotAllowedMsg)
		}
		return nil, nil
	}
	if fd < 0 {
		return nil, bad("%s: the request must carry %s", op, copyToInputDescription)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		unix.Close(fd)
		return nil, bad("%s: the descriptor is not %s", op, copyToInputDescription)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil || err2 != nil || dom != unix.AF_UNIX || typ != unix.SOCK_STREAM {
			unix.Close(fd)
			return nil, bad("%s: the descriptor is not %s", op, copyToInputDescription)
		}
	}
	return os.NewFile(uintptr(fd), "copy-input"), nil
}

// runVerb runs the ops isVerb names; ok is false for any other op.
// State-changing ones run to completion even if the client goes away.
func (h *Helper) runVerb(ctx context.Context, req Request, s *sender) (res any, err error, ok bool) {
	if !isVerb(req.Op) {
		return nil, nil, false
	}
	e := h.Engine
	keep := context.WithoutCancel(ctx)
	switch a := req.Args.(type) {
	case *TopArgs:
		res, err = e.Top(ctx, a.Ref, a.PsArgs)
	case *StatsArgs:
		res, err = e.Stats(ctx, a.Refs, a.Interval)
	case *RefArgs:
		switch req.Op {
		case OpContainerPause:
			err = e.Pause(keep, a.Ref)
		case OpContainerUnpause:
			err = e.Unpause(keep, a.Ref)
		}
	case *RenameArgs:
		err = e.Rename(keep, a.Ref, a.Name)
	case *PathArgs:
		if req.Op == OpContainerPathStat {
			res, err = e.StatContainerPath(ctx, a.Ref, a.Path, a.FollowLink)
			break
		}
		err = e.CopyFromContainer(ctx, a.Ref, a.Path, engine.CopyOptions{FollowLink: a.FollowLink, Rename: a.Rename, KeepOwner: a.KeepOwner}, s.stream(KindStdout))
	case *CopyToArgs:
		if s.in == nil {
			return nil, bad("copy-to: no input"), true
		}
		err = e.CopyToContainer(keep, a.Ref, a.Path, s.in, engine.CopyOptions{KeepOwner: a.KeepOwner})
	case *ConnectArgs:
		err = e.ConnectNetwork(keep, a.Network, a.Container, engine.ConnectOptions{IP: a.IP, Aliases: a.Aliases})
	case *DisconnectArgs:
		err = e.DisconnectNetwork(keep, a.Network, a.Container, a.Force)
	case *PushArgs:
		res, err = e.Push(keep, a.Ref, engine.PushOptions{Progress: s.stream(KindProgress)})
	default:
		err = fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
	}
	return res, err, true
}

// readFrameFD reads one frame of at most max bytes from conn and the
// descriptor (if any) sent with its first bytes; -1 for none. Extra
// descriptors are closed. A longer frame gives
// errdefs.ErrInvalidArgument without reading its body.
func readFrameFD(conn *net.UnixConn, max int) ([]byte, int, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(hdr[:], oob)
	if err != nil {
		return nil, -1, err
	}
	if n == 0 {
		return nil, -1, io.ErrUnexpectedEOF
	}
	fd := -1
	if fds := parseRights(oob[:oobn]); len(fds) > 0 {
		fd = fds[0]
		closeFDs(fds[1:])
	}
	fail := func(err error) ([]byte, int, error) {
		closeFDs([]int{fd})
		return nil, -1, err
	}
	if n < 4 {
		if _, err := io.ReadFull(conn, hdr[n:]); err != nil {
			return fail(err)
		}
	}
	size := uint64(binary.BigEndian.Uint32(hdr[:]))
	if size > uint64(max) {
		return fail(fmt.Errorf("frame of %d bytes exceeds %d: %w", size, max, errdefs.ErrInvalidArgument))
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		return fail(err)
	}
	return body, fd, nil
}

// writeFrameFD writes body with its length prefix, sending f (if not nil)
// with the 4-byte prefix alone (SCM_RIGHTS), so that the descriptor rides
// on bytes a single sendmsg surely delivers.
func writeFrameFD(conn *net.UnixConn, body []byte, f *os.File) error {
	if f == nil {
		return writeFrame(conn, body)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, _, err := conn.WriteMsgUnix(hdr[:], unix.UnixRights(int(f.Fd())), nil); err != nil {
		return err
	}
	_, err := conn.Write(body)
	return err
}
