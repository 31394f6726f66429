package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
)

// statusOf is the one place where an errdefs category becomes an HTTP
// status, as dockerd maps its own error classes: not found 404, conflict
// and already-exists 409, invalid argument 400, not implemented 501,
// unavailable 503, permission denied 403, unauthenticated 401, and 500
// only for what is a real server fault.
func statusOf(err error) int {
	switch {
	case errdefs.IsNotFound(err):
		return http.StatusNotFound
	case errdefs.IsConflict(err), errdefs.IsAlreadyExists(err):
		return http.StatusConflict
	case errdefs.IsInvalidArgument(err), errdefs.IsFailedPrecondition(err):
		return http.StatusBadRequest
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case errdefs.IsPermissionDenied(err):
		return http.StatusForbidden
	case errdefs.IsUnauthorized(err):
		return http.StatusUnauthorized
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errdefs.IsCanceled(err):
		return 499 // client went away; nobody reads it
	}
	return http.StatusInternalServerError
}

// categorySuffixes are the texts errdefs categories append when wrapped
// with %w; clients see messages without them, as from dockerd.
var categorySuffixes = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict,
	errdefs.ErrUnavailable, errdefs.ErrDataLoss, errdefs.ErrNotImplemented, errdefs.ErrFailedPrecondition,
	errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated, errdefs.ErrUnknown, errdefs.ErrAborted,
}

// message is err's text on one line without the category suffix.
func message(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	for _, c := range categorySuffixes {
		msg = strings.TrimSuffix(msg, ": "+c.Error())
	}
	return msg
}

// errorResponse is Docker's error body.
type errorResponse struct {
	Message string `json:"message"`
}

// writeError sends err as Docker's {"message": …} with its status.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), errorResponse{Message: message(err)})
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// invalidf is an ErrInvalidArgument with a message.
func invalid(msg string) error {
	return &categorized{msg: msg, cat: errdefs.ErrInvalidArgument}
}

type categorized struct {
	msg string
	cat error
}

func (c *categorized) Error() string { return c.msg }
func (c *categorized) Unwrap() error { return c.cat }

// writeJSONBody encodes v after the header has gone out.
func writeJSONBody(w http.ResponseWriter, v any) {
	json.NewEncoder(w).Encode(v)
}
