package convert

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
)

// ImageLookup resolves the image references of the before and since
// filters: *engine.Engine and the API's Backend satisfy it.
type ImageLookup interface {
	InspectImage(ctx context.Context, ref string) (imagetypes.InspectResponse, error)
}

// imageFilterKeys are the keys GET /images/json and `images` accept,
// Docker's.
var imageFilterKeys = []string{"before", "dangling", "label", "reference", "since", "until"}

// FilterImages applies Docker's image list filters (GET /images/json,
// `docker images --filter`) to the image records imgs and returns the
// records kept, in order: dangling (true/1 or false/0), label ("k" or
// "k=v", all must hold), before/since (an image reference or ID:
// images created before/after it), until (a timestamp or a duration
// before now) and reference (path.Match patterns on the familiar name,
// with or without its tag, as Docker's reference.FamiliarMatch; a record
// whose name matches none is dropped, so the image lists only its
// matching tags). Errors: errdefs.ErrInvalidArgument for an unknown key
// ("invalid filter 'KEY'"), a bad dangling value ("invalid filter
// 'dangling=V'"), time or pattern; errdefs.ErrNotFound for an unknown
// before/since image.
func FilterImages(ctx context.Context, f Filters, imgs []engine.Image, look ImageLookup) ([]engine.Image, error) {
	if err := f.checkKeys(imageFilterKeys); err != nil {
		return nil, err
	}
	dangling := 0 // 0: any, 1: only dangling, -1: none
	for v := range f["dangling"] {
		want := 0
		switch strings.ToLower(v) {
		case "true", "1":
			want = 1
		case "false", "0":
			want = -1
		default:
			return nil, invalidFilter("dangling=" + v)
		}
		if dangling != 0 && dangling != want {
			return nil, invalidFilter("dangling=" + v)
		}
		dangling = want
	}
	created := func(key string) ([]time.Time, error) {
		var out []time.Time
		for v := range f[key] {
			ii, err := look.InspectImage(ctx, v)
			if err != nil {
				return nil, err
			}
			i := slices.IndexFunc(imgs, func(img engine.Image) bool { return img.Record.Config.String() == ii.ID })
			if i < 0 {
				return nil, fmt.Errorf("No such image: %s: %w", v, errdefs.ErrNotFound)
			}
			out = append(out, ImageCreated(imgs[i]))
		}
		return out, nil
	}
	before, err := created("before")
	if err != nil {
		return nil, err
	}
	since, err := created("since")
	if err != nil {
		return nil, err
	}
	var until []time.Time
	for v := range f["until"] {
		t, err := untilTime(v)
		if err != nil {
			return nil, err
		}
		until = append(until, t)
	}
	for p := range f["reference"] {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("invalid filter 'reference=%s': %w", p, errdefs.ErrInvalidArgument)
		}
	}
	var out []engine.Image
	for _, img := range imgs {
		t := ImageCreated(img)
		isDangling := engine.IsDangling(img.Record)
		keep := (dangling == 0 || isDangling == (dangling == 1)) &&
			f.MatchLabels(img.Config.Config.Labels) &&
			!slices.ContainsFunc(before, func(b time.Time) bool { return !t.Before(b) }) &&
			!slices.ContainsFunc(since, func(s time.Time) bool { return !t.After(s) }) &&
			!slices.ContainsFunc(until, func(u time.Time) bool { return !t.Before(u) }) &&
			(!f.Has("reference") || (!isDangling && matchReference(f["reference"], img.Record.Name)))
		if keep {
			out = append(out, img)
		}
	}
	return out, nil
}

// matchReference reports whether one of patterns matches name (a
// normalized reference) as Docker's reference filter does.
func matchReference(patterns map[string]bool, name string) bool {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	for p := range patterns {
		if ok, _ := reference.FamiliarMatch(p, named); ok {
			return true
		}
	}
	return false
}

// ImageCreated is img's creation time: its config's, else when it was
// stored.
func ImageCreated(img engine.Image) time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return img.Record.Created
}

// untilTime reads the until filter: a timestamp (ParseTime) or a Go
// duration ("10m") before now.
func untilTime(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := ParseTime(v)
	if err != nil {
		return t, fmt.Errorf("invalid filter 'until=%s': %w", v, errdefs.ErrInvalidArgument)
	}
	return t, nil
}
