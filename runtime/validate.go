package runtime

import (
	"os"
	"path/filepath"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// minMemory is the smallest memory limit Docker accepts: 6 MiB.
const minMemory = 6 << 20

// ValidateResources checks the resource limits of opts as Docker's daemon
// does at create, with its messages: a Memory other than 0 below 6 MiB
// (negative included), a MemorySwap other than -1 below Memory or set
// without Memory, NanoCPUs negative or beyond the CPUs the caller may
// run on, or between 0 and 0.01 CPU, a negative ShmSize. A negative
// PidsLimit is accepted (unlimited, as Docker treats it). Errors are
// errdefs.ErrInvalidArgument.
func ValidateResources(opts RunOptions) error {
	switch {
	case opts.Memory != 0 && opts.Memory < minMemory:
		return invalidf("Minimum memory limit allowed is 6MB")
	case opts.Memory > 0 && opts.MemorySwap > 0 && opts.MemorySwap < opts.Memory:
		return invalidf("Minimum memoryswap limit should be larger than memory limit, see usage")
	case opts.Memory == 0 && opts.MemorySwap > 0:
		return invalidf("You should always set the Memory limit when using Memoryswap limit, see usage")
	case opts.MemorySwap < -1:
		return invalidf("invalid memory swap limit: %d", opts.MemorySwap)
	case opts.ShmSize < 0:
		return invalidf("SHM size can not be less than 0")
	}
	// NumCPU counts the CPUs of the caller's affinity mask, as Docker's
	// sysinfo.NumCPU; the kernel's CFS quota has a floor of 1 ms per
	// 100 ms period, hence 0.01.
	if n := goruntime.NumCPU(); opts.NanoCPUs < 0 || opts.NanoCPUs > int64(n)*1e9 || (opts.NanoCPUs > 0 && opts.NanoCPUs < 1e7) {
		return invalidf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	}
	return nil
}

// ValidateBindSources checks that the source of every bind mount in
// mounts exists, except those listed in makeDirs (Docker's -v and
// HostConfig.Binds sources), which it creates as directories (mode
// 0755) when missing, as Docker does. A missing source gives
// errdefs.ErrInvalidArgument with Docker's message for --mount and
// HostConfig.Mounts: `invalid mount config for type "bind": bind source
// path does not exist: PATH`.
func ValidateBindSources(mounts []specs.Mount, makeDirs []string) error {
	create := map[string]bool{}
	for _, d := range makeDirs {
		create[filepath.Clean(d)] = true
	}
	for _, m := range mounts {
		if m.Type != "bind" {
			continue
		}
		if _, err := os.Stat(m.Source); err == nil || !os.IsNotExist(err) {
			continue
		}
		if !create[filepath.Clean(m.Source)] {
			return invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
		}
		if err := os.MkdirAll(m.Source, 0o755); err != nil {
			return invalidf("error while creating mount source path '%s': %v", m.Source, err)
		}
	}
	return nil
}
