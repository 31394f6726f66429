package image

import (
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest"},
		{"127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"},
		{"localhost/hello", "localhost/hello:latest"},
		{"busybox@" + d, "docker.io/library/busybox@" + d},
		{"127.0.0.1:5000/busybox:latest@" + d, "127.0.0.1:5000/busybox@" + d},
	}
	for _, c := range cases {
		got, err := ParseReference(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("ParseReference(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"BusyBox", "a:b:c", "bad ref!!", ":tag", "busybox@sha256:abc", ""} {
		_, err := ParseReference(bad)
		if !errdefs.IsInvalidArgument(err) || !strings.HasPrefix(err.Error(), "invalid reference format") {
			t.Errorf("ParseReference(%q): %v, want an invalid-argument error starting with \"invalid reference format\"", bad, err)
		}
		if err != nil && strings.Count(err.Error(), "invalid reference format") != 1 {
			t.Errorf("ParseReference(%q): %q repeats itself", bad, err)
		}
	}
}

func TestRepositoryTag(t *testing.T) {
	n, _ := ParseReference("busybox")
	if repo, tag := RepositoryTag(n); repo != "busybox" || tag != "latest" {
		t.Fatalf("got %s %s", repo, tag)
	}
}
