// Package wire holds the HTTP conventions of the Docker Engine API that
// every handler of package api follows: errors as {"message": …} with a
// status chosen from the error's errdefs category in one place (Status),
// JSON replies, query flags and numbers read as dockerd reads them, and
// bounded request bodies.
package wire

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berthproject/berth/internal/errtext"
	"github.com/containerd/errdefs"
)

// Status is the one place where an errdefs category becomes an HTTP
// status, as dockerd maps its own error classes: not found 404, conflict
// and already-exists 409, invalid argument and failed precondition 400,
// not implemented 501, unavailable 503, permission denied 403,
// unauthenticated 401, a client gone away 499, and 500 only for what is
// a real server fault.
func Status(err error) int {
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

// Message is err's text on one line without an errdefs category's
// suffix (internal/errtext): clients see messages as from dockerd.
func Message(err error) string { return errtext.OneLine(err) }

// ErrorResponse is Docker's error body.
type ErrorResponse struct {
	Message string `json:"message"`
}

// Error sends err as Docker's {"message": …} with its Status.
func Error(w http.ResponseWriter, err error) {
	JSON(w, Status(err), ErrorResponse{Message: Message(err)})
}

// JSON sends v as JSON with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	JSONBody(w, v)
}

// JSONBody encodes v after the header has gone out.
func JSONBody(w http.ResponseWriter, v any) {
	json.NewEncoder(w).Encode(v)
}

// Flush pushes buffered output to the client.
func Flush(w http.ResponseWriter) {
	http.NewResponseController(w).Flush()
}

// Err is an error with exactly the message msg (no category suffix)
// that errors.Is the errdefs category cat.
func Err(cat error, msg string) error { return &categorized{msg: msg, cat: cat} }

// Invalid is an errdefs.ErrInvalidArgument with the message msg (400).
func Invalid(msg string) error { return Err(errdefs.ErrInvalidArgument, msg) }

// NotFound is an errdefs.ErrNotFound with the message msg (404).
func NotFound(msg string) error { return Err(errdefs.ErrNotFound, msg) }

type categorized struct {
	msg string
	cat error
}

func (c *categorized) Error() string { return c.msg }
func (c *categorized) Unwrap() error { return c.cat }

// Bool reads a query flag as dockerd does: absent, "", "0", "no",
// "false" and "none" are false; anything else is true.
func Bool(r *http.Request, name string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(name))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// Int reads an integer query parameter; def when absent. A malformed
// value gives errdefs.ErrInvalidArgument.
func Int(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, Invalid("invalid value for " + name + ": " + v)
	}
	return n, nil
}

// TermSize reads a resize request's terminal size: h rows, w columns,
// each 0..65535 (errdefs.ErrInvalidArgument otherwise).
func TermSize(r *http.Request) (height, width uint16, err error) {
	h, err1 := Int(r, "h", 0)
	w, err2 := Int(r, "w", 0)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	if h < 0 || w < 0 || h > 65535 || w > 65535 {
		return 0, 0, Invalid("invalid terminal size " + strconv.Itoa(h) + "x" + strconv.Itoa(w))
	}
	return uint16(h), uint16(w), nil
}

// MaxBody bounds JSON request bodies (bytes).
const MaxBody = 8 << 20

// Body reads the request body, at most MaxBody bytes
// (errdefs.ErrInvalidArgument beyond).
func Body(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, Invalid("reading request body: " + err.Error())
	}
	if len(data) > MaxBody {
		return nil, Invalid("request body too large")
	}
	return data, nil
}

// DecodeOptional decodes a JSON body into v; an empty body leaves v as
// is. Malformed JSON gives errdefs.ErrInvalidArgument.
func DecodeOptional(r *http.Request, v any) error {
	body, err := Body(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return Invalid("invalid JSON: " + err.Error())
	}
	return nil
}
