package errtext

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/containerd/errdefs"
)

func TestOneLine(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("No such container: x: %w", errdefs.ErrNotFound), "No such container: x"},
		{fmt.Errorf("bad\n  input: %w", errdefs.ErrInvalidArgument), "bad input"},
		// An OS error's own words stay when the category is not carried.
		{&fs.PathError{Op: "open", Path: "/x", Err: errors.New("permission denied")}, "open /x: permission denied"},
		{errors.New("plain"), "plain"},
	} {
		if got := OneLine(c.err); got != c.want {
			t.Errorf("OneLine(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
