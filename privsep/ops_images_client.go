package privsep

import (
	"context"
	"io"
	"os"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
)

// History is engine.History through the helper.
func (c *Client) History(ctx context.Context, ref string) ([]engine.HistoryEntry, error) {
	var out []engine.HistoryEntry
	return out, c.do(ctx, OpImageHistory, RefArgs{Ref: ref}, &out)
}

// PruneImages is engine.PruneImages through the helper. keep cannot
// cross: with keep, this side lists the images, asks keep about each, and
// the helper may remove only those keep allowed (so an image stored
// meanwhile is never pruned by a filter that did not see it).
func (c *Client) PruneImages(ctx context.Context, all bool, keep func(engine.Image) bool) (engine.PruneReport, error) {
	args := ImagePruneArgs{All: all}
	if keep != nil {
		imgs, err := c.Images(ctx)
		if err != nil {
			return engine.PruneReport{}, err
		}
		args.Filtered, args.IDs = true, []string{}
		for _, img := range imgs {
			if id := img.Record.Config.String(); keep(img) && len(args.IDs) < MaxPruneIDs {
				args.IDs = append(args.IDs, id)
			}
		}
	}
	var out engine.PruneReport
	return out, c.do(ctx, OpImagePrune, args, &out)
}

// VerifyLogin is engine.VerifyLogin through the helper (whose fetcher
// child talks to the registry).
func (c *Client) VerifyLogin(ctx context.Context, server, username, password string) error {
	return c.do(ctx, OpImageLogin, LoginArgs{Server: server, Username: username, Password: password}, nil)
}

// Diff is engine.Diff through the helper.
func (c *Client) Diff(ctx context.Context, ref string) ([]engine.Change, error) {
	var out []engine.Change
	return out, c.do(ctx, OpContainerChanges, RefArgs{Ref: ref}, &out)
}

// ExportContainer is engine.ExportContainer through the helper: the tar
// comes back as stdout frames, written to w as they arrive.
func (c *Client) ExportContainer(ctx context.Context, ref string, w io.Writer) error {
	return c.doStream(ctx, OpContainerExport, RefArgs{Ref: ref}, nil, stdoutTo(w))
}

// Commit is engine.Commit through the helper.
func (c *Client) Commit(ctx context.Context, ref string, o engine.CommitOptions) (image.Record, error) {
	var out image.Record
	return out, c.do(ctx, OpContainerCommit, CommitArgs{Ref: ref, Reference: o.Reference, Changes: o.Changes, Comment: o.Comment, Author: o.Author, Pause: o.Pause}, &out)
}

// SaveImages is engine.SaveImages through the helper: the tar comes back
// as stdout frames, written to w as they arrive.
func (c *Client) SaveImages(ctx context.Context, refs []string, w io.Writer) error {
	return c.doStream(ctx, OpImageSave, SaveArgs{Refs: refs}, nil, stdoutTo(w))
}

// LoadImages is engine.LoadImages through the helper: r is copied into
// a pipe whose read end the request frame carries.
func (c *Client) LoadImages(ctx context.Context, r io.Reader, platform string) ([]engine.LoadedImage, error) {
	var out []engine.LoadedImage
	return out, c.withPipe(ctx, r, func(ctx context.Context) error {
		return c.do(ctx, OpImageLoad, LoadArgs{Platform: platform}, &out)
	})
}

// ImportImage is engine.ImportImage through the helper: r is copied into
// a pipe whose read end the request frame carries.
func (c *Client) ImportImage(ctx context.Context, r io.Reader, o engine.ImportOptions) (image.Record, error) {
	var out image.Record
	return out, c.withPipe(ctx, r, func(ctx context.Context) error {
		return c.do(ctx, OpImageImport, ImportArgs{Name: o.Name, Changes: o.Changes, Message: o.Message, Source: o.Source, Platform: o.Platform}, &out)
	})
}

// withPipe runs call with a context whose next request carries the read
// end of a pipe that r is copied into (the helper reads it to EOF), so
// the input is not bounded by MaxRequest.
func (c *Client) withPipe(ctx context.Context, r io.Reader, call func(context.Context) error) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	go func() {
		// Ends at r's EOF or error, or with EPIPE once the helper is done
		// and the read end is closed below.
		io.Copy(pw, r)
		pw.Close()
	}()
	err = call(withInput(ctx, pr))
	pr.Close()
	return err
}

// stdoutTo writes the data of stdout frames to w.
func stdoutTo(w io.Writer) func(Reply) error {
	return func(r Reply) error {
		if r.Kind != KindStdout {
			return nil
		}
		_, err := w.Write(r.Data)
		return err
	}
}
