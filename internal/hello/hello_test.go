package hello

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

func TestProgramIsValidELF(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		p, err := Program(arch)
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.NewFile(bytes.NewReader(p))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
		if f.Machine != want || f.Type != elf.ET_EXEC || len(f.Progs) != 1 {
			t.Fatalf("%s: machine %v type %v progs %d", arch, f.Machine, f.Type, len(f.Progs))
		}
		if !bytes.HasSuffix(p, []byte(Greeting)) {
			t.Fatalf("%s: greeting not at the end", arch)
		}
	}
	if _, err := Program("mips"); err == nil {
		t.Fatal("want an error for an unknown architecture")
	}
}

func TestProgramRunsNatively(t *testing.T) {
	p, err := Program(runtime.GOARCH)
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(path, p, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path).Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if string(out) != Greeting {
		t.Fatalf("got %q", out)
	}
}
