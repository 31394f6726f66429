package ociruntime

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Compiled seccomp filters (crun only).
//
// Turning a container's seccomp profile (Docker's default has ~370
// syscall rules) into a BPF program with libseccomp is the largest part of
// crun's work for a short container: ~35 ms of CPU of a ~70 ms run here.
// The program depends only on the profile, the architecture and the
// runtime build, and crun takes an already compiled program in the
// "run.oci.seccomp_bpf_data" annotation (base64 of the BPF instructions,
// loaded instead of compiling linux.seccomp). crun also writes the program
// it loads to its state directory (ROOT/ID/seccomp.bpf, which its exec
// reads). So the first container with a given profile is compiled by crun
// as usual; its program is then kept under BPFCache (behind its SHA-256,
// checked on every read), named by a digest of the profile, the crun
// binary and libseccomp, and every later container with the same profile
// gets it in the annotation. config.json keeps linux.seccomp
// as well, so what a container is allowed stays readable in its bundle.

// bpfAnnotation is the annotation crun reads a compiled filter from.
const bpfAnnotation = "run.oci.seccomp_bpf_data"

// bpfCacheKey names the cached program for profile: the hex SHA-256 of
// the profile's JSON and of the runtime's identity (path, size, mtime).
func (r *Runtime) bpfCacheKey(profile *specs.LinuxSeccomp) (string, error) {
	data, err := json.Marshal(profile)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	r.binaryIDOnce.Do(func() { r.binaryID = binaryIdentity(r.Binary) })
	fmt.Fprintf(h, "%s\x00%s\x00", r.binaryID, data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AdjustSpec prepares the config.json of container id before it is
// written (runtime.SpecAdjuster): with crun and a seccomp profile whose
// compiled program is cached, it sets the program in crun's annotation;
// otherwise it notes id so that Run or Start keeps the program crun
// compiles. Runtimes other than crun are left alone.
func (r *Runtime) AdjustSpec(id string, s *specs.Spec) {
	if r.BPFCache == "" || s.Linux == nil || s.Linux.Seccomp == nil {
		return
	}
	key, err := r.bpfCacheKey(s.Linux.Seccomp)
	if err != nil {
		return
	}
	if prog, ok := readBPF(filepath.Join(r.BPFCache, key)); ok {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[bpfAnnotation] = base64.StdEncoding.EncodeToString(prog)
		return
	}
	r.pendingBPF.Store(id, key)
}

// keepBPF stores the program crun compiled for container id (its state
// directory's seccomp.bpf) in the cache, if AdjustSpec asked for it. It
// runs once the pid file exists (run) or create has returned (start):
// crun writes the pid file only after it has written and closed the
// program (libcrun's run path generates the filter, then waits for the
// process, which writes the pid file first), so the file is whole. A
// program that is not a valid filter is not kept; failures only lose the
// cache entry.
func (r *Runtime) keepBPF(id string) {
	v, ok := r.pendingBPF.LoadAndDelete(id)
	if !ok {
		return
	}
	prog, err := os.ReadFile(filepath.Join(r.Root, id, "seccomp.bpf"))
	if err != nil || !validBPF(prog) {
		return
	}
	if os.MkdirAll(r.BPFCache, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(r.BPFCache, ".tmp-")
	if err != nil {
		return
	}
	sum := sha256.Sum256(prog)
	_, err = tmp.Write(append(sum[:], prog...))
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), filepath.Join(r.BPFCache, v.(string)))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// validBPF reports whether prog can be a classic BPF program: a whole,
// non-zero number of 8-byte instructions, at most BPF_MAXINSNS (4096),
// the last a return (BPF_RET|BPF_K or BPF_RET|BPF_A), as the kernel
// requires of a seccomp filter.
func validBPF(prog []byte) bool {
	if len(prog) == 0 || len(prog)%8 != 0 || len(prog)/8 > maxInsns {
		return false
	}
	code := binary.LittleEndian.Uint16(prog[len(prog)-8:]) // struct sock_filter's code, host order (amd64, arm64)
	return code == 0x06 || code == 0x16
}

const maxInsns = 4096

// readBPF reads a cache entry: a regular file (not followed through a
// symlink) holding the SHA-256 of the program and the program. A missing,
// oversized, damaged or invalid entry gives ok false (and a damaged one
// is removed, so that the next container's program replaces it).
func readBPF(path string) (prog []byte, ok bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, sha256.Size+8*maxInsns+1))
	if err != nil {
		return nil, false
	}
	if len(data) < sha256.Size {
		os.Remove(path)
		return nil, false
	}
	prog = data[sha256.Size:]
	if sum := sha256.Sum256(prog); !bytes.Equal(sum[:], data[:sha256.Size]) || !validBPF(prog) {
		os.Remove(path)
		return nil, false
	}
	return prog, true
}

// binaryIdentity is what the cache key knows of the runtime binary at
// path and of the libseccomp it compiles with: their paths, sizes and
// modification times (an upgrade of either changes it).
func binaryIdentity(path string) string {
	var b strings.Builder
	for _, p := range append([]string{path}, libseccompPaths()...) {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String()
}

// libseccompPaths are where distributions install libseccomp's shared
// library (Debian's multiarch directories, then the plain ones); a few
// stats, where a glob of /usr/lib/* would read every directory there.
func libseccompPaths() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu", "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu"}[goruntime.GOARCH]
	var out []string
	for _, dir := range []string{"/lib/" + triplet, "/usr/lib/" + triplet, "/usr/lib64", "/lib64", "/usr/lib", "/lib"} {
		out = append(out, filepath.Join(dir, "libseccomp.so.2"))
	}
	return out
}
