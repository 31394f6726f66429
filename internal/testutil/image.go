package testutil

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static package installs its
// statically linked multi-call binary.
const BusyboxPath = "/bin/busybox"

// DefaultPath is the PATH that BusyboxImage sets in its config (Docker's
// default for Linux containers).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BusyboxApplets are the applets BusyboxImage links to /bin/busybox, each as
// a relative symlink /bin/<applet> -> busybox.
var BusyboxApplets = []string{
	"sh", "echo", "true", "false", "ls", "cat", "id", "env", "sleep", "pwd",
	"wget", "nc", "httpd", "hostname", "touch", "mkdir", "rm", "ps", "top",
	"kill", "stat", "whoami",
}

// BusyboxTestUser is the unprivileged account in BusyboxImage's /etc/passwd
// (uid 1000, gid 1000, home /home/berthtest).
const BusyboxTestUser = "berthtest"

// epoch is the timestamp of every tar entry and of image configs built here,
// so that the same inputs always give the same digests.
var epoch = time.Unix(0, 0).UTC()

// TarEntry is one member of an in-memory layer tar. Entries are written in
// slice order, exactly as given: no parent directories are added, so a test
// can build any layer it needs (whiteouts, opaque markers, hard links,
// device nodes, odd orders).
type TarEntry struct {
	// Name is the path inside the layer, slash-separated and normally
	// relative ("bin/sh", "etc/.wh.passwd", "dir/.wh..wh..opq").
	Name string
	// Type is a tar type flag; zero means tar.TypeReg.
	Type byte
	// Mode holds the permission bits plus setuid/setgid/sticky (e.g. 0o1777).
	// Zero means 0o644 for regular files, 0o755 for directories and 0o777
	// for symlinks; other types keep 0.
	Mode int64
	// Linkname is the target of a symlink or hard link (tar.TypeSymlink,
	// tar.TypeLink).
	Linkname string
	// Content is the data of a regular file; it must be empty otherwise.
	Content []byte
	// UID and GID are the numeric owner.
	UID, GID int
	// Devmajor and Devminor are the device numbers of tar.TypeChar and
	// tar.TypeBlock entries (0/0 for an overlayfs-style whiteout).
	Devmajor, Devminor int64
	// ModTime defaults to the Unix epoch.
	ModTime time.Time
	// PAXRecords are extra PAX records, e.g. "SCHILY.xattr.user.k" for
	// extended attributes.
	PAXRecords map[string]string
}

// TarBytes returns the uncompressed tar stream of entries, in order. It
// fails t on an invalid entry (content on a non-regular file, unknown type).
func TarBytes(t testing.TB, entries []TarEntry) []byte {
	t.Helper()
	b, err := tarBytes(entries)
	if err != nil {
		t.Fatalf("testutil: build tar: %v", err)
	}
	return b
}

func tarBytes(entries []TarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.Type
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.Mode
		if mode == 0 {
			switch typ {
			case tar.TypeReg:
				mode = 0o644
			case tar.TypeDir:
				mode = 0o755
			case tar.TypeSymlink:
				mode = 0o777
			}
		}
		switch typ {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
			tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		default:
			return nil, fmt.Errorf("%s: unsupported tar type %q", e.Name, typ)
		}
		if typ != tar.TypeReg && len(e.Content) > 0 {
			return nil, fmt.Errorf("%s: content on a non-regular entry (type %q)", e.Name, typ)
		}
		mt := e.ModTime
		if mt.IsZero() {
			mt = epoch
		}
		hdr := &tar.Header{
			Typeflag:   typ,
			Name:       e.Name,
			Linkname:   e.Linkname,
			Size:       int64(len(e.Content)),
			Mode:       mode,
			Uid:        e.UID,
			Gid:        e.GID,
			ModTime:    mt,
			Devmajor:   e.Devmajor,
			Devminor:   e.Devminor,
			PAXRecords: e.PAXRecords,
		}
		if len(e.PAXRecords) > 0 {
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		if _, err := tw.Write(e.Content); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// TarLayer returns a gzip-compressed OCI layer
// (application/vnd.oci.image.layer.v1.tar+gzip) whose uncompressed content is
// TarBytes(entries). The same entries always give the same digest and diffID.
func TarLayer(t testing.TB, entries []TarEntry) v1.Layer {
	t.Helper()
	l, err := tarLayer(entries)
	if err != nil {
		t.Fatalf("testutil: build layer: %v", err)
	}
	return l
}

func tarLayer(entries []TarEntry) (v1.Layer, error) {
	raw, err := tarBytes(entries)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	return plainLayer{l}, nil
}

// plainLayer hides the tarball layer's Descriptor method, whose empty (not
// nil) annotations map makes the image's Manifest() differ from its parsed
// RawManifest() and fail validate.Image.
type plainLayer struct{ v1.Layer }

// LayeredImage builds an OCI image (manifest
// application/vnd.oci.image.manifest.v1+json, config
// application/vnd.oci.image.config.v1+json) for linux/GOARCH with one layer
// per element of layers, base layer first, and cfg as the container config
// (Cmd, Env, User, WorkingDir, ...). Timestamps are the Unix epoch, so the
// same inputs always give the same image digest. An empty layers slice gives
// an image with no layers.
func LayeredImage(t testing.TB, layers [][]TarEntry, cfg v1.Config) v1.Image {
	t.Helper()
	img, err := layeredImage(layers, cfg)
	if err != nil {
		t.Fatalf("testutil: build image: %v", err)
	}
	return img
}

func layeredImage(layers [][]TarEntry, cfg v1.Config) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for i, entries := range layers {
		l, err := tarLayer(entries)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History: v1.History{
				Created:   v1.Time{Time: epoch},
				CreatedBy: fmt.Sprintf("berth testutil layer %d", i),
			},
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// busybox caches the busybox image: it is immutable and its digest depends
// only on /bin/busybox, so tests and benchmarks can share one value.
var busybox struct {
	sync.Mutex
	img v1.Image
}

// BusyboxImage returns a one-layer OCI image for linux/GOARCH built from the
// host's Debian busybox-static binary. Its rootfs holds:
//
//   - /bin/busybox (mode 0755) and /bin/<applet> -> busybox symlinks for
//     each of BusyboxApplets;
//   - /etc/passwd with root (0), berthtest (1000:1000, home /home/berthtest)
//     and nobody (65534), and /etc/group with root, berthtest and nogroup;
//   - /tmp (1777), /root (0700), /home/berthtest (owned 1000:1000), and empty
//     /dev, /proc, /sys and /var directories.
//
// Its config has Cmd ["sh"] and Env ["PATH=" + DefaultPath]. The result is
// deterministic and cached for the process. It skips t if /bin/busybox is
// missing or is not a static binary for GOARCH (install it with
// `apt-get install busybox-static`).
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	busybox.Lock()
	defer busybox.Unlock()
	if busybox.img != nil {
		return busybox.img
	}
	bin, err := readStaticBusybox()
	if err != nil {
		t.Skipf("testutil: %v; install it with `apt-get install busybox-static`", err)
	}
	img, err := layeredImage([][]TarEntry{busyboxRootfs(bin)}, v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=" + DefaultPath},
	})
	if err != nil {
		t.Fatalf("testutil: build busybox image: %v", err)
	}
	busybox.img = img
	return img
}

// readStaticBusybox reads BusyboxPath and checks that it is a statically
// linked ELF executable for the running architecture.
func readStaticBusybox() ([]byte, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", BusyboxPath, err)
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%s is not an ELF binary: %w", BusyboxPath, err)
	}
	defer f.Close()
	if want, ok := goarchMachine[runtime.GOARCH]; ok && f.Machine != want {
		return nil, fmt.Errorf("%s is for %v, not %s", BusyboxPath, f.Machine, runtime.GOARCH)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("%s is dynamically linked (Debian's busybox, not busybox-static)", BusyboxPath)
		}
	}
	return bin, nil
}

var goarchMachine = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"386":     elf.EM_386,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"loong64": elf.EM_LOONGARCH,
}

func busyboxRootfs(bin []byte) []TarEntry {
	const (
		uid = 1000
		gid = 1000
	)
	dir := func(name string, mode int64) TarEntry {
		return TarEntry{Name: name, Type: tar.TypeDir, Mode: mode}
	}
	es := []TarEntry{
		dir("bin/", 0o755),
		{Name: "bin/busybox", Mode: 0o755, Content: bin},
	}
	for _, a := range BusyboxApplets {
		es = append(es, TarEntry{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox"})
	}
	es = append(es,
		dir("dev/", 0o755),
		dir("etc/", 0o755),
		TarEntry{Name: "etc/passwd", Content: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				BusyboxTestUser + ":x:1000:1000:" + BusyboxTestUser + ":/home/" + BusyboxTestUser + ":/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		TarEntry{Name: "etc/group", Content: []byte(
			"root:x:0:\n" +
				BusyboxTestUser + ":x:1000:\n" +
				"nogroup:x:65534:\n")},
		dir("home/", 0o755),
		TarEntry{Name: "home/" + BusyboxTestUser + "/", Type: tar.TypeDir, Mode: 0o755, UID: uid, GID: gid},
		dir("proc/", 0o755),
		dir("root/", 0o700),
		dir("sys/", 0o755),
		dir("tmp/", 0o1777),
		dir("var/", 0o755),
	)
	return es
}
