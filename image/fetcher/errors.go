package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Categories lists, in matching order, the category names an error frame
// carries and the errors they stand for ("canceled" is context.Canceled,
// which errdefs.IsCanceled matches). A name not listed decodes as
// errdefs.ErrUnknown.
var Categories = []struct {
	Name string
	Err  error
}{
	{"not-found", errdefs.ErrNotFound},
	{"invalid-argument", errdefs.ErrInvalidArgument},
	{"unauthenticated", errdefs.ErrUnauthenticated},
	{"permission-denied", errdefs.ErrPermissionDenied},
	{"unavailable", errdefs.ErrUnavailable},
	{"data-loss", errdefs.ErrDataLoss},
	{"not-implemented", errdefs.ErrNotImplemented},
	{"failed-precondition", errdefs.ErrFailedPrecondition},
	{"aborted", errdefs.ErrAborted},
	{"canceled", context.Canceled},
	{"unknown", errdefs.ErrUnknown},
}

// RemoteError is an error the fetcher reported. It matches (errors.Is) its
// errdefs category, and its text is the fetcher's one line followed by the
// category, exactly as fmt.Errorf("%s: %w", Message, category) would give.
type RemoteError struct {
	Message  string
	Category error
}

func (e *RemoteError) Error() string { return e.Message + ": " + e.Category.Error() }
func (e *RemoteError) Unwrap() error { return e.Category }

// errorFrame turns err into an error frame: the first category err matches
// and its text without that category's suffix.
func errorFrame(err error) Frame {
	c := Categories[len(Categories)-1]
	for _, cc := range Categories {
		if errors.Is(err, cc.Err) {
			c = cc
			break
		}
	}
	msg := strings.TrimSuffix(oneLine(err), ": "+c.Err.Error())
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	return Frame{Type: TypeError, Category: c.Name, Message: msg}
}

// frameError is the parent's side of errorFrame.
func frameError(f Frame) error {
	var c error = errdefs.ErrUnknown
	for _, cc := range Categories {
		if cc.Name == f.Category {
			c = cc.Err
		}
	}
	return &RemoteError{Message: f.Message, Category: c}
}

// classify turns registry and network errors into one line naming the
// image and an errdefs category: 401/403 → ErrUnauthenticated, 404 →
// ErrNotFound, 5xx, unreachable and a blob body cut short → ErrUnavailable,
// content that does not hash to its digest → ErrDataLoss. Errors already in a category keep it.
func classify(named reference.Named, err error) error {
	fam := reference.FamiliarString(named)
	var terr *transport.Error
	var nerr net.Error
	switch {
	case errors.As(err, &terr):
		msg := terr.Error()
		if len(terr.Errors) > 0 {
			msg = terr.Errors[0].Message
			if msg == "" {
				msg = string(terr.Errors[0].Code)
			}
			// As Docker prints a registry error code: "manifest unknown: …".
			msg = strings.ToLower(strings.ReplaceAll(string(terr.Errors[0].Code), "_", " ")) + ": " + msg
		}
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'berth login': %s: %w", reference.FamiliarName(named), msg, errdefs.ErrUnauthenticated)
		case terr.StatusCode == http.StatusNotFound:
			return fmt.Errorf("manifest for %s not found: %s: %w", fam, msg, errdefs.ErrNotFound)
		case terr.StatusCode >= 500:
			return fmt.Errorf("pulling %s: registry answered %d: %s: %w", fam, terr.StatusCode, msg, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("pulling %s: %s: %w", fam, msg, errdefs.ErrUnknown)
	case errdefs.IsNotFound(err), errdefs.IsNotImplemented(err), errdefs.IsDataLoss(err), errdefs.IsInvalidArgument(err),
		errors.Is(err, errTruncated):
		return fmt.Errorf("pulling %s: %w", fam, err)
	case errors.As(err, &nerr), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("pulling %s: registry unreachable: %v: %w", fam, oneLine(err), errdefs.ErrUnavailable)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("pulling %s: %w", fam, err)
	}
	if strings.Contains(err.Error(), "computed digest") || strings.Contains(err.Error(), "digest mismatch") {
		return fmt.Errorf("pulling %s: %v: %w", fam, oneLine(err), errdefs.ErrDataLoss)
	}
	return fmt.Errorf("pulling %s: %v: %w", fam, oneLine(err), errdefs.ErrUnknown)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
