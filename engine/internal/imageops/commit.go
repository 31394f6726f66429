package imageops

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/berthproject/berth/engine/internal/record"
	"github.com/berthproject/berth/image"
	"github.com/berthproject/berth/state"
	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// CommitOptions are `docker commit`'s flags.
type CommitOptions struct {
	// Reference names the new image ("" leaves it dangling).
	Reference string
	// Changes are Dockerfile instructions applied to the config (CMD,
	// ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR).
	Changes []string
	// Comment (-m) and Author (-a) go into the config and its history.
	Comment, Author string
	// Pause freezes a running container while its changes are read.
	Pause bool
}

// Commit makes and registers a new image from container c: its image
// plus the layer that layer returns (an uncompressed OCI layer tar of
// the container's changes, computed once the config is known to be
// valid), with the config changed by opts. Errors:
// errdefs.ErrNotFound when c's image is gone; errdefs.ErrInvalidArgument
// for a bad reference or change.
func (im *Images) Commit(ctx context.Context, c record.Container, opts CommitOptions, layer func() ([]byte, error)) (image.Record, error) {
	var base image.Record
	err := im.DB.View(ctx, func(tx *state.Tx) error {
		all, err := image.List(tx)
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.Config == c.ImageID {
				base = r
				return nil
			}
		}
		return fmt.Errorf("image %s of container %s: %w", shortID(c.ImageID), c.ShortID(), errdefs.ErrNotFound)
	})
	if err != nil {
		return image.Record{}, err
	}
	img, err := image.Stored(im.Content, base)
	if err != nil {
		return image.Record{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return image.Record{}, err
	}
	cf = cf.DeepCopy()
	containerConfigInto(c, &cf.Config)
	for _, ch := range opts.Changes {
		if err := applyChange(&cf.Config, ch); err != nil {
			return image.Record{}, err
		}
	}
	data, err := layer()
	if err != nil {
		return image.Record{}, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return image.Record{}, err
	}
	now := time.Now().UTC()
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{
		Created: v1.Time{Time: now}, Author: opts.Author, Comment: opts.Comment,
		CreatedBy: strings.Join(append([]string{c.Path}, c.Args...), " "),
	}})
	if err != nil {
		return image.Record{}, err
	}
	cf.Created, cf.Author, cf.Container = v1.Time{Time: now}, opts.Author, c.ID
	lcf, err := img.ConfigFile()
	if err != nil {
		return image.Record{}, err
	}
	cf.RootFS, cf.History = lcf.RootFS, lcf.History
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return image.Record{}, err
	}
	name := ""
	if opts.Reference != "" {
		named, err := image.ParseReference(opts.Reference)
		if err != nil {
			return image.Record{}, err
		}
		name = named.String()
	} else {
		h, err := img.ConfigName()
		if err != nil {
			return image.Record{}, err
		}
		name = h.String()
	}
	rec, err := image.Write(ctx, im.Content, name, img)
	if err != nil {
		return image.Record{}, err
	}
	return rec, im.Register(ctx, rec)
}

// containerConfigInto sets the image config fields the container
// overrides (command, entrypoint, env, user, working dir, labels), as
// Docker's commit keeps the container's configuration.
func containerConfigInto(c record.Container, cfg *v1.Config) {
	r := c.Run
	if r.EntrypointSet {
		cfg.Entrypoint = r.Entrypoint
		if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
			cfg.Entrypoint = nil
		}
		cfg.Cmd = nil
	}
	if len(r.Cmd) > 0 {
		cfg.Cmd = r.Cmd
	}
	for _, kv := range r.Env {
		if k, _, ok := strings.Cut(kv, "="); ok {
			cfg.Env = setEnv(cfg.Env, k, kv)
		}
	}
	if r.User != "" {
		cfg.User = r.User
	}
	if r.WorkingDir != "" {
		cfg.WorkingDir = r.WorkingDir
	}
	for k, v := range c.Labels {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
}

// shortID is the 12-hex-digit form Docker prints of an ID or digest.
func shortID[T ~string](id T) string {
	s := string(id)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}
