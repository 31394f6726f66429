package api

import "github.com/berthproject/berth/api/internal/images"

// ImageOps is what the image and container-filesystem routes (package
// api/internal/images) need beyond Backend: history, prune, login, diff,
// export, commit, save, load, import. *engine.Engine and privsep.Client
// satisfy it; a backend that does not makes those routes answer 501.
type ImageOps = images.Ops
