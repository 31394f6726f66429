package wire

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/containerd/errdefs"
)

func TestStatusOf(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{errdefs.ErrNotFound, 404},
		{fmt.Errorf("x: %w", errdefs.ErrConflict), 409},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrInvalidArgument, 400},
		{errdefs.ErrNotImplemented, 501},
		{errdefs.ErrUnavailable, 503},
		{errdefs.ErrPermissionDenied, 403},
		{errdefs.ErrUnauthenticated, 401},
		{errors.New("disk on fire"), 500},
	}
	for _, c := range cases {
		if got := Status(c.err); got != c.want {
			t.Errorf("Status(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestMessageDropsCategory(t *testing.T) {
	err := fmt.Errorf("No such container: abc: %w", errdefs.ErrNotFound)
	if got := Message(err); got != "No such container: abc" {
		t.Errorf("Message = %q", got)
	}
	if got := Message(Err(errdefs.ErrConflict, "in\nuse")); got != "in use" {
		t.Errorf("Message of a categorized error = %q", got)
	}
}

func TestParams(t *testing.T) {
	r := httptest.NewRequest("POST", "/x?a=1&b=false&c=none&d=yes&h=24&w=80&bad=x", nil)
	for name, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "missing": false} {
		if got := Bool(r, name); got != want {
			t.Errorf("Bool(%s) = %v, want %v", name, got, want)
		}
	}
	if _, err := Int(r, "bad", 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("Int of a malformed value: %v", err)
	}
	if h, w, err := TermSize(r); err != nil || h != 24 || w != 80 {
		t.Errorf("TermSize = %d %d %v", h, w, err)
	}
	for _, q := range []string{"h=-1&w=1", "h=1&w=65536", "h=x"} {
		if _, _, err := TermSize(httptest.NewRequest("POST", "/x?"+q, nil)); !errdefs.IsInvalidArgument(err) {
			t.Errorf("TermSize(%s): %v, want invalid argument", q, err)
		}
	}
}
