package privsep

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
)

type inputKey struct{}

// withInput makes the next call on ctx send f with its request frame
// (SCM_RIGHTS); the helper reads the op's input from it.
func withInput(ctx context.Context, f *os.File) context.Context {
	return context.WithValue(ctx, inputKey{}, f)
}

// inputOf is the descriptor withInput attached to ctx, or nil.
func inputOf(ctx context.Context) *os.File {
	f, _ := ctx.Value(inputKey{}).(*os.File)
	return f
}

// Top is engine.Top through the helper (which runs ps).
func (c *Client) Top(ctx context.Context, ref string, psArgs []string) (engine.TopResult, error) {
	var out engine.TopResult
	return out, c.do(ctx, OpContainerTop, TopArgs{Ref: ref, PsArgs: psArgs}, &out)
}

// Stats is engine.Stats through the helper: one reading per container,
// CPU sampled interval apart (at most 10 s).
func (c *Client) Stats(ctx context.Context, refs []string, interval time.Duration) ([]engine.Stats, error) {
	var out []engine.Stats
	return out, c.do(ctx, OpContainerStats, StatsArgs{Refs: refs, Interval: interval}, &out)
}

// Pause is engine.Pause through the helper.
func (c *Client) Pause(ctx context.Context, ref string) error {
	return c.do(ctx, OpContainerPause, RefArgs{Ref: ref}, nil)
}

// Unpause is engine.Unpause through the helper.
func (c *Client) Unpause(ctx context.Context, ref string) error {
	return c.do(ctx, OpContainerUnpause, RefArgs{Ref: ref}, nil)
}

// Rename is engine.Rename through the helper.
func (c *Client) Rename(ctx context.Context, ref, newName string) error {
	return c.do(ctx, OpContainerRename, RenameArgs{Ref: ref, Name: newName}, nil)
}

// StatContainerPath is engine.StatContainerPath through the helper.
func (c *Client) StatContainerPath(ctx context.Context, ref, p string, followLink bool) (engine.PathStat, error) {
	var out engine.PathStat
	return out, c.do(ctx, OpContainerPathStat, PathArgs{Ref: ref, Path: p, FollowLink: followLink}, &out)
}

// CopyFromContainer is engine.CopyFromContainer through the helper: the
// tar stream comes back as stdout frames and is written to w as it
// arrives.
func (c *Client) CopyFromContainer(ctx context.Context, ref, src string, o engine.CopyOptions, w io.Writer) error {
	return c.doStream(ctx, OpContainerCopyFrom, PathArgs{Ref: ref, Path: src, FollowLink: o.FollowLink, Rename: o.Rename, KeepOwner: o.KeepOwner}, nil,
		func(r Reply) error {
			if r.Kind != KindStdout {
				return nil
			}
			_, err := w.Write(r.Data)
			return err
		})
}

// CopyToContainer is engine.CopyToContainer through the helper: the
// request frame carries the read end of a pipe, and r is copied into its
// write end while the helper extracts. The tar stream is not bounded by
// MaxRequest.
func (c *Client) CopyToContainer(ctx context.Context, ref, dstDir string, r io.Reader, o engine.CopyOptions) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	go func() {
		// Ends at r's EOF or error, or with EPIPE once the helper is done
		// and the read end below is closed: a truncated stream is the
		// helper's error (a malformed tar), trailing bytes it did not
		// need are no error.
		io.Copy(pw, r)
		pw.Close()
	}()
	err = c.do(withInput(ctx, pr), OpContainerCopyTo, CopyToArgs{Ref: ref, Path: dstDir, KeepOwner: o.KeepOwner}, nil)
	pr.Close()
	return err
}

// ConnectNetwork is engine.ConnectNetwork through the helper.
func (c *Client) ConnectNetwork(ctx context.Context, netRef, ctrRef string, o engine.ConnectOptions) error {
	return c.do(ctx, OpNetworkConnect, ConnectArgs{Network: netRef, Container: ctrRef, IP: o.IP, Aliases: o.Aliases}, nil)
}

// DisconnectNetwork is engine.DisconnectNetwork through the helper.
func (c *Client) DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error {
	return c.do(ctx, OpNetworkDisconnect, DisconnectArgs{Network: netRef, Container: ctrRef, Force: force}, nil)
}

// Push is engine.Push through the helper; progress lines go to
// o.Progress. o.Insecure is the helper's own (its engine options); an
// o.Keychain that is an image.Credential (the API client's
// X-Registry-Auth) crosses as the request's credential, any other
// keychain is this process's and the helper uses root's config.json.
func (c *Client) Push(ctx context.Context, ref string, o engine.PushOptions) (engine.PushResult, error) {
	var out engine.PushResult
	return out, c.doStream(ctx, OpImagePush, PushArgs{Ref: ref, Auth: image.CredentialOf(o.Keychain)}, &out, progressTo(o.Progress))
}
