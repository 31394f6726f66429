package ociruntime

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSeccompProgramCache: the program crun wrote for the first container
// with a profile is kept and handed to the next containers with the same
// profile (and only those) in crun's annotation; a file that cannot be a
// BPF program is not kept.
func TestSeccompProgramCache(t *testing.T) {
	r := &Runtime{Root: t.TempDir(), BPFCache: filepath.Join(t.TempDir(), "bpf"), crun: true, Binary: "/nonexistent/crun"}
	profile := func(action specs.LinuxSeccompAction) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: action,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno}}}}}
	}
	compiled := func(id string, prog []byte) {
		if err := os.MkdirAll(filepath.Join(r.Root, id), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.Root, id, "seccomp.bpf"), prog, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// ld [4] (the architecture); ret ALLOW: two struct sock_filter.
	prog := []byte{0x20, 0, 0, 0, 4, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}

	first := profile(specs.ActAllow)
	r.AdjustSpec("c1", first)
	if _, ok := first.Annotations[bpfAnnotation]; ok {
		t.Fatal("annotation set before any program was kept")
	}
	compiled("c1", prog)
	r.keepBPF("c1")

	second := profile(specs.ActAllow)
	r.AdjustSpec("c2", second)
	if got := second.Annotations[bpfAnnotation]; got != base64.StdEncoding.EncodeToString(prog) {
		t.Fatalf("annotation %q, want the kept program", got)
	}
	if second.Linux.Seccomp == nil {
		t.Fatal("the profile was dropped from the spec")
	}

	other := profile(specs.ActErrno)
	r.AdjustSpec("c3", other)
	if _, ok := other.Annotations[bpfAnnotation]; ok {
		t.Fatal("another profile got the kept program")
	}
	compiled("c3", []byte("1234567")) // not whole instructions
	r.keepBPF("c3")
	r.AdjustSpec("c4", profile(specs.ActErrno))
	if entries, _ := os.ReadDir(r.BPFCache); len(entries) != 1 {
		t.Fatalf("cache holds %d entries, want the one valid program", len(entries))
	}

	// A damaged entry (a flipped byte, a truncation) or one that is not a
	// regular file is not used; a damaged one is removed.
	entry := filepath.Join(r.BPFCache, func() string { k, _ := r.bpfCacheKey(first.Linux.Seccomp); return k }())
	good, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{"flipped": append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), "truncated": good[:len(good)-8]} {
		if err := os.WriteFile(entry, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		s := profile(specs.ActAllow)
		r.AdjustSpec("c6", s)
		if _, ok := s.Annotations[bpfAnnotation]; ok {
			t.Errorf("%s entry used", name)
		}
		if _, err := os.Stat(entry); !os.IsNotExist(err) {
			t.Errorf("%s entry kept", name)
		}
	}
	target := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(target, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, entry); err != nil {
		t.Fatal(err)
	}
	viaLink := profile(specs.ActAllow)
	r.AdjustSpec("c7", viaLink)
	if viaLink.Annotations[bpfAnnotation] != "" {
		t.Error("an entry reached through a symlink was used")
	}

	// Not crun (no cache): nothing changes.
	plain := &Runtime{Root: t.TempDir()}
	s := profile(specs.ActAllow)
	plain.AdjustSpec("c5", s)
	if s.Annotations != nil {
		t.Fatal("a runtime without a cache annotated the spec")
	}
}
