package containers

import (
	"context"
	"fmt"
	"io"
	"maps"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// psHeaders are the column titles of `ps` template fields, Docker's.
var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
	"Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
}

const psDefaultTable = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

type psOptions struct {
	all, quiet, noTrunc, latest, size bool
	last                              int
	filters                           []string
	format                            string
}

// NewPsCmd is `berth ps`: list containers.
func NewPsCmd(g *cli.Globals) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: cli.WithEngine(g, func(ctx context.Context, e *engine.Engine, cmd *cobra.Command, args []string) error {
			return listContainers(ctx, e, cmd.OutOrStdout(), o)
		}),
	}
	f := cmd.Flags()
	f.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	f.StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	f.StringVar(&o.format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return cmd
}

func listContainers(ctx context.Context, e *engine.Engine, out io.Writer, o psOptions) error {
	match, err := psFilter(ctx, e, o.filters)
	if err != nil {
		return err
	}
	if o.latest {
		o.last = 1
	}
	cs, err := e.Containers(ctx, true)
	if err != nil {
		return err
	}
	var kept []engine.Container
	for _, c := range cs {
		if !c.Live() && !o.all && !match.ImpliesAll() && o.last <= 0 {
			continue
		}
		if match.Match(c) {
			kept = append(kept, c)
		}
	}
	if o.last > 0 && len(kept) > o.last {
		kept = kept[:o.last]
	}
	if o.quiet {
		for _, c := range kept {
			id := c.ShortID()
			if o.noTrunc {
				id = c.ID
			}
			fmt.Fprintln(out, id)
		}
		return nil
	}
	def := psDefaultTable
	if o.size {
		def += "\t{{.Size}}"
	}
	withSize := o.size || strings.Contains(o.format, ".Size") || o.format == "json"
	format, labelKeys := labelFields(o.format)
	headers := psHeaders
	if len(labelKeys) > 0 {
		headers = maps.Clone(psHeaders)
		for _, k := range labelKeys {
			headers[labelField(k)] = "LABEL"
		}
	}
	rf, err := output.NewRows(out, format, def, headers)
	if err != nil {
		return err
	}
	imageSizes, imageIDs := map[string]int64{}, map[string]string{}
	for _, c := range kept {
		row := psRow(ctx, e, c, o.noTrunc, withSize, imageSizes, imageIDs)
		for _, k := range labelKeys {
			row[labelField(k)] = c.Labels[k]
		}
		if err := rf.Row(row); err != nil {
			return err
		}
	}
	return rf.Flush()
}

// labelCall matches Docker's {{.Label "KEY"}} in a ps template.
var labelCall = regexp.MustCompile(`\.Label\s+("(?:[^"\\]|\\.)*"|` + "`[^`]*`" + `)`)

// labelFields rewrites the calls of Docker's Label method in a --format
// template, which ps's row fields (a string map) cannot offer, into
// lookups of a field per label (see labelField); it returns the
// rewritten format and the label keys it needs.
func labelFields(format string) (string, []string) {
	var keys []string
	format = labelCall.ReplaceAllStringFunc(format, func(call string) string {
		lit := labelCall.FindStringSubmatch(call)[1]
		key, err := strconv.Unquote(lit)
		if err != nil {
			return call
		}
		keys = append(keys, key)
		return "(index . " + strconv.Quote(labelField(key)) + ")"
	})
	return format, keys
}

// labelField is the row field labelFields gives label key.
func labelField(key string) string { return "Label\x00" + key }

// psRow is one container's fields for `ps` templates, as Docker names and
// renders them.
// imageSizes caches the images' unpacked sizes by ID for the virtual
// size; imageIDs the image names' current IDs (psImage).
func psRow(ctx context.Context, e *engine.Engine, c engine.Container, noTrunc, withSize bool, imageSizes map[string]int64, imageIDs map[string]string) map[string]string {
	id, command := c.ShortID(), c.Command()
	if noTrunc {
		id = c.ID
	} else {
		command = output.Ellipsis(command, 20)
	}
	var labels []string
	for k, v := range c.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	network := c.Net.Mode
	if network == "" {
		network = "bridge"
	}
	row := map[string]string{
		"ID": id, "Image": psImage(ctx, e, c, noTrunc, imageIDs), "Command": strconv.Quote(command),
		"CreatedAt":  c.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		"RunningFor": output.Ago(c.Created), "Ports": FormatPorts(c), "State": c.DisplayStatus(),
		"Status": c.StatusText(), "Names": c.Name, "Labels": strings.Join(labels, ","),
		"Mounts": "", "Networks": network, "LocalVolumes": "0", "Size": "",
	}
	if withSize {
		if info, err := e.InspectContainer(ctx, c.ID, true); err == nil && info.SizeRw != nil {
			// Docker's virtual size: the writable layer plus the image.
			virtual := *info.SizeRootFs
			img := c.ImageID.String()
			if _, ok := imageSizes[img]; !ok {
				if ii, err := e.InspectImage(ctx, img); err == nil {
					imageSizes[img] = ii.Size
				}
			}
			if n := imageSizes[img]; n > 0 {
				virtual = *info.SizeRw + n
			}
			row["Size"] = units.HumanSizeWithPrecision(float64(*info.SizeRw), 3) +
				" (virtual " + units.HumanSizeWithPrecision(float64(virtual), 3) + ")"
		}
	}
	return row
}

// psImage is ps's IMAGE of c as Docker shows it: the image reference c
// was created from while it still names c's image, else c's image ID
// (Docker's daemon refreshes it so); truncated, an ID is shortened to 12
// hex digits and a reference loses its digest. ids caches what each
// reference names now ("" for nothing).
func psImage(ctx context.Context, e *engine.Engine, c engine.Container, noTrunc bool, ids map[string]string) string {
	img, want := c.Image, c.ImageID.String()
	if img != want && want != "" {
		now, ok := ids[img]
		if !ok {
			if ii, err := e.InspectImage(ctx, img); err == nil {
				now = ii.ID
			}
			ids[img] = now
		}
		if now != want {
			img = want
		}
	}
	if noTrunc {
		return img
	}
	if short := truncID(img); short == truncID(want) {
		return short
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if nt, ok := ref.(reference.NamedTagged); ok {
		if t, err := reference.WithTag(reference.TrimNamed(nt), nt.Tag()); err == nil {
			return reference.FamiliarString(t)
		}
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

// truncID is id without an algorithm prefix, cut to 12 characters.
func truncID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	return id[:min(len(id), 12)]
}

// psFilter is `ps --filter`: Docker's container filters, as GET
// /containers/json applies them (convert.NewContainerMatcher).
func psFilter(ctx context.Context, e *engine.Engine, filters []string) (*convert.ContainerMatcher, error) {
	f, err := convert.FilterArgs(filters)
	if err != nil {
		return nil, err
	}
	opts := convert.ContainerFilterOptions{Lookup: e}
	if f.Has("network") {
		if nets, err := e.Networks(); err == nil {
			opts.Networks = nets
		}
	}
	if f.Has("volume") {
		if vs, err := e.VolumeStore(); err == nil {
			opts.VolumeDir = strings.TrimSuffix(vs.DataDir("x"), "/x/_data")
		}
	}
	return convert.NewContainerMatcher(ctx, f, opts)
}
