// Package errtext renders an error as users and API clients see it.
package errtext

import (
	"errors"
	"strings"

	"github.com/containerd/errdefs"
)

// categories are the errdefs categories whose text ("not found",
// "invalid argument" …) an error wrapped with %w ends with.
var categories = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict,
	errdefs.ErrUnavailable, errdefs.ErrDataLoss, errdefs.ErrNotImplemented, errdefs.ErrFailedPrecondition,
	errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated, errdefs.ErrUnknown, errdefs.ErrAborted,
}

// OneLine is err's text on one line (runs of white space, newlines
// included, become one space) without the suffix an errdefs category
// adds when it is wrapped with %w — only when err really carries that
// category, so an OS error's own "permission denied" stays. This is the
// message the berth CLI prints and the API sends as {"message": …}, as
// Docker's carry no category.
func OneLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	for _, c := range categories {
		if s := ": " + c.Error(); strings.HasSuffix(msg, s) && errors.Is(err, c) {
			return strings.TrimSuffix(msg, s)
		}
	}
	return msg
}
