package convert

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	containertypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	registrytypes "github.com/moby/moby/api/types/registry"
)

// History is GET /images/{name}/history's body: one item per step,
// newest first, ID "<missing>" for steps without an image of their own
// (Docker's shape), Created in Unix seconds, Tags never null.
func History(entries []engine.HistoryEntry) []imagetypes.HistoryResponseItem {
	out := make([]imagetypes.HistoryResponseItem, 0, len(entries))
	for _, h := range entries {
		id := h.ID
		if id == "" {
			id = "<missing>"
		}
		tags := h.Tags
		if tags == nil {
			tags = []string{}
		}
		out = append(out, imagetypes.HistoryResponseItem{ID: id, Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Size: h.Size, Comment: h.Comment, Tags: tags})
	}
	return out
}

// Changes is GET /containers/{id}/changes's body: Docker's kinds 0
// (modified), 1 (added) and 2 (deleted).
func Changes(cs []engine.Change) []containertypes.FilesystemChange {
	out := make([]containertypes.FilesystemChange, 0, len(cs))
	for _, c := range cs {
		kind := containertypes.ChangeModify
		switch c.Kind {
		case engine.ChangeAdd:
			kind = containertypes.ChangeAdd
		case engine.ChangeDelete:
			kind = containertypes.ChangeDelete
		}
		out = append(out, containertypes.FilesystemChange{Kind: kind, Path: c.Path})
	}
	return out
}

// PruneImagesFilter reads POST /images/prune's filters: dangling
// ("false"/"0" prunes every unused image, as `prune -a`), until (a
// timestamp or a duration before now), label and label! ("k" or "k=v").
// It returns whether to prune all images and the filter to keep (nil for
// none). Other keys or malformed values give errdefs.ErrInvalidArgument.
func PruneImagesFilter(ctx context.Context, f Filters, look ImageLookup) (all bool, keep func(engine.Image) bool, err error) {
	if err := f.checkKeys([]string{"dangling", "until", "label", "label!"}); err != nil {
		return false, nil, err
	}
	for v := range f["dangling"] {
		switch strings.ToLower(v) {
		case "false", "0":
			all = true
		case "true", "1":
		default:
			return false, nil, invalidFilter("dangling=" + v)
		}
	}
	sub := Filters{"until": f["until"], "label": f["label"]}
	if _, err := FilterImages(ctx, sub, nil, look); err != nil {
		return false, nil, err
	}
	if !sub.Has("until") && !sub.Has("label") && !f.Has("label!") {
		return all, nil, nil
	}
	notLabels := Filters{"label": f["label!"]}
	return all, func(img engine.Image) bool {
		if kept, _ := FilterImages(ctx, sub, []engine.Image{img}, look); len(kept) == 0 {
			return false
		}
		for l := range notLabels["label"] {
			if (Filters{"label": {l: true}}).MatchLabels(img.Config.Config.Labels) {
				return false
			}
		}
		return true
	}, nil
}

// PruneReport is POST /images/prune's body: Docker's ImagesDeleted
// (never null) and SpaceReclaimed in bytes.
func PruneReport(rep engine.PruneReport) imagetypes.PruneReport {
	out := imagetypes.PruneReport{ImagesDeleted: []imagetypes.DeleteResponse{}, SpaceReclaimed: uint64(max(rep.SpaceReclaimed, 0))}
	for _, r := range rep.Removed {
		out.ImagesDeleted = append(out.ImagesDeleted, imagetypes.DeleteResponse{Untagged: r.Untagged, Deleted: r.Deleted})
	}
	return out
}

// RegistryAuth decodes an X-Registry-Auth header (base64url of a JSON
// AuthConfig; standard base64 and missing padding are accepted too, as
// dockerd does). "" or "{}" gives nil: the request carries no
// credential. A header that does not decode gives
// errdefs.ErrInvalidArgument.
func RegistryAuth(header string) (*image.Credential, error) {
	if header == "" {
		return nil, nil
	}
	var raw []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if raw, err = enc.DecodeString(header); err == nil {
			break
		}
	}
	if err != nil {
		return nil, invalid("invalid X-Registry-Auth header: " + err.Error())
	}
	var ac registrytypes.AuthConfig
	if err := json.Unmarshal(raw, &ac); err != nil {
		return nil, invalid("invalid X-Registry-Auth header: " + err.Error())
	}
	c := image.Credential{Username: ac.Username, Password: ac.Password, Auth: ac.Auth, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}
	if c.Empty() {
		return nil, nil
	}
	return &c, nil
}
