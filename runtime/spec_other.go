//go:build !linux

package runtime

import specs "github.com/opencontainers/runtime-spec/specs-go"

// currentHost describes a non-Linux host: Spec still produces a Linux
// config (for a Linux VM or remote runtime), without seccomp or host
// devices, assuming every capability is available.
func currentHost() *hostInfo {
	return &hostInfo{
		caps:         append([]string(nil), knownCapabilities...),
		sysctlExists: func(string) bool { return true },
		devices:      func() ([]specs.LinuxDevice, error) { return nil, nil },
		seccomp:      func(*specs.Spec) (*specs.LinuxSeccomp, error) { return nil, nil },
	}
}
