package images

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// NewImageCmd is `berth image`: the image verbs under Docker's management
// command names.
func NewImageCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: cobra.NoArgs}
	cmd.AddCommand(
		cli.Renamed(NewImagesCmd(g), "ls [OPTIONS] [REPOSITORY[:TAG]]", "list"),
		cli.Renamed(NewRmiCmd(g), "rm [OPTIONS] IMAGE [IMAGE...]", "remove"),
		NewPullCmd(g), NewPushCmd(g), NewTagCmd(g), newImageInspectCmd(g),
		NewHistoryCmd(g), NewSaveCmd(g), NewLoadCmd(g), NewImportCmd(g), newImagePruneCmd(g),
	)
	return cmd
}

// NewSystemCmd is `berth system` (df only so far).
func NewSystemCmd(g *cli.Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage Berth", Args: cobra.NoArgs}
	cmd.AddCommand(newSystemDfCmd(g))
	return cmd
}

// NewTagCmd is `berth tag`: create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
func NewTagCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			if err := checkTagRefs(args[0], args[1]); err != nil {
				// Docker's client makes these errors and its CLI prints
				// them as they are, without "Error:".
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return cli.ExitError{Code: 1}
			}
			return e.Tag(cmd.Context(), args[0], args[1])
		}),
	}
}

// checkTagRefs checks `tag`'s arguments as Docker's client does before
// its request: the source must parse as any reference and the target as
// a name without a digest. The errors carry Docker's wording ("Error
// parsing reference: %q is not a valid repository/tag: ...", "refusing
// to create a tag with a digest reference").
func checkTagRefs(source, target string) error {
	if _, err := reference.ParseAnyReference(source); err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", source, err)
	}
	ref, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("Error parsing reference: %q is not a valid repository/tag: %w", target, err)
	}
	if _, ok := ref.(reference.Canonical); ok {
		return errors.New("refusing to create a tag with a digest reference")
	}
	return nil
}

// NewPushCmd is `berth push`: upload an image to a registry.
func NewPushCmd(g *cli.Globals) *cobra.Command {
	var quiet, allTags bool
	tlsVerify := true
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			refs := []string{args[0]}
			if allTags {
				var err error
				if refs, err = repoTags(cmd, e, args[0]); err != nil {
					return err
				}
			}
			for _, ref := range refs {
				opts := engine.PushOptions{Insecure: !tlsVerify}
				var d *progressDisplay
				if !quiet {
					d = newProgressDisplay(cmd.OutOrStdout())
					opts.Progress = d
				}
				_, err := e.Push(cmd.Context(), ref, opts)
				if d != nil {
					d.Close()
				}
				if err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), ref)
				}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&allTags, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "Require HTTPS and verify certificates (false: allow plain HTTP)")
	return cmd
}

// repoTags lists the stored names of the repository repo (no tag allowed).
func repoTags(cmd *cobra.Command, e *engine.Engine, repo string) ([]string, error) {
	if strings.Contains(repo[strings.LastIndex(repo, "/")+1:], ":") || strings.Contains(repo, "@") {
		return nil, errors.New("tag can't be used with --all-tags/-a")
	}
	imgs, err := e.Images(cmd.Context())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, img := range imgs {
		if engine.IsDangling(img.Record) {
			continue
		}
		if n := img.Record.Name; strings.HasPrefix(n, normalizedRepo(repo)+":") {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("An image does not exist locally with the tag: %s", repo)
	}
	return out, nil
}

func newImageInspectCmd(g *cli.Globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			var objs []any
			var failed []error
			for _, ref := range args {
				resp, err := e.InspectImage(cmd.Context(), ref)
				if err != nil {
					failed = append(failed, err)
					continue
				}
				obj, err := inspectJSON(resp)
				if err != nil {
					return err
				}
				objs = append(objs, obj)
			}
			if err := output.PrintInspect(cmd.OutOrStdout(), format, objs); err != nil {
				return err
			}
			for _, err := range failed[:max(len(failed)-1, 0)] {
				fmt.Fprintln(os.Stderr, "Error:", cli.Message(err))
			}
			if len(failed) > 0 {
				return failed[len(failed)-1]
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

// inspectOrder is the key order of Docker's image inspect object; keys
// not listed follow in the order they come.
var inspectOrder = []string{"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "DockerVersion", "Author", "Config",
	"Architecture", "Variant", "Os", "OsVersion", "Size", "GraphDriver", "RootFS", "Metadata", "Descriptor", "Manifests"}

// inspectJSON renders resp as Docker's image inspect object: Parent,
// Comment and Author always present (empty strings), in Docker's order.
func inspectJSON(resp any) (json.RawMessage, error) {
	data, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	for _, k := range []string{"Parent", "Comment", "Author"} {
		if _, ok := fields[k]; !ok {
			fields[k] = json.RawMessage(`""`)
		}
	}
	keys := slices.Collect(maps.Keys(fields))
	slices.SortStableFunc(keys, func(a, b string) int {
		ia, ib := slices.Index(inspectOrder, a), slices.Index(inspectOrder, b)
		if ia < 0 {
			ia = len(inspectOrder)
		}
		if ib < 0 {
			ib = len(inspectOrder)
		}
		return cmp.Or(ia-ib, strings.Compare(a, b))
	})
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		buf.Write(kj)
		buf.WriteByte(':')
		buf.Write(fields[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// NewHistoryCmd is `berth history`: show the history of an image.
func NewHistoryCmd(g *cli.Globals) *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			rows, err := e.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if quiet {
				format = "{{.ID}}"
			}
			def := "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			if !human {
				def = "{{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			}
			f, err := output.NewRows(cmd.OutOrStdout(), format, def,
				map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"})
			if err != nil {
				return err
			}
			for _, r := range rows {
				id := "<missing>"
				if r.ID != "" {
					id = r.ID
					if !noTrunc {
						id = strings.TrimPrefix(id, "sha256:")[:12]
					}
				}
				createdBy := strings.ReplaceAll(r.CreatedBy, "\t", " ")
				if !noTrunc {
					createdBy = output.Ellipsis(createdBy, 45)
				}
				created, size := r.Created.Format(time.RFC3339), strconv.FormatInt(r.Size, 10)
				if human {
					created, size = output.Ago(r.Created), units.HumanSizeWithPrecision(float64(r.Size), 3)
				}
				if err := f.Row(map[string]string{
					"ID": id, "CreatedSince": created, "CreatedAt": r.Created.Format(time.RFC3339),
					"CreatedBy": createdBy, "Size": size, "Comment": r.Comment,
				}); err != nil {
					return err
				}
			}
			return f.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template")
	return cmd
}

// NewSaveCmd is `berth save`: save one or more images to a tar archive (streamed to STDOUT by default).
func NewSaveCmd(g *cli.Globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: cli.WriteOutput(g, &output, func(ctx context.Context, e *engine.Engine, args []string, w io.Writer) error {
			return e.SaveImages(ctx, args, w)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// NewLoadCmd is `berth load`: load an image from a tar archive or STDIN.
func NewLoadCmd(g *cli.Globals) *cobra.Command {
	var input, platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			} else if cli.IsTerminal(os.Stdin) {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			loaded, err := e.LoadImages(cmd.Context(), r, platform)
			for _, l := range loaded {
				if l.Name != "" {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", l.Name)
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image ID:", l.ID)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	cmd.Flags().StringVar(&platform, "platform", "", "Load only the given platform variant (os/arch[/variant])")
	return cmd
}

// NewImportCmd is `berth import`: import the contents from a tarball to create a filesystem image.
func NewImportCmd(g *cli.Globals) *cobra.Command {
	var opts engine.ImportOptions
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src := args[0]
			if strings.Contains(src, "://") {
				return errors.New("importing from a URL is not supported; download the file and import it")
			}
			var r io.Reader = os.Stdin
			if src != "-" {
				f, err := os.Open(src)
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			opts.Source = src
			if len(args) == 2 {
				opts.Name = args[1]
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			rec, err := e.ImportImage(cmd.Context(), r, opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.Config)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR)")
	cmd.Flags().StringVarP(&opts.Message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func newImagePruneCmd(g *cli.Globals) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			keep, err := pruneFilter(filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
			if !cli.ConfirmPrune(cmd, force, warning) {
				return nil
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			rep, err := e.PruneImages(cmd.Context(), all, keep)
			out := cmd.OutOrStdout()
			if len(rep.Removed) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, r := range rep.Removed {
					if r.Untagged != "" {
						fmt.Fprintln(out, "untagged:", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintln(out, "deleted:", r.Deleted)
					}
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "Total reclaimed space:", units.HumanSizeWithPrecision(float64(rep.SpaceReclaimed), 3))
			return err
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>')")
	return cmd
}

// pruneFilter builds the keep predicate of `image prune --filter`: until
// (a duration or RFC 3339 time) and label / label! (Docker's keys).
func pruneFilter(filters []string) (func(engine.Image) bool, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	var preds []func(engine.Image) bool
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		switch k {
		case "until":
			var cutoff time.Time
			if d, err := time.ParseDuration(v); err == nil {
				cutoff = time.Now().Add(-d)
			} else if t, err := time.Parse(time.RFC3339, v); err == nil {
				cutoff = t
			} else {
				return nil, fmt.Errorf("invalid filter 'until=%s'", v)
			}
			preds = append(preds, func(img engine.Image) bool { return createdTime(img).Before(cutoff) })
		case "label", "label!":
			lk, lv, hasVal := strings.Cut(v, "=")
			neg := k == "label!"
			preds = append(preds, func(img engine.Image) bool {
				got, ok := img.Config.Config.Labels[lk]
				m := ok && (!hasVal || got == lv)
				return m != neg
			})
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return func(img engine.Image) bool {
		for _, p := range preds {
			if !p(img) {
				return false
			}
		}
		return true
	}, nil
}

func newSystemDfCmd(g *cli.Globals) *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show disk usage",
		Args:  cobra.NoArgs,
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			du, err := e.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			if verbose && (format == "" || format == "table") {
				imgs, err := e.Images(cmd.Context())
				if err != nil {
					return err
				}
				return printDfVerbose(cmd.OutOrStdout(), du, imgs)
			}
			f, err := output.NewRows(cmd.OutOrStdout(), format,
				"{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
				map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"})
			if err != nil {
				return err
			}
			pct := func(part, whole int64) string {
				if whole == 0 {
					return humanSize(part)
				}
				return fmt.Sprintf("%s (%d%%)", humanSize(part), part*100/whole)
			}
			var volSize, volFree int64
			volActive := 0
			for _, v := range du.Volumes {
				volSize += v.Size
				if v.Links > 0 {
					volActive++
				} else {
					volFree += v.Size
				}
			}
			rows := []map[string]string{
				{"Type": "Images", "TotalCount": strconv.Itoa(du.Images), "Active": strconv.Itoa(du.ActiveImages), "Size": humanSize(du.ImagesSize), "Reclaimable": pct(du.ImagesReclaimable, du.ImagesSize)},
				{"Type": "Containers", "TotalCount": strconv.Itoa(du.Containers), "Active": strconv.Itoa(du.ActiveContainers), "Size": humanSize(du.ContainersSize), "Reclaimable": pct(du.ContainersFree, du.ContainersSize)},
				{"Type": "Local Volumes", "TotalCount": strconv.Itoa(len(du.Volumes)), "Active": strconv.Itoa(volActive), "Size": humanSize(volSize), "Reclaimable": pct(volFree, volSize)},
				{"Type": "Build Cache", "TotalCount": "0", "Active": "0", "Size": "0B", "Reclaimable": "0B"},
			}
			for _, r := range rows {
				if err := f.Row(r); err != nil {
					return err
				}
			}
			return f.Flush()
		}),
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// printDfVerbose prints `system df -v`: Docker's four tables (images,
// containers, volumes, build cache), each under its title.
func printDfVerbose(out io.Writer, du engine.DiskUsage, imgs []engine.Image) error {
	section := func(title, def string, headers map[string]string, rows []map[string]string) error {
		fmt.Fprint(out, title)
		f, err := output.NewRows(out, "table", def, headers)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := f.Row(r); err != nil {
				return err
			}
		}
		return f.Flush()
	}
	var rows []map[string]string
	for _, u := range du.ImageUsage {
		repo, tag := "<none>", "<none>"
		if tags, _ := engine.ImageNames(imgs, u.Image.Record.Config); len(tags) > 0 {
			if named, err := reference.ParseNormalizedNamed(tags[0]); err == nil {
				if nt, ok := named.(reference.NamedTagged); ok {
					repo, tag = reference.FamiliarName(named), nt.Tag()
				}
			}
		}
		rows = append(rows, map[string]string{"Repository": repo, "Tag": tag, "ID": u.Image.Record.Config.Encoded()[:12],
			"CreatedSince": output.Ago(createdTime(u.Image)), "Size": humanSize(u.Size), "SharedSize": humanSize(u.SharedSize),
			"UniqueSize": humanSize(u.UniqueSize), "Containers": strconv.Itoa(u.Containers)})
	}
	if err := section("Images space usage:\n\n", "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
		map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED", "Size": "SIZE", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "Containers": "CONTAINERS"}, rows); err != nil {
		return err
	}
	rows = nil
	for _, u := range du.ContainerUsage {
		c := u.Container
		command := strconv.Quote(output.Ellipsis(strings.Join(append([]string{c.Path}, c.Args...), " "), 20))
		vols := 0
		for _, m := range c.Run.Mounts {
			if m.Type == "volume" {
				vols++
			}
		}
		rows = append(rows, map[string]string{"ID": c.ID[:12], "Image": c.Image, "Command": command, "LocalVolumes": strconv.Itoa(vols),
			"Size": humanSize(u.Size), "RunningFor": output.Ago(c.Created), "Status": dfStatus(c), "Names": c.Name})
	}
	if err := section("\nContainers space usage:\n\n", "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
		map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}, rows); err != nil {
		return err
	}
	rows = nil
	for _, v := range du.Volumes {
		rows = append(rows, map[string]string{"Name": v.Name, "Links": strconv.Itoa(v.Links), "Size": humanSize(v.Size)})
	}
	if err := section("\nLocal Volumes space usage:\n\n", "{{.Name}}\t{{.Links}}\t{{.Size}}",
		map[string]string{"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}, rows); err != nil {
		return err
	}
	return section("\nBuild cache usage: 0B\n\n", "{{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
		map[string]string{"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE", "CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE", "Shared": "SHARED"}, nil)
}

// dfStatus is the STATUS column of `system df -v` (as `ps` shows it).
func dfStatus(c engine.Container) string {
	switch s := c.State; s.Status {
	case engine.StatusRunning:
		if s.Paused {
			return "Up " + units.HumanDuration(time.Since(s.StartedAt)) + " (Paused)"
		}
		return "Up " + units.HumanDuration(time.Since(s.StartedAt))
	case engine.StatusExited:
		return fmt.Sprintf("Exited (%d) %s", s.ExitCode, output.Ago(s.FinishedAt))
	}
	return "Created"
}
