package fetcher

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestClassify: registry answers become one line naming the image, with
// the registry's error code spelled as Docker prints it, in the right
// errdefs category.
func TestClassify(t *testing.T) {
	named, err := reference.ParseNormalizedNamed("127.0.0.1:5000/app:1")
	if err != nil {
		t.Fatal(err)
	}
	regErr := func(status int, code transport.ErrorCode, msg string) error {
		return &transport.Error{StatusCode: status, Errors: []transport.Diagnostic{{Code: code, Message: msg}}}
	}
	for _, tc := range []struct {
		err  error
		cat  error
		want string
	}{
		{regErr(http.StatusNotFound, transport.ManifestUnknownErrorCode, "manifest unknown"), errdefs.ErrNotFound,
			"manifest for 127.0.0.1:5000/app:1 not found: manifest unknown: manifest unknown"},
		{regErr(http.StatusUnauthorized, transport.UnauthorizedErrorCode, "authentication required"), errdefs.ErrUnauthenticated,
			"pull access denied for 127.0.0.1:5000/app, repository does not exist or may require 'berth login': unauthorized: authentication required"},
		{regErr(http.StatusInternalServerError, transport.UnknownErrorCode, "boom"), errdefs.ErrUnavailable,
			"pulling 127.0.0.1:5000/app:1: registry answered 500: unknown: boom"},
		{fmt.Errorf("layer sha256:ab: the registry sent 1 of 2 bytes: %w", errTruncated), errdefs.ErrUnavailable,
			"pulling 127.0.0.1:5000/app:1: layer sha256:ab: the registry sent 1 of 2 bytes: transfer cut short"},
	} {
		got := classify(named, tc.err)
		if !errors.Is(got, tc.cat) {
			t.Errorf("classify(%v) = %v, not in category %v", tc.err, got, tc.cat)
		}
		if msg := strings.TrimSuffix(got.Error(), ": "+tc.cat.Error()); msg != tc.want {
			t.Errorf("classify(%v):\n got %q\nwant %q", tc.err, msg, tc.want)
		}
	}
}
