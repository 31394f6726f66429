// Package archive applies OCI/Docker image layer tars onto a directory without
// letting any entry reach outside that directory.
//
// A layer is an uncompressed tar stream as described by the OCI image spec
// ("Image Layer Filesystem Changeset"). [Apply] unpacks it onto a root
// directory that already holds the layers below it (or onto an empty overlayfs
// upper directory, see [WithOverlayWhiteouts]).
//
// Confinement: every path is resolved with the root directory playing the part
// of "/". Entry names are cleaned as if rooted at "/" (so "../x" and "/x" both
// land at root/x, as Docker does); symbolic links met while resolving the
// parent directory of an entry, or of a hardlink target, are followed with
// chroot semantics (an absolute target restarts at root, ".." stops at root).
// The final component of a name is never followed. All file system access goes
// through an [os.Root] or through *at system calls on directory descriptors
// opened through it, so even a concurrent change to the tree cannot make an
// operation leave root.
package archive

// ApplyOption configures [Apply].
type ApplyOption func(*applyOptions)

type applyOptions struct {
	overlayWhiteouts bool
	noChown          bool
}

// WithOverlayWhiteouts makes [Apply] write whiteouts in the overlayfs format
// instead of deleting the whited-out paths, for applying a layer straight into
// an overlay upper directory: ".wh.NAME" becomes a character device 0:0 named
// NAME (owned by the entry's uid/gid), and ".wh..wh..opq" sets the xattr
// trusted.overlay.opaque=y on its directory. Existing children are left alone
// in this mode, since the lower layers are not in root. Writing trusted.*
// xattrs needs CAP_SYS_ADMIN.
func WithOverlayWhiteouts() ApplyOption {
	return func(o *applyOptions) { o.overlayWhiteouts = true }
}

// WithoutChown makes [Apply] leave every created file owned by the calling
// process instead of the entry's uid/gid, for applies by an unprivileged user
// outside a user namespace.
func WithoutChown() ApplyOption {
	return func(o *applyOptions) { o.noChown = true }
}
