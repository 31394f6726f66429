package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/berthproject/berth/engine"
	"github.com/berthproject/berth/image"
	"github.com/distribution/reference"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newPullCmd(g *globals) *cobra.Command {
	var opts engine.PullOptions
	var quiet bool
	tlsVerify := true
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			opts.Insecure = !tlsVerify
			if !quiet {
				opts.Progress = cmd.OutOrStdout()
			}
			rec, err := e.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().BoolVar(&tlsVerify, "tls-verify", true, "Require HTTPS and verify certificates (false: allow plain HTTP)")
	return cmd
}

func newImagesCmd(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			imgs, err := e.Images(cmd.Context())
			if err != nil {
				return err
			}
			return printImages(cmd.OutOrStdout(), imgs, args, quiet, noTrunc)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return cmd
}

func printImages(out io.Writer, imgs []engine.Image, filter []string, quiet, noTrunc bool) error {
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	if !quiet {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	seen := map[string]bool{}
	for _, img := range imgs {
		named, err := reference.ParseNormalizedNamed(img.Record.Name)
		if err != nil {
			continue
		}
		repo, tag := image.RepositoryTag(named)
		if len(filter) == 1 && !matchesRepo(filter[0], repo, tag) {
			continue
		}
		id := img.Record.Config.String()
		if !noTrunc {
			id = img.Record.Config.Encoded()[:12]
		}
		if quiet {
			if !seen[id] {
				fmt.Fprintln(tw, id)
			}
			seen[id] = true
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, id, ago(createdTime(img)), units.HumanSizeWithPrecision(float64(img.Size), 3))
	}
	return tw.Flush()
}

func createdTime(img engine.Image) time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return img.Record.Created
}

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

// ago renders a past time as Docker does: "5 seconds ago", "2 weeks ago".
func ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

func newRmiCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			var failed error
			for _, ref := range args {
				removed, err := e.RemoveImage(cmd.Context(), ref, force)
				for _, r := range removed {
					if r.Untagged != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", r.Deleted)
					}
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "Error:", message(err))
					failed = exitError{code: 1}
				}
			}
			return failed
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}
