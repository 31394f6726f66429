package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/spf13/cobra"
)

// TestDockerArgs: wrong argument counts give Docker's wording with exit
// status 1; unknown verbs of a group are named; good counts pass.
func TestDockerArgs(t *testing.T) {
	root := &cobra.Command{Use: "berth"}
	group := &cobra.Command{Use: "network"}
	leaf := func(use string, args cobra.PositionalArgs) *cobra.Command {
		return &cobra.Command{Use: use, Args: args, RunE: func(*cobra.Command, []string) error { return nil }}
	}
	group.AddCommand(leaf("ls", cobra.NoArgs))
	root.AddCommand(group, leaf("logs", cobra.ExactArgs(1)), leaf("stop", cobra.MinimumNArgs(1)),
		leaf("commit", cobra.RangeArgs(1, 2)), leaf("top", cobra.MaximumNArgs(3)), leaf("any", nil))
	DockerArgs(root)
	cases := []struct {
		args []string
		want string // "" for success
	}{
		{[]string{"logs"}, "berth: 'berth logs' requires 1 argument"},
		{[]string{"logs", "a"}, ""},
		{[]string{"stop"}, "berth: 'berth stop' requires at least 1 argument"},
		{[]string{"stop", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, ""},
		{[]string{"commit", "a", "b", "c"}, "berth: 'berth commit' requires at least 1 and at most 2 arguments"},
		{[]string{"top", "a", "b", "c", "d"}, "berth: 'berth top' requires at most 3 arguments"},
		{[]string{"network", "ls", "x"}, "berth: 'berth network ls' accepts no arguments"},
		{[]string{"network", "bogus"}, "berth: unknown command: berth network bogus"},
		{[]string{"bogus"}, "berth: unknown command: berth bogus"},
		{[]string{"any", "a", "b"}, ""},
	}
	for _, c := range cases {
		cmd, args, err := root.Find(c.args)
		if err == nil {
			err = cmd.ValidateArgs(args)
		}
		var ue UsageError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want == "":
		case !errors.As(err, &ue) || ue.Msg != c.want || ue.Code != 1:
			t.Errorf("%v: %#v, want %q with code 1", c.args, err, c.want)
		}
	}
}

// TestEnvFile: the docker CLI's env-file rules.
func TestEnvFile(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "env")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("FROM_HOST", "h")
	got, err := ReadEnv([]string{write("\xEF\xBB\xBFA=1\n\n  # comment\n\tB=two words \nFROM_HOST\nUNSET_XYZ\n")}, []string{"C=3"})
	want := []string{"A=1", "B=two words ", "FROM_HOST=h", "C=3"}
	if err != nil || len(got) != len(want) {
		t.Fatalf("ReadEnv: %q, %v; want %q", got, err, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ReadEnv: %q, want %q", got, want)
		}
	}
	for content, msg := range map[string]string{
		"  C = x \n": "variable 'C ' contains whitespaces",
		"A B=1\n":    "variable 'A B' contains whitespaces",
		"=x\n":       "no variable name on line '=x'",
		"A=\xff\n":   "invalid utf8 bytes at line 1",
	} {
		_, err := ReadEnv([]string{write(content)}, nil)
		if !errdefs.IsInvalidArgument(err) || len(Message(err)) < len(msg) || Message(err)[:len(msg)] != msg {
			t.Errorf("%q: %v, want %q", content, err, msg)
		}
	}
}

// TestUsageHint: usage errors carry Docker 28's hint: the usage line
// (a group's command path; none for an unknown verb of the root), then
// "Run ... for more information", "See ..." only for "requires at least".
func TestUsageHint(t *testing.T) {
	root := &cobra.Command{Use: "berth [OPTIONS] COMMAND"}
	group := &cobra.Command{Use: "network COMMAND"}
	leaf := func(use string, args cobra.PositionalArgs) *cobra.Command {
		return &cobra.Command{Use: use, Args: args, RunE: func(*cobra.Command, []string) error { return nil }}
	}
	group.AddCommand(leaf("ls [OPTIONS]", cobra.NoArgs))
	root.AddCommand(group, leaf("logs [OPTIONS] CONTAINER", cobra.ExactArgs(1)), leaf("rm [OPTIONS] CONTAINER [CONTAINER...]", cobra.MinimumNArgs(1)),
		leaf("commit CONTAINER [REPO]", cobra.RangeArgs(1, 2)))
	DockerArgs(root)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, "\nRun 'berth --help' for more information"},
		{[]string{"network", "bogus"}, "\nUsage:  berth network\n\nRun 'berth network --help' for more information"},
		{[]string{"network", "ls", "x"}, "\nUsage:  berth network ls [OPTIONS]\n\nRun 'berth network ls --help' for more information"},
		{[]string{"logs"}, "\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information"},
		{[]string{"rm"}, "\nUsage:  berth rm [OPTIONS] CONTAINER [CONTAINER...]\n\nSee 'berth rm --help' for more information"},
		{[]string{"commit"}, "\nUsage:  berth commit CONTAINER [REPO]\n\nRun 'berth commit --help' for more information"},
	}
	for _, c := range cases {
		cmd, args, err := root.Find(c.args)
		if err == nil {
			err = cmd.ValidateArgs(args)
		}
		var ue UsageError
		if !errors.As(err, &ue) || ue.Hint() != c.want {
			t.Errorf("%v: %#v, want hint %q", c.args, err, c.want)
		}
	}
	logs, _, _ := root.Find([]string{"logs"})
	var ue UsageError
	if !errors.As(FlagError(logs, errors.New("unknown flag: --x")), &ue) || ue.Code != 125 ||
		ue.Hint() != "\nUsage:  berth logs [OPTIONS] CONTAINER\n\nRun 'berth logs --help' for more information" {
		t.Errorf("FlagError: %#v", ue)
	}
}
