package privsep

import (
	"time"

	"github.com/berthproject/berth/image"
)

// The container, network and image verbs beyond create/start/stop
// (Berth issue 6: top, stats, pause, rename, cp, network connect, push).
// Each has its own argument type below; SPEC.md lists them and their
// rules, which package privsep/helper enforces.
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
// Auth, when set, is the API client's credential (X-Registry-Auth) for
// this push only; nil uses the helper's config.json.
type PushArgs struct {
	Ref  string            `json:"ref"`
	Auth *image.Credential `json:"auth,omitempty"`
}
