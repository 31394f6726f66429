package privsep

// The image and container-filesystem ops of Berth issue 6 beyond pull,
// push and tag: history, prune, login, diff, export, commit, save, load
// and import. SPEC.md lists them; package privsep/helper validates them
// (IsImageOp names them).
const (
	OpImageHistory     Op = "image.history"
	OpImagePrune       Op = "image.prune"
	OpImageLogin       Op = "image.login"
	OpImageSave        Op = "image.save"
	OpImageLoad        Op = "image.load"
	OpImageImport      Op = "image.import"
	OpContainerChanges Op = "container.changes"
	OpContainerExport  Op = "container.export"
	OpContainerCommit  Op = "container.commit"
)

// IsImageOp reports whether op is one of the ops above.
func IsImageOp(op Op) bool {
	switch op {
	case OpImageHistory, OpImagePrune, OpImageLogin, OpImageSave, OpImageLoad, OpImageImport,
		OpContainerChanges, OpContainerExport, OpContainerCommit:
		return true
	}
	return false
}

// ImagePruneArgs is image.prune's argument: All prunes every unused image
// (`prune -a`), else only dangling ones. With Filtered, only the images
// whose IDs ("sha256:" and 64 hex digits, at most MaxPruneIDs) are listed
// may go: the API server applies Docker's filters (until, label) to the
// listing it read, and an image stored after that is never removed.
type ImagePruneArgs struct {
	All      bool     `json:"all"`
	Filtered bool     `json:"filtered"`
	IDs      []string `json:"ids"`
}

// MaxPruneIDs bounds ImagePruneArgs.IDs.
const MaxPruneIDs = 10000

// LoginArgs is image.login's argument: the registry (host[:port], or
// Docker Hub's key) and the credential to check against its /v2/.
type LoginArgs struct {
	Server   string `json:"server"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// SaveArgs is image.save's argument: 1..256 images by name, ID or ID
// prefix. The tar comes back as stdout frames.
type SaveArgs struct {
	Refs []string `json:"refs"`
}

// LoadArgs is image.load's argument; the archive is read from the
// descriptor the request frame carries (as container.copy-to's tar).
type LoadArgs struct {
	Platform string `json:"platform"`
}

// ImportArgs is image.import's argument (engine.ImportOptions); the
// rootfs tar is read from the descriptor the request frame carries.
type ImportArgs struct {
	Name     string   `json:"name"`
	Changes  []string `json:"changes"`
	Message  string   `json:"message"`
	Source   string   `json:"source"`
	Platform string   `json:"platform"`
}

// CommitArgs is container.commit's argument (engine.CommitOptions).
type CommitArgs struct {
	Ref       string   `json:"ref"`
	Reference string   `json:"reference"`
	Changes   []string `json:"changes"`
	Comment   string   `json:"comment"`
	Author    string   `json:"author"`
	Pause     bool     `json:"pause"`
}

// imageOps are the argument constructors of the ops above (merged into
// the closed set).
var imageOps = map[Op]func() any{
	OpImageHistory:     func() any { return &RefArgs{} },
	OpImagePrune:       func() any { return &ImagePruneArgs{} },
	OpImageLogin:       func() any { return &LoginArgs{} },
	OpImageSave:        func() any { return &SaveArgs{} },
	OpImageLoad:        func() any { return &LoadArgs{} },
	OpImageImport:      func() any { return &ImportArgs{} },
	OpContainerChanges: func() any { return &RefArgs{} },
	OpContainerExport:  func() any { return &RefArgs{} },
	OpContainerCommit:  func() any { return &CommitArgs{} },
}

func init() {
	for op, mk := range imageOps {
		ops[op] = mk
	}
}
