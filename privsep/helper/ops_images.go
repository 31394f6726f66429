package helper

import (
	"context"
	"fmt"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/privsep"
	"github.com/containerd/errdefs"
)

// The rules and the handlers of the image ops (privsep's ops_images.go:
// history, prune, login, save, load, import, diff, export, commit), as
// SPEC.md states them.

// Bounds of the image ops' arguments, in entries and bytes.
const (
	maxSaveRefs     = 256
	maxChanges      = 256
	maxChangeBytes  = 8 << 10
	maxTextBytes    = 8 << 10  // a comment, author, message or source
	maxSecretBytes  = 64 << 10 // one credential field
	maxServerBytes  = 255
	dockerHubServer = engine.DockerHubServer
)

var (
	fullImageID = pattern(`^sha256:[0-9a-f]{64}$`)
	// registryHost is a registry as `docker login` keys it: host[:port].
	registryHost = pattern(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
)

// checkText accepts free text of at most max bytes without NUL.
func checkText(what, s string, max int) error {
	if len(s) > max || strings.ContainsRune(s, 0) {
		return bad("%s: %d bytes or NUL (at most %d)", what, len(s), max)
	}
	return nil
}

// checkChanges accepts Dockerfile instructions for commit and import: at
// most 256, each at most 8 KiB without NUL (the engine parses them).
func checkChanges(what string, changes []string) error {
	if len(changes) > maxChanges {
		return bad("%s: %d changes, at most %d", what, len(changes), maxChanges)
	}
	for _, c := range changes {
		if err := checkText(what+": change", c, maxChangeBytes); err != nil {
			return err
		}
	}
	return nil
}

// checkNewName accepts the name an op gives a new image: empty
// (dangling) or a reference that is not an image ID.
func checkNewName(what, s string) error {
	if s == "" {
		return nil
	}
	if imageID.MatchString(s) {
		return bad("%s: %.80q is an image ID, not a name", what, s)
	}
	return checkImage(what, s)
}

// checkPlatform accepts "" or os/arch[/variant].
func checkPlatform(what, p string) error {
	if p != "" && !platformStr.MatchString(p) {
		return bad("%s: invalid platform %.40q", what, p)
	}
	return nil
}

// checkCredential accepts a request's registry credential (pull, push):
// absent, or fields of at most 64 KiB without NUL.
func checkCredential(what string, c *image.Credential) error {
	if c == nil {
		return nil
	}
	for _, f := range []string{c.Username, c.Password, c.Auth, c.IdentityToken, c.RegistryToken} {
		if len(f) > maxSecretBytes || strings.ContainsRune(f, 0) {
			return bad("%s: malformed credential", what)
		}
	}
	return nil
}

// validateImageOp checks the arguments of the ops privsep.IsImageOp
// names; ok is false for any other op.
func validateImageOp(op privsep.Op, args any) (err error, ok bool) {
	if !privsep.IsImageOp(op) {
		return nil, false
	}
	switch a := args.(type) {
	case *privsep.RefArgs:
		if op == privsep.OpImageHistory {
			return checkImage("history", a.Ref), true
		}
		return checkName(string(op), a.Ref), true
	case *privsep.ImagePruneArgs:
		if !a.Filtered && len(a.IDs) > 0 {
			return bad("image.prune: IDs without filtered"), true
		}
		if len(a.IDs) > privsep.MaxPruneIDs {
			return bad("image.prune: %d IDs, at most %d", len(a.IDs), privsep.MaxPruneIDs), true
		}
		for _, id := range a.IDs {
			if !fullImageID.MatchString(id) {
				return bad("image.prune: not an image ID: %.80q", id), true
			}
		}
		return nil, true
	case *privsep.LoginArgs:
		if len(a.Server) > maxServerBytes || a.Server != dockerHubServer && !registryHost.MatchString(a.Server) {
			return bad("login: invalid registry %.80q", a.Server), true
		}
		if err := checkText("login: username", a.Username, maxTextBytes); err != nil {
			return err, true
		}
		return checkText("login: password", a.Password, maxSecretBytes), true
	case *privsep.SaveArgs:
		if len(a.Refs) == 0 || len(a.Refs) > maxSaveRefs {
			return bad("image.save: %d images, want 1..%d", len(a.Refs), maxSaveRefs), true
		}
		for _, r := range a.Refs {
			if err := checkImage("image.save", r); err != nil {
				return err, true
			}
		}
		return nil, true
	case *privsep.LoadArgs:
		return checkPlatform("image.load", a.Platform), true
	case *privsep.ImportArgs:
		for _, t := range []string{a.Message, a.Source} {
			if err := checkText("image.import", t, maxTextBytes); err != nil {
				return err, true
			}
		}
		if err := checkPlatform("image.import", a.Platform); err != nil {
			return err, true
		}
		if err := checkChanges("image.import", a.Changes); err != nil {
			return err, true
		}
		return checkNewName("image.import", a.Name), true
	case *privsep.CommitArgs:
		for _, t := range []string{a.Comment, a.Author} {
			if err := checkText("commit", t, maxTextBytes); err != nil {
				return err, true
			}
		}
		if err := checkChanges("commit", a.Changes); err != nil {
			return err, true
		}
		if err := checkNewName("commit", a.Reference); err != nil {
			return err, true
		}
		return checkName("commit", a.Ref), true
	}
	return bad("no validation rule for %s", op), true
}

// runImageOp runs the ops privsep.IsImageOp names; ok is false for any
// other op. Those that store or remove images run to completion even if
// the client goes away; save and export stream the tar as stdout frames;
// load and import read the descriptor the request carried (TakeInput
// required it).
func (h *Helper) runImageOp(ctx context.Context, req Request, s *sender) (res any, err error, ok bool) {
	if !privsep.IsImageOp(req.Op) {
		return nil, nil, false
	}
	e := h.Engine
	keep := context.WithoutCancel(ctx)
	switch a := req.Args.(type) {
	case *privsep.RefArgs:
		switch req.Op {
		case privsep.OpImageHistory:
			res, err = e.History(ctx, a.Ref)
		case privsep.OpContainerChanges:
			res, err = e.Diff(ctx, a.Ref)
		case privsep.OpContainerExport:
			err = e.ExportContainer(ctx, a.Ref, s.stream(privsep.KindStdout))
		default:
			err = fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
		}
	case *privsep.ImagePruneArgs:
		var only func(engine.Image) bool
		if a.Filtered {
			allowed := map[string]bool{}
			for _, id := range a.IDs {
				allowed[id] = true
			}
			only = func(img engine.Image) bool { return allowed[img.Record.Config.String()] }
		}
		res, err = e.PruneImages(keep, a.All, only)
	case *privsep.LoginArgs:
		err = e.VerifyLogin(ctx, a.Server, a.Username, a.Password)
	case *privsep.SaveArgs:
		err = e.SaveImages(ctx, a.Refs, s.stream(privsep.KindStdout))
	case *privsep.LoadArgs:
		if s.in == nil {
			return nil, bad("image.load: no input"), true
		}
		res, err = e.LoadImages(keep, s.in, a.Platform)
	case *privsep.ImportArgs:
		if s.in == nil {
			return nil, bad("image.import: no input"), true
		}
		res, err = e.ImportImage(keep, s.in, engine.ImportOptions{Name: a.Name, Changes: a.Changes, Message: a.Message, Source: a.Source, Platform: a.Platform})
	case *privsep.CommitArgs:
		res, err = e.Commit(keep, a.Ref, engine.CommitOptions{Reference: a.Reference, Changes: a.Changes, Comment: a.Comment, Author: a.Author, Pause: a.Pause})
	default:
		err = fmt.Errorf("no handler for %s: %w", req.Op, errdefs.ErrNotImplemented)
	}
	return res, err, true
}
