// Package mount describes filesystem mounts as values and performs them.
//
// Storage (package snapshot) describes the mounts a rootfs needs; the engine
// or a privileged helper performs them. Keeping the two apart lets the same
// description be handed to an OCI runtime, a privileged helper, or mounted
// in-process.
package mount

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call: Type is the filesystem type ("overlay", "bind",
// "tmpfs" …), Source the device or directory, Options the comma-separated
// option list split into items, as in fstab(5). A Type of "bind" (or an
// option "bind"/"rbind") makes a bind mount of Source.
type Mount struct {
	Type    string   `json:"type"`
	Source  string   `json:"source"`
	Options []string `json:"options,omitempty"`
}

// flagOptions maps fstab options to mount(2) flags. Options not listed here
// are passed to the filesystem as data.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"noatime":     {false, unix.MS_NOATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
}

// parse splits Options into mount(2) flags and the data string.
func (m Mount) parse() (flags uintptr, data string) {
	var rest []string
	for _, o := range m.Options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		rest = append(rest, o)
	}
	if m.Type == "bind" {
		flags |= unix.MS_BIND
	}
	return flags, strings.Join(rest, ",")
}

// Mount performs m on target, which must exist. A read-only bind mount is
// made in two steps, as the kernel requires.
func (m Mount) Mount(target string) error {
	flags, data := m.parse()
	typ := m.Type
	if flags&unix.MS_BIND != 0 {
		typ = ""
		data = ""
	}
	if len(data) >= unix.Getpagesize() {
		if m.Type == "overlay" {
			return mountOverlayByLayer(m, target, flags)
		}
		return fmt.Errorf("mount %s on %s: option string of %d bytes exceeds the kernel's page-size limit", m.Type, target, len(data))
	}
	if err := unix.Mount(m.Source, target, typ, flags&^unix.MS_RDONLY|bindRO(flags), data); err != nil {
		return fmt.Errorf("mount %s %s on %s: %w", m.Type, m.Source, target, err)
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// bindRO keeps MS_RDONLY for non-bind mounts, where the kernel honours it on
// the first call.
func bindRO(flags uintptr) uintptr {
	if flags&unix.MS_BIND != 0 {
		return 0
	}
	return flags & unix.MS_RDONLY
}

// All mounts ms on target in order (later mounts stack on earlier ones). On
// error, whatever was mounted is unmounted again.
func All(ms []Mount, target string) error {
	for i, m := range ms {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				_ = Unmount(target)
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts target, lazily (MNT_DETACH) so that a busy mount does not
// block cleanup. A target that is not a mount point is not an error (EINVAL),
// nor is one that does not exist (ENOENT): Unmount is idempotent.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, unix.MNT_DETACH)
		switch err {
		case nil:
			continue // unmount stacked mounts until none is left
		case unix.EINVAL, unix.ENOENT:
			return nil
		case unix.EINTR:
			continue
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// MaxOverlayLayers is the kernel's limit on stacked overlay lower
// layers (OVL_MAX_STACK).
const MaxOverlayLayers = 500

// mountOverlayByLayer mounts an overlay whose option string does not fit
// in one page (many layers, long paths) with the new mount API, passing
// each layer directory on its own as an open file descriptor
// ("lowerdir+", Linux 6.13 and later; a string value would be cut at 256
// bytes), so neither the number of layers (up to MaxOverlayLayers) nor
// the length of the paths is limited.
func mountOverlayByLayer(m Mount, target string, flags uintptr) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsopen: %w", target, err)
	}
	defer unix.Close(fd)
	for _, o := range m.Options {
		if _, ok := flagOptions[o]; ok {
			continue
		}
		key, val, hasVal := strings.Cut(o, "=")
		switch {
		case key == "lowerdir":
			layers := strings.Split(val, ":")
			if len(layers) > MaxOverlayLayers {
				return fmt.Errorf("mount overlay on %s: %d layers exceed the kernel's limit of %d", target, len(layers), MaxOverlayLayers)
			}
			for _, l := range layers {
				if err := setDir(fd, "lowerdir+", l); err != nil {
					return fmt.Errorf("mount overlay on %s: add lower layer %s (needs Linux 6.13 or later): %w", target, l, err)
				}
			}
		case key == "upperdir" || key == "workdir":
			if err := setDir(fd, key, val); err != nil {
				return fmt.Errorf("mount overlay on %s: %s %s: %w", target, key, val, err)
			}
		case hasVal:
			if err := unix.FsconfigSetString(fd, key, val); err != nil {
				return fmt.Errorf("mount overlay on %s: option %s: %w", target, key, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, key); err != nil {
				return fmt.Errorf("mount overlay on %s: option %s: %w", target, key, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("mount overlay on %s: create: %w", target, err)
	}
	var attrs int
	if flags&unix.MS_RDONLY != 0 {
		attrs |= unix.MOUNT_ATTR_RDONLY
	}
	if flags&unix.MS_NOSUID != 0 {
		attrs |= unix.MOUNT_ATTR_NOSUID
	}
	if flags&unix.MS_NODEV != 0 {
		attrs |= unix.MOUNT_ATTR_NODEV
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("mount overlay on %s: fsmount: %w", target, err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount overlay on %s: move_mount: %w", target, err)
	}
	return nil
}

// setDir passes directory path to an fsconfig context as an O_PATH file
// descriptor.
func setDir(fsfd int, key, path string) error {
	dfd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	return unix.FsconfigSetFd(fsfd, key, dfd)
}
