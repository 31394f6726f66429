// Package images holds berth's image verbs: pull, images, rmi, push,
// tag, history, save, load, import, login, logout, image prune and inspect,
// system df, and the `image` and `system` groups.
package images

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// NewPullCmd is `berth pull`: download an image from a registry.
func NewPullCmd(g *cli.Globals) *cobra.Command {
	var opts engine.PullOptions
	var quiet, allTags bool
	tlsVerify := true
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			opts.Insecure = !tlsVerify
			if !quiet {
				display := newProgressDisplay(cmd.OutOrStdout())
				defer display.Close()
				opts.Progress = display
			}
			if allTags {
				if _, err := e.PullAllTags(cmd.Context(), args[0], opts); err != nil {
					return err
				}
				named, _ := reference.ParseNormalizedNamed(args[0])
				fmt.Fprintln(cmd.OutOrStdout(), named.Name())
				return nil
			}
			if named, err := reference.ParseNormalizedNamed(args[0]); err == nil && reference.IsNameOnly(named) && !quiet {
				fmt.Fprintln(cmd.OutOrStdout(), "Using default tag: latest")
			}
			rec, err := e.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				if ierr := cli.Interrupted(cmd.Context()); ierr != nil {
					return ierr
				}
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.Name)
			return nil
		}),
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "Download all tagged images in the repository")
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "Require HTTPS and verify certificates (false: allow plain HTTP)")
	return cmd
}

// imageListOptions are the flags of `images`.
type imageListOptions struct {
	all, quiet, noTrunc, digests bool
	filters                      []string
	format                       string
}

// NewImagesCmd is `berth images`: list images.
func NewImagesCmd(g *cli.Globals) *cobra.Command {
	var o imageListOptions
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			imgs, err := e.Images(cmd.Context())
			if err != nil {
				return err
			}
			f, err := convert.FilterArgs(o.filters)
			if err != nil {
				return err
			}
			// Docker's filters, as GET /images/json applies them.
			if imgs, err = convert.FilterImages(ctx, f, imgs, e); err != nil {
				return err
			}
			return printImages(cmd.OutOrStdout(), imgs, args, o)
		}),
	}
	cmd.Flags().BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	cmd.Flags().BoolVar(&o.digests, "digests", false, "Show digests")
	cmd.Flags().StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	cmd.Flags().StringVar(&o.format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template")
	return cmd
}

// imageHeaders are the table titles of the `images` format fields.
var imageHeaders = map[string]string{
	"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
	"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
}

func printImages(out io.Writer, imgs []engine.Image, args []string, o imageListOptions) error {
	def := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	if o.digests {
		def = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
	}
	format := o.format
	if o.quiet {
		format = "{{.ID}}"
	}
	f, err := output.NewRows(out, format, def, imageHeaders)
	if err != nil {
		return err
	}
	if err := checkFields(format, imageHeaders, "*formatter.ImageContext"); err != nil {
		return err
	}
	seen := map[digest.Digest]bool{}
	for _, img := range imgs {
		id := img.Record.Config
		if seen[id] {
			continue
		}
		seen[id] = true
		shownID := id.String()
		if !o.noTrunc {
			shownID = id.Encoded()[:12]
		}
		size := units.HumanSizeWithPrecision(float64(img.Size), 3)
		for _, r := range imageRows(imgs, img, o.digests) {
			if len(args) == 1 && !matchesRepo(args[0], r.repo, r.tag) {
				continue
			}
			if err := f.Row(map[string]string{
				"ID": shownID, "Repository": r.repo, "Tag": r.tag, "Digest": r.digest,
				"CreatedSince": output.Ago(createdTime(img)), "CreatedAt": createdTime(img).Format("2006-01-02 15:04:05 -0700 MST"),
				"Size": size, "VirtualSize": size, "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
			}); err != nil {
				return err
			}
		}
	}
	return f.Flush()
}

// imageRow is one row of `images`: an image under one repository.
type imageRow struct{ repo, tag, digest string }

// imageRows are the rows of image img as the docker CLI makes them from
// RepoTags and RepoDigests: one per tag, with the repository's digest
// when digests (one row per digest if it has several); a repository with
// digests but no tag gets a "<none>" tag row; an image with neither is
// "<none> <none>". Repositories, and a repository's tags, are sorted.
func imageRows(imgs []engine.Image, img engine.Image, digests bool) []imageRow {
	tags, dgs := engine.ImageNames(imgs, img.Record.Config)
	repoTags, repoDigests := map[string][]string{}, map[string][]string{}
	var repos []string
	for _, t := range tags {
		if named, err := reference.ParseNormalizedNamed(t); err == nil {
			if nt, ok := named.(reference.NamedTagged); ok {
				repo := reference.FamiliarName(named)
				repos = append(repos, repo)
				repoTags[repo] = append(repoTags[repo], nt.Tag())
			}
		}
	}
	for _, d := range dgs {
		if named, err := reference.ParseNormalizedNamed(d); err == nil {
			if c, ok := named.(reference.Canonical); ok {
				repo := reference.FamiliarName(named)
				repos = append(repos, repo)
				repoDigests[repo] = append(repoDigests[repo], c.Digest().String())
			}
		}
	}
	if len(repos) == 0 {
		return []imageRow{{"<none>", "<none>", "<none>"}}
	}
	slices.Sort(repos)
	var rows []imageRow
	for _, repo := range slices.Compact(repos) {
		ds := repoDigests[repo]
		if !digests || len(ds) == 0 {
			ds = []string{"<none>"}
		}
		ts := repoTags[repo]
		slices.Sort(ts) // Docker's RepoTags come sorted (its reference store's order)
		if len(ts) == 0 {
			ts = []string{"<none>"}
			if !digests {
				ds = ds[:1]
			}
		}
		for _, t := range ts {
			for _, d := range ds {
				rows = append(rows, imageRow{repo, t, d})
			}
		}
	}
	return rows
}

// checkFields refuses a --format template that names a field rows do not
// have, with Docker's message (Docker's templates run on a struct,
// where a missing field is an error; rows here are maps). typ names the
// type in the message as Docker's does.
func checkFields(format string, fields map[string]string, typ string) error {
	text := strings.TrimPrefix(format, "table")
	if format == "json" || strings.TrimSpace(text) == "" {
		return nil
	}
	t, err := output.Parse(strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.TrimSpace(text)))
	if err != nil {
		return err
	}
	row := map[string]string{}
	for k := range fields {
		row[k] = ""
	}
	if err := t.Option("missingkey=error").Execute(io.Discard, row); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "map has no entry for key "); i >= 0 {
			key := strings.Trim(msg[i+len("map has no entry for key "):], `"`)
			msg = msg[:i] + "can't evaluate field " + key + " in type " + typ
		}
		msg = strings.Replace(msg, `template: format:`, `template: :`, 1)
		return fmt.Errorf("%s", strings.Replace(msg, `executing "format"`, `executing ""`, 1))
	}
	return nil
}

// createdTime is when img was created (convert.ImageCreated).
func createdTime(img engine.Image) time.Time { return convert.ImageCreated(img) }

// matchesRepo applies `images REPOSITORY[:TAG]`.
func matchesRepo(arg, repo, tag string) bool {
	named, err := reference.ParseNormalizedNamed(arg)
	if err != nil {
		return false
	}
	if reference.FamiliarName(named) != repo {
		return false
	}
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag() == tag
	}
	return true
}

// NewRmiCmd is `berth rmi`: remove one or more images.
func NewRmiCmd(g *cli.Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return cli.EachArg(args, func(ref string) error {
				removed, err := e.RemoveImage(ctx, ref, force)
				for _, r := range removed {
					if r.Untagged != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", r.Deleted)
					}
				}
				return err
			})
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}
