package images

import (
	"strings"
	"testing"
)

// TestCheckTagRefs: tag's arguments are checked as Docker's client does,
// with its wording.
func TestCheckTagRefs(t *testing.T) {
	for _, c := range []struct {
		src, dst, want string // want "" for no error
	}{
		{"busybox", "127.0.0.1:5000/x:1", ""},
		{"sha256:" + strings.Repeat("a", 64), "x", ""},
		{"busybox", "Bad:Tag", `Error parsing reference: "Bad:Tag" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase`},
		{"Bad:Src", "x", `Error parsing reference: "Bad:Src" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase`},
		{"busybox", "x:a@b", `Error parsing reference: "x:a@b" is not a valid repository/tag: invalid reference format`},
		{"busybox", "x@sha256:" + strings.Repeat("a", 64), "refusing to create a tag with a digest reference"},
	} {
		err := checkTagRefs(c.src, c.dst)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %s: %v", c.src, c.dst, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s %s: %v, want %q", c.src, c.dst, err, c.want)
		}
	}
}
