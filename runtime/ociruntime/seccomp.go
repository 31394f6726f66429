package ociruntime

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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
// as usual; its program is then kept under BPFCache, named by a digest of
// the profile and of the crun binary, and every later container with the
// same profile gets it in the annotation. config.json keeps linux.seccomp
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
	if prog, err := os.ReadFile(filepath.Join(r.BPFCache, key)); err == nil && validBPF(prog) {
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
// runs once the container exists: crun has written the program before it
// starts the container's process. Failures only lose the cache entry.
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
	_, err = tmp.Write(prog)
	if cerr := tmp.Close(); err == nil && cerr == nil {
		err = os.Rename(tmp.Name(), filepath.Join(r.BPFCache, v.(string)))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
}

// validBPF reports whether prog can be a classic BPF program: a whole,
// non-zero number of 8-byte instructions, at most BPF_MAXINSNS (4096).
func validBPF(prog []byte) bool {
	return len(prog) > 0 && len(prog)%8 == 0 && len(prog)/8 <= 4096
}

// binaryIdentity is what the cache key knows of the runtime binary at
// path: its path, size and modification time (an upgrade changes it).
func binaryIdentity(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s %d %d", path, fi.Size(), fi.ModTime().UnixNano())
}
