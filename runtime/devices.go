package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DeviceMapping is one host device made available in a container, as
// `docker run --device` and the API's HostConfig.Devices give it.
type DeviceMapping struct {
	// PathOnHost is the host's character or block device, or a
	// directory whose devices (recursively) are all added. A symlink is
	// followed.
	PathOnHost string
	// PathInContainer is the absolute path of the node in the
	// container; "" means PathOnHost. For a directory it replaces
	// PathOnHost as the prefix of every device found under it.
	PathInContainer string
	// CgroupPermissions is a non-empty subset of "rwm" (read, write,
	// mknod), each letter at most once; "" means "rwm".
	CgroupPermissions string
}

// errNotADevice is what deviceAt returns for a path that is neither a
// character nor a block device.
var errNotADevice = errors.New("not a device node")

// ParseDevice parses the `--device` syntax HOST[:CONTAINER][:PERMS], as
// Docker's CLI does: with two fields the second is PERMS when it is a
// valid permission string, else CONTAINER; CONTAINER defaults to HOST and
// PERMS to "rwm". The result is checked with the same rules
// ValidateDevices applies (but the host path is not looked at). Errors
// are errdefs.ErrInvalidArgument with Docker's messages ("bad format for
// path: ...", "bad mode specified: ...", "... is not an absolute path").
func ParseDevice(s string) (DeviceMapping, error) {
	f := strings.Split(s, ":")
	d := DeviceMapping{PathOnHost: f[0], CgroupPermissions: "rwm"}
	switch len(f) {
	case 1:
	case 2:
		if validDevicePermissions(f[1]) {
			d.CgroupPermissions = f[1]
		} else {
			d.PathInContainer = f[1]
		}
	case 3:
		if !validDevicePermissions(f[2]) {
			return DeviceMapping{}, invalidf("bad mode specified: %s", f[2])
		}
		d.PathInContainer, d.CgroupPermissions = f[1], f[2]
	default:
		return DeviceMapping{}, invalidf("bad format for path: %s", s)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if err := checkDeviceMapping(d, s); err != nil {
		return DeviceMapping{}, err
	}
	d.PathInContainer = path.Clean(d.PathInContainer)
	return d, nil
}

// ValidateDevices checks every mapping of devs as Docker checks
// HostConfig.Devices, for `run`/`create` and the API alike: a non-empty
// host path that is a device or a directory holding at least one, an
// absolute container path (or none) and valid permissions (or none). It
// reads the host's filesystem but changes nothing. Errors are
// errdefs.ErrInvalidArgument, e.g. `error gathering device information
// while adding custom device "/tmp": not a device node`.
func ValidateDevices(devs []DeviceMapping) error {
	for _, d := range devs {
		if err := checkDeviceMapping(d, d.PathOnHost); err != nil {
			return err
		}
		if _, err := devicesFromPath(d); err != nil {
			return err
		}
	}
	return nil
}

// checkDeviceMapping applies the syntax rules shared by ParseDevice and
// ValidateDevices; orig is what error messages quote for a bad format.
func checkDeviceMapping(d DeviceMapping, orig string) error {
	switch {
	case d.PathOnHost == "":
		return invalidf("bad format for path: %s", orig)
	case d.CgroupPermissions != "" && !validDevicePermissions(d.CgroupPermissions):
		return invalidf("bad mode specified: %s", d.CgroupPermissions)
	case d.PathInContainer != "" && !path.IsAbs(d.PathInContainer):
		return invalidf("%s is not an absolute path", d.PathInContainer)
	}
	return nil
}

// validDevicePermissions reports whether p is a non-empty subset of
// "rwm" with no letter repeated.
func validDevicePermissions(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	for i, c := range p {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(p[:i], c) {
			return false
		}
	}
	return true
}

// devicesFromPath returns the device nodes d names, with their paths in
// the container: the device itself, or every device under a directory
// (a directory without any is an error, as in Docker).
func devicesFromPath(d DeviceMapping) ([]specs.LinuxDevice, error) {
	ctr := d.PathInContainer
	if ctr == "" {
		ctr = d.PathOnHost
	}
	gatherErr := func(err error) error {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err
		}
		return invalidf("error gathering device information while adding custom device %q: %v", d.PathOnHost, err)
	}
	host, err := filepath.EvalSymlinks(d.PathOnHost)
	if err != nil {
		return nil, gatherErr(err)
	}
	dev, err := deviceAt(host)
	if err == nil {
		dev.Path = path.Clean(ctr)
		return []specs.LinuxDevice{dev}, nil
	}
	if !errors.Is(err, errNotADevice) {
		return nil, gatherErr(err)
	}
	if fi, statErr := os.Stat(host); statErr != nil || !fi.IsDir() {
		return nil, gatherErr(err)
	}
	var out []specs.LinuxDevice
	walkErr := filepath.WalkDir(host, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil // unreadable parts are skipped, as Docker does
		}
		dev, err := deviceAt(p)
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(host, p)
		if err != nil {
			return nil
		}
		dev.Path = path.Join(ctr, filepath.ToSlash(rel))
		out = append(out, dev)
		return nil
	})
	if walkErr != nil {
		return nil, gatherErr(walkErr)
	}
	if len(out) == 0 {
		return nil, gatherErr(errNotADevice)
	}
	return out, nil
}

// addUserDevices adds opts.Devices to l, after what Spec set already
// (host devices when privileged, DefaultDeviceRules otherwise), as
// Docker does: each device node goes into l.Devices and, unless
// privileged, a cgroup rule allowing exactly its type, major:minor and
// permissions into l.Resources.Devices. Privileged containers already
// see every host device and may use all of them: a mapping to the same
// path is skipped and permissions are ignored.
func addUserDevices(l *specs.Linux, opts RunOptions) error {
	for _, d := range opts.Devices {
		if err := checkDeviceMapping(d, d.PathOnHost); err != nil {
			return err
		}
		if opts.Privileged && (d.PathInContainer == "" || path.Clean(d.PathInContainer) == path.Clean(d.PathOnHost)) {
			continue
		}
		devs, err := devicesFromPath(d)
		if err != nil {
			return err
		}
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		for _, dev := range devs {
			l.Devices = append(l.Devices, dev)
			if opts.Privileged {
				continue
			}
			major, minor := dev.Major, dev.Minor
			l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{
				Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: perms,
			})
		}
	}
	return nil
}
