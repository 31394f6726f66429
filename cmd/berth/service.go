package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/berthproject/berth/api"
	"github.com/berthproject/berth/api/listen"
	"github.com/berthproject/berth/events"
	"github.com/berthproject/berth/volume"
	"github.com/spf13/cobra"
)

// berthVersion is what the API service reports as its version.
var berthVersion = "0.1.0-dev"

// addSystemService puts `service` under the `system` group, making the
// group if no other file has.
func addSystemService(root *cobra.Command, g *globals) {
	for _, c := range root.Commands() {
		if c.Name() == "system" {
			c.AddCommand(newSystemServiceCmd(g))
			return
		}
	}
	grp := &cobra.Command{Use: "system", Short: "Manage Berth", Args: cobra.NoArgs}
	grp.AddCommand(newSystemServiceCmd(g))
	root.AddCommand(grp)
}

// newSystemServiceCmd is `berth system service [URI]`: the Docker Engine
// API over this engine, on a unix socket (default /run/berth/berth.sock),
// loopback TCP, TCP with TLS client verification, or sockets passed by
// systemd (LISTEN_FDS). With --timeout N it exits after N idle seconds.
func newSystemServiceCmd(g *globals) *cobra.Command {
	var hosts []string
	var timeout int
	var t listen.TLSOptions
	cmd := &cobra.Command{
		Use:   "service [OPTIONS] [URI]",
		Short: "Serve the Docker Engine API",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			hosts = append(hosts, args...)
			t.WarnPlainLoopbackTCP = func(addr string) {
				fmt.Fprintf(os.Stderr, "WARNING: serving the API on tcp://%s without TLS: any local user can control the engine\n", addr)
			}
			var listeners []net.Listener
			closeAll := func() {
				for _, l := range listeners {
					l.Close()
				}
			}
			activated, err := listen.ActivationListeners()
			if err != nil {
				return err
			}
			listeners = append(listeners, activated...)
			if len(hosts) == 0 && len(listeners) == 0 {
				hosts = []string{"unix://" + listen.DefaultSocket}
			}
			for _, h := range hosts {
				ls, err := listen.Listen(h, t)
				if err != nil {
					closeAll()
					return err
				}
				listeners = append(listeners, ls...)
			}
			defer closeAll()
			e, err := g.open(ctx)
			if err != nil {
				return err
			}
			defer e.Close()
			vols, err := volume.Open(e.Options().Root)
			if err != nil {
				return err
			}
			srv := api.New(api.Options{
				Backend: e, Version: berthVersion, Events: events.Open(e.Options().Root),
				Volumes: vols, IdleTimeout: time.Duration(timeout) * time.Second, Debug: os.Getenv("BERTH_API_DEBUG") != "",
			})
			return srv.Serve(ctx, listeners...)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&hosts, "host", "H", nil, "Endpoint to serve: unix:///path, tcp://127.0.0.1:PORT, fd:// (repeatable)")
	f.IntVarP(&timeout, "timeout", "t", 0, "Exit after this many idle seconds (0: never)")
	f.BoolVar(&t.Verify, "tlsverify", false, "Require TLS client certificates signed by --tlscacert")
	f.StringVar(&t.CACert, "tlscacert", "", "CA certificate that client certificates must be signed by")
	f.StringVar(&t.Cert, "tlscert", "", "TLS certificate of the server")
	f.StringVar(&t.Key, "tlskey", "", "TLS key of the server")
	return cmd
}
