package main

import (
	"github.com/berthproject/berth/image/fetcher"
	"github.com/spf13/cobra"
)

// newFetcherCmd is the hidden `berth fetcher`: the unprivileged process a
// root pull starts to do its registry I/O (see package image/fetcher). It
// speaks the fetcher protocol on stdin/stdout and refuses to run as root.
func newFetcherCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "fetcher",
		Short:  "Registry I/O for a pull (started by berth; not for direct use)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return fetcher.Main()
		},
	}
}
