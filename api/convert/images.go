package convert

import (
	"github.com/berthproject/berth/engine"
	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
)

// ImageSummaries groups the image records by image ID, one Summary each,
// newest first as the engine lists them.
func ImageSummaries(imgs []engine.Image, cs []engine.Container) []imagetypes.Summary {
	out := []imagetypes.Summary{}
	index := map[string]int{}
	for _, img := range imgs {
		id := img.Record.Config.String()
		i, ok := index[id]
		if !ok {
			i = len(out)
			index[id] = i
			sum := imagetypes.Summary{
				ID: id, RepoTags: []string{}, RepoDigests: []string{}, Size: img.Size, SharedSize: -1,
				Labels: img.Config.Config.Labels, Containers: -1,
			}
			if img.Config.Created != nil {
				sum.Created = img.Config.Created.Unix()
			}
			if sum.Labels == nil {
				sum.Labels = map[string]string{}
			}
			if cs != nil {
				sum.Containers = 0
				for _, c := range cs {
					if c.ImageID == img.Record.Config {
						sum.Containers++
					}
				}
			}
			out = append(out, sum)
		}
		if engine.IsDangling(img.Record) {
			continue
		}
		named, err := reference.ParseNormalizedNamed(img.Record.Name)
		if err != nil {
			continue
		}
		out[i].RepoTags = append(out[i].RepoTags, reference.FamiliarString(named))
		if rd := img.Record.RepoDigest; rd != "" {
			if c, err := reference.WithDigest(reference.TrimNamed(named), rd); err == nil {
				out[i].RepoDigests = append(out[i].RepoDigests, reference.FamiliarString(c))
			}
		}
	}
	return out
}
