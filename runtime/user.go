package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// maxID is the largest uid or gid Docker accepts in a USER spec.
const maxID = 1<<31 - 1

// ExecUser is the identity a container process runs as, resolved from a
// Docker USER spec against the container's own /etc/passwd and /etc/group.
type ExecUser struct {
	UID uint32
	GID uint32
	// AdditionalGids is the process's supplementary group list: the
	// primary GID first, then the groups /etc/group lists the matched
	// user as a member of (only when the spec names no group), in file
	// order. This is the list Docker passes to the OCI runtime.
	AdditionalGids []uint32
	// Home is the home directory from the passwd entry, or "/" when the
	// user has no entry.
	Home string
}

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// ResolveUser resolves a Docker USER spec against the passwd and group
// files of the root filesystem at rootfs (an absolute host path).
//
// userSpec is one of "" (root), "name", "uid", "name:group", "uid:gid",
// "name:gid" or "uid:group", as `docker run --user` and the image's
// USER accept. The rules are Docker's:
//   - a name must have a passwd entry; otherwise the error is
//     ErrInvalidArgument "unable to find user NAME: no matching entries
//     in passwd file";
//   - a numeric uid with no entry is allowed: gid 0, home "/";
//   - a named group must exist in /etc/group ("unable to find group G:
//     no matching entries in group file"); a numeric gid need not;
//   - without an explicit group, the primary gid comes from passwd and
//     supplementary groups are those listing the matched user's name;
//   - ids must be in 0..2147483647, else ErrInvalidArgument.
//
// The files are read through an os.Root confined to rootfs; symbolic
// links (absolute or relative) are resolved as if rootfs were "/", so a
// hostile image cannot make this read a host file. A missing or
// unreadable file counts as empty, as in Docker. An error opening rootfs
// itself is returned wrapped (ErrNotFound when it does not exist).
func ResolveUser(rootfs, userSpec string) (ExecUser, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ExecUser{}, fmt.Errorf("open rootfs %s: %w: %w", rootfs, errdefs.ErrNotFound, err)
		}
		return ExecUser{}, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer root.Close()

	var users []passwdEntry
	if f, err := openInRoot(root, "etc/passwd"); err == nil {
		users, err = parsePasswd(f)
		f.Close()
		if err != nil {
			return ExecUser{}, fmt.Errorf("read %s/etc/passwd: %w", rootfs, err)
		}
	}
	// Only read /etc/group when needed, like Docker.
	loadGroups := func() ([]groupEntry, error) {
		f, err := openInRoot(root, "etc/group")
		if err != nil {
			return nil, nil
		}
		defer f.Close()
		groups, err := parseGroup(f)
		if err != nil {
			return nil, fmt.Errorf("read %s/etc/group: %w", rootfs, err)
		}
		return groups, nil
	}
	return resolveUser(userSpec, users, loadGroups)
}

func resolveUser(userSpec string, users []passwdEntry, loadGroups func() ([]groupEntry, error)) (ExecUser, error) {
	userArg, groupArg, _ := strings.Cut(userSpec, ":")
	uidArg, uidErr := strconv.Atoi(userArg)
	gidArg, gidErr := strconv.Atoi(groupArg)

	uid, gid, home := 0, 0, "/"
	matched := ""
	for _, u := range users {
		var ok bool
		switch {
		case userArg == "":
			ok = u.uid == 0
		case uidErr == nil:
			ok = u.uid == uidArg
		default:
			ok = u.name == userArg
		}
		if ok {
			// First match wins.
			matched, uid, gid, home = u.name, u.uid, u.gid, u.home
			break
		}
	}
	if matched == "" && userArg != "" {
		if uidErr != nil {
			return ExecUser{}, errdefs.ErrInvalidArgument.WithMessage(
				fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userArg))
		}
		if uidArg < 0 || uidArg > maxID {
			return ExecUser{}, errdefs.ErrInvalidArgument.WithMessage(
				fmt.Sprintf("invalid user %s: uids and gids must be in range 0-%d", userSpec, maxID))
		}
		uid = uidArg
	}
	if home == "" {
		home = "/"
	}

	var sgids []int
	if groupArg != "" || matched != "" {
		groups, err := loadGroups()
		if err != nil {
			return ExecUser{}, err
		}
		if groupArg != "" {
			found := false
			for _, g := range groups {
				if (gidErr == nil && g.gid == gidArg) || (gidErr != nil && g.name == groupArg) {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				if gidErr != nil {
					return ExecUser{}, errdefs.ErrInvalidArgument.WithMessage(
						fmt.Sprintf("unable to find group %s: no matching entries in group file", groupArg))
				}
				if gidArg < 0 || gidArg > maxID {
					return ExecUser{}, errdefs.ErrInvalidArgument.WithMessage(
						fmt.Sprintf("invalid user %s: uids and gids must be in range 0-%d", userSpec, maxID))
				}
				gid = gidArg
			}
		} else {
			for _, g := range groups {
				for _, m := range g.members {
					if m == matched {
						sgids = append(sgids, g.gid)
						break
					}
				}
			}
		}
	}

	eu := ExecUser{UID: uint32(uid), GID: uint32(gid), Home: home}
	eu.AdditionalGids = append(eu.AdditionalGids, uint32(gid))
	for _, g := range sgids {
		eu.AdditionalGids = append(eu.AdditionalGids, uint32(g))
	}
	return eu, nil
}

// openInRoot opens name (relative to root) for reading, resolving
// symbolic links whose targets os.Root refuses (absolute targets, or
// relative ones climbing above the root) as if root were "/".
func openInRoot(root *os.Root, name string) (*os.File, error) {
	const maxLinks = 40
	for range maxLinks {
		f, err := root.Open(name)
		if err == nil {
			return f, nil
		}
		target, lerr := root.Readlink(name)
		if lerr != nil {
			return nil, err
		}
		if !path.IsAbs(target) {
			target = path.Join("/", path.Dir(name), target)
		}
		// Cleaning an absolute path clamps ".." at "/".
		name = strings.TrimPrefix(path.Clean(target), "/")
		if name == "" {
			name = "."
		}
	}
	return nil, fmt.Errorf("open %s: too many levels of symbolic links", name)
}

// scanLines calls fn for each non-blank, non-comment line of r, split on
// ':'. NIS compat lines ("+..." / "-...") are skipped.
func scanLines(r io.Reader, fn func(fields []string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// parsePasswd parses passwd(5) lines: name:password:uid:gid:gecos:home:shell.
// Lines with a non-numeric uid or gid are ignored.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanLines(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// parseGroup parses group(5) lines: name:password:gid:member,member.
// Lines with a non-numeric gid are ignored.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := scanLines(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}
