package image

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParsePlatform parses "os/arch[/variant]", "os" (this host's
// architecture) or "arch" (linux), as containerd's platforms.Parse that
// Docker uses: "arm64" is linux/arm64. Case is ignored and the usual
// architecture aliases are normalized (x86_64 → amd64, aarch64 → arm64).
// Anything else gives errdefs.ErrInvalidArgument.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	bad := len(parts) > 3
	for _, p := range parts {
		bad = bad || p == ""
	}
	if bad {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q (want os/arch[/variant]): %w", s, errdefs.ErrInvalidArgument)
	}
	if len(parts) == 1 {
		if knownOS[parts[0]] {
			parts = append(parts, runtime.GOARCH)
		} else {
			parts = []string{"linux", parts[0]}
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	}
	if !knownOS[p.OS] {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: unknown operating system %q: %w", s, p.OS, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// knownOS are the GOOS values a platform may name.
var knownOS = map[string]bool{"linux": true, "windows": true, "darwin": true, "freebsd": true, "netbsd": true, "openbsd": true, "solaris": true, "illumos": true, "aix": true, "plan9": true, "android": true, "ios": true, "dragonfly": true, "js": true, "wasip1": true}

// FormatPlatform writes p as "os/arch[/variant]".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
