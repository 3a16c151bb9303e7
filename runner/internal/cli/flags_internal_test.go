package cli

import (
	"testing"

	"github.com/stretchr/testify/require"
	ucli "github.com/urfave/cli/v2"
)

// TestFlagsFirst: arguments typed before a command's flags move after them, and a flag that takes a value keeps it
// — for every flag of the app (valueFlags is derived from it), not a hand-kept list.
func TestFlagsFirst(t *testing.T) {
	app := newApp(&env{})
	vf := valueFlags(app.Commands)
	require.Equal(t, []string{"runner", "suite", "--bin-dir", "b", "--max-cells", "1", "--dry-run", "cfg.yaml"},
		flagsFirst([]string{"runner", "suite", "cfg.yaml", "--bin-dir", "b", "--max-cells", "1", "--dry-run"}, vf))
	require.Equal(t, []string{"runner", "report", "--format", "json", "-o", "x", "dir"},
		flagsFirst([]string{"runner", "report", "dir", "--format", "json", "-o", "x"}, vf))
	// A name that is a boolean flag somewhere and takes a value elsewhere would make one of them eat an argument.
	bools := map[string]bool{}
	var walk func([]*ucli.Command)
	walk = func(cs []*ucli.Command) {
		for _, c := range cs {
			for _, f := range c.Flags {
				if _, ok := f.(*ucli.BoolFlag); ok {
					for _, n := range f.Names() {
						bools[n] = true
					}
				}
			}
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	for n := range bools {
		require.False(t, vf["--"+n] || vf["-"+n], "flag %s is boolean in one command and takes a value in another", n)
	}
	for _, f := range []string{"--max-cells", "--stop-after", "--rounds", "-e", "--native-timeout"} {
		require.True(t, vf[f], f)
	}
}
