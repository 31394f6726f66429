package images

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berthproject/berth/cmd/berth/internal/cli"
	"github.com/berthproject/berth/engine"
	"github.com/distribution/reference"
	"github.com/spf13/cobra"
)

// normalizedRepo is repo's full repository name ("docker.io/library/x").
func normalizedRepo(repo string) string {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return repo
	}
	return named.Name()
}

// NewLoginCmd is `berth login`: authenticate to a registry.
func NewLoginCmd(g *cli.Globals) *cobra.Command {
	var username, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if password != "" {
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
			}
			in := bufio.NewReader(os.Stdin)
			if passwordStdin {
				if username == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				data, err := io.ReadAll(in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if username == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Username: ")
				line, _ := in.ReadString('\n')
				username = strings.TrimSpace(line)
				if username == "" {
					return errors.New("Username is required")
				}
			}
			if password == "" && !passwordStdin {
				fmt.Fprint(cmd.OutOrStdout(), "Password: ")
				line, _ := in.ReadString('\n')
				password = strings.TrimRight(line, "\r\n")
			}
			if password == "" {
				return errors.New("password is required")
			}
			e, err := g.Open(cmd.Context())
			if err != nil {
				return err
			}
			defer e.Close()
			if err := e.VerifyLogin(cmd.Context(), server, username, password); err != nil {
				return err
			}
			if err := engine.SaveCredentials("", server, username, password); err != nil {
				return fmt.Errorf("Error saving credentials: %w", err)
			}
			if storedInPlaintext(engine.DockerConfigPath(), engine.NormalizeServer(server)) {
				fmt.Fprintf(os.Stderr, "WARNING! Your credentials are stored unencrypted in '%s'.\n", engine.DockerConfigPath())
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&username, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "Password or Personal Access Token (PAT)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// storedInPlaintext reports whether the config file at path holds key's
// credential itself (no credential helper took it), which Docker warns
// about.
func storedInPlaintext(path, key string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	return json.Unmarshal(data, &cfg) == nil && cfg.Auths[key].Auth != ""
}

// NewLogoutCmd is `berth logout`: log out from a registry.
func NewLogoutCmd(g *cli.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key := engine.NormalizeServer(server)
			removed, err := engine.RemoveCredentials("", server)
			if err != nil {
				return err
			}
			if !removed {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", key)
			return nil
		},
	}
}
