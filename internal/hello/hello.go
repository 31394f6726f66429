// Package hello makes Berth's built-in hello image: a one-layer image whose
// only file is /hello, a minimal static ELF program that writes a greeting
// to stdout and exits 0. It plays the part of Docker's hello-world, but is
// generated here so that `make run` works offline, with no registry.
//
// The program is a few instructions (write(1, msg, len); exit(0)) wrapped in
// an ELF64 header and one PT_LOAD program header; it needs no libc, loader
// or other file.
package hello

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Greeting is what /hello prints.
const Greeting = `
Hello from Berth!
This message shows that your installation appears to be working correctly.

To generate this message, Berth:
 1. found the built-in image "localhost/hello" (no registry was contacted),
 2. unpacked its one layer into an overlay snapshot,
 3. generated an OCI runtime bundle from the image config,
 4. ran it with an OCI runtime, in new namespaces, and streamed its output to your terminal.

Try something more ambitious: berth pull 127.0.0.1:5000/busybox (from a local registry),
then berth run --rm 127.0.0.1:5000/busybox echo hello
`

const (
	baseAddr   = 0x400000
	headerSize = 64 + 56 // ELF64 header + one program header
)

// code returns the machine code for write(1, msg, len(msg)); exit(0) for
// arch (GOARCH naming), with msg placed right after the code.
func code(arch string, msgLen int) ([]byte, error) {
	switch arch {
	case "amd64":
		c := []byte{
			0xb8, 0x01, 0, 0, 0, // mov eax, 1 (write)
			0xbf, 0x01, 0, 0, 0, // mov edi, 1 (stdout)
			0x48, 0x8d, 0x35, 0, 0, 0, 0, // lea rsi, [rip+rel32]
			0xba, 0, 0, 0, 0, // mov edx, len
			0x0f, 0x05, // syscall
			0xb8, 0x3c, 0, 0, 0, // mov eax, 60 (exit)
			0x31, 0xff, // xor edi, edi
			0x0f, 0x05, // syscall
		}
		// rel32 is counted from the end of the lea instruction (offset 17).
		binary.LittleEndian.PutUint32(c[13:], uint32(len(c)-17))
		binary.LittleEndian.PutUint32(c[18:], uint32(msgLen))
		return c, nil
	case "arm64":
		words := []uint32{
			0xd2800020,                     // mov x0, #1
			0x10000001,                     // adr x1, msg (offset filled below)
			0xd2800002 | uint32(msgLen)<<5, // mov x2, #len
			0xd2800808,                     // mov x8, #64 (write)
			0xd4000001,                     // svc #0
			0xd2800000,                     // mov x0, #0
			0xd2800ba8,                     // mov x8, #93 (exit)
			0xd4000001,                     // svc #0
		}
		off := uint32(len(words)*4 - 4) // from the adr (word 1) to msg
		words[1] |= (off&3)<<29 | (off>>2)<<5
		if msgLen >= 1<<16 {
			return nil, fmt.Errorf("greeting too long")
		}
		buf := new(bytes.Buffer)
		binary.Write(buf, binary.LittleEndian, words)
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("no built-in hello program for architecture %q", arch)
}

// Program returns the static ELF executable for arch ("amd64" or "arm64").
func Program(arch string) ([]byte, error) {
	c, err := code(arch, len(Greeting))
	if err != nil {
		return nil, err
	}
	machine := map[string]uint16{"amd64": 62, "arm64": 183}[arch]
	fileSize := uint64(headerSize + len(c) + len(Greeting))
	b := new(bytes.Buffer)
	le := binary.LittleEndian
	// ELF header.
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */, 1 /* version */, 0 /* SysV */})
	b.Write(make([]byte, 8))
	binary.Write(b, le, uint16(2))                   // e_type: EXEC
	binary.Write(b, le, machine)                     // e_machine
	binary.Write(b, le, uint32(1))                   // e_version
	binary.Write(b, le, uint64(baseAddr+headerSize)) // e_entry
	binary.Write(b, le, uint64(64))                  // e_phoff
	binary.Write(b, le, uint64(0))                   // e_shoff
	binary.Write(b, le, uint32(0))                   // e_flags
	binary.Write(b, le, uint16(64))                  // e_ehsize
	binary.Write(b, le, uint16(56))                  // e_phentsize
	binary.Write(b, le, uint16(1))                   // e_phnum
	binary.Write(b, le, uint16(64))                  // e_shentsize
	binary.Write(b, le, uint16(0))                   // e_shnum
	binary.Write(b, le, uint16(0))                   // e_shstrndx
	// Program header: one PT_LOAD of the whole file, read+execute.
	binary.Write(b, le, uint32(1))        // p_type: LOAD
	binary.Write(b, le, uint32(5))        // p_flags: R+X
	binary.Write(b, le, uint64(0))        // p_offset
	binary.Write(b, le, uint64(baseAddr)) // p_vaddr
	binary.Write(b, le, uint64(baseAddr)) // p_paddr
	binary.Write(b, le, fileSize)         // p_filesz
	binary.Write(b, le, fileSize)         // p_memsz
	binary.Write(b, le, uint64(0x1000))   // p_align
	b.Write(c)
	b.WriteString(Greeting)
	return b.Bytes(), nil
}
