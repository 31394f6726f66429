// Package system holds `berth version` and `berth info` (also `berth
// system info`): Docker's text and --format data for a daemonless
// engine, built from the same conversions the API service answers GET
// /version and GET /info with (api/convert), so that the CLI and the
// service agree.
package system

import (
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/berthproject/berth/api"
	"github.com/berthproject/berth/api/convert"
	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/cmd/berth/internal/cli/output"
	"github.com/berthproject/berth/engine"
	systemtypes "github.com/moby/moby/api/types/system"
	"github.com/spf13/cobra"
)

// Build facts a release build sets with -ldflags "-X
// github.com/berthproject/berth/cmd/berth/internal/cli/system.gitCommit=…"
// (and buildTime, RFC 3339). Without them the commit comes from the Go
// toolchain's VCS stamp when there is one, and Built is left out.
var gitCommit, buildTime string

// ClientVersion is the Client part of `version --format` data, shaped
// like the docker CLI's (the same Go field names and JSON keys).
type ClientVersion struct {
	Version           string `json:"Version,omitempty"`
	APIVersion        string `json:"ApiVersion,omitempty"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string `json:"GitCommit,omitempty"`
	GoVersion         string `json:"GoVersion,omitempty"`
	Os                string `json:"Os,omitempty"`
	Arch              string `json:"Arch,omitempty"`
	BuildTime         string `json:"BuildTime,omitempty"`
	Context           string `json:"Context"`
}

// Version is what `berth version --format` templates see, as docker's
// `version --format`: {{.Client.Version}}, {{.Server.Version}},
// {{.Server.APIVersion}}, {{range .Server.Components}} … Server is GET
// /version's body (convert.Version) for this binary's engine.
type Version struct {
	Client ClientVersion
	Server *systemtypes.VersionResponse
}

// NewVersionCmd is `berth version [-f FORMAT]`. It needs no engine (and
// no root): the engine is this binary, so the Server part is this
// binary's build with the OCI runtime, monitor and init it would use.
func NewVersionCmd(g *cli.Globals, version string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tmpl, err := versionTemplate(format)
			if err != nil {
				return templateParseError(cmd, err)
			}
			o := g.Opts
			if o.Runtime == "" {
				o.Runtime = engine.DefaultRuntime()
			}
			return templateResult(cmd, writeVersion(cmd.OutOrStdout(), tmpl, newVersion(version, o)))
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")
	return cmd
}

// newVersion is Version for Berth version version and an engine with
// options o (Runtime set).
func newVersion(version string, o engine.Options) Version {
	srv := convert.Version(version, api.MinVersion, api.MaxVersion, convert.Components(o)...)
	commit, built := build()
	srv.GitCommit, srv.BuildTime = commit, built
	if d := srv.Components[0].Details; d != nil {
		d["GitCommit"], d["BuildTime"] = commit, built
	}
	return Version{Client: newClientVersion(version), Server: &srv}
}

// newClientVersion is the Client part for Berth version version: this
// binary, speaking API version api.MaxVersion, in docker's "default"
// context (berth has no others).
func newClientVersion(version string) ClientVersion {
	commit, built := build()
	return ClientVersion{
		Version: version, APIVersion: api.MaxVersion, DefaultAPIVersion: api.MaxVersion,
		GitCommit: commit, GoVersion: goruntime.Version(), Os: goruntime.GOOS, Arch: goruntime.GOARCH,
		BuildTime: built, Context: "default",
	}
}

// build is the binary's commit (7 hex digits) and build time (Docker's
// time.ANSIC), "" when unknown.
func build() (commit, built string) {
	commit = gitCommit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if len(commit) > 7 {
		commit = commit[:7]
	}
	if t, err := time.Parse(time.RFC3339Nano, buildTime); err == nil {
		built = t.Format(time.ANSIC)
	}
	return commit, built
}

// versionText is `version`'s default layout, Docker 28's: a tab-aligned
// Client section, then "Server: PLATFORM" with the Engine and each other
// component (its Version and its non-empty details, sorted). Lines whose
// value is unknown (Git commit, Built) are left out.
const versionText = `{{with .Client -}}
Client:
 Version:	{{.Version}}
 API version:	{{.APIVersion}}
 Go version:	{{.GoVersion}}
{{- if .GitCommit}}
 Git commit:	{{.GitCommit}}{{end}}
{{- if .BuildTime}}
 Built:	{{.BuildTime}}{{end}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}
{{- with .Server}}

Server:{{with .Platform.Name}} {{.}}{{end}}
{{- range .Components}}
 {{.Name}}:
{{- if eq .Name "Engine"}}
  Version:	{{.Version}}
  API version:	{{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:	{{index .Details "GoVersion"}}
{{- with index .Details "GitCommit"}}
  Git commit:	{{.}}{{end}}
{{- with index .Details "BuildTime"}}
  Built:	{{.}}{{end}}
  OS/Arch:	{{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:	{{index .Details "Experimental"}}
{{- else}}
  Version:	{{.Version}}
{{- range $k, $v := .Details}}{{if $v}}
  {{$k}}:	{{$v}}{{end}}{{end}}
{{- end}}
{{- end}}
{{- end}}`

// versionTemplate parses a `version --format` value: "" for the default
// text, "json" for {{json .}}, else a Go template (output.Parse).
func versionTemplate(format string) (*template.Template, error) {
	if format == "" {
		format = versionText
	}
	return output.ParseFormat(format)
}

// writeVersion prints v through tmpl as docker does: tab stops aligned
// (min width 20), then a newline. On a template error what was printed
// stays (docker prints it too).
func writeVersion(w io.Writer, tmpl *template.Template, v Version) error {
	tw := tabwriter.NewWriter(w, 20, 1, 1, ' ', 0)
	err := tmpl.Execute(tw, v)
	tw.Write([]byte("\n"))
	if ferr := tw.Flush(); err == nil && ferr != nil {
		return ferr
	}
	return err
}

// templateParseError is docker's answer to a bad --format: the message on
// stderr (no "Error:" prefix) and exit status 64.
func templateParseError(cmd *cobra.Command, err error) error {
	fmt.Fprintln(cmd.ErrOrStderr(), err)
	return cli.ExitError{Code: 64}
}

// templateResult is docker's answer to a template that fails to execute
// (a field that does not exist): the message on stderr, exit status 1.
func templateResult(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	fmt.Fprintln(cmd.ErrOrStderr(), err)
	return cli.ExitError{Code: 1}
}
