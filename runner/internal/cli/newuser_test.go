package cli_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestNewUser drives the CLI as a new user would: help, version, a sweep
// from the command line in every stdout format, and the common mistakes,
// each with the message it must print and its exit code.
func TestNewUser(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	base := []string{"--bin-dir", bin, "--model", model, "--launches", "2", "--iterations", "3", "--warmup", "1", "-q"}

	t.Run("help and version", func(t *testing.T) {
		o := run(t, t.Context(), "--help")
		require.Equal(t, 0, o.code)
		assert.Contains(t, o.stdout, "--prompt-len")
		assert.Contains(t, o.stdout, "(default: the config's)", "real defaults, not 0 or -1")
		assert.Contains(t, o.stdout, "runner --engines reference:threads=1,reference:threads=2 --prompt-len", "an example")
		o = run(t, t.Context(), "help", "report")
		require.Equal(t, 0, o.code)
		assert.Contains(t, o.stdout, "--format")
		for _, cmd := range [][]string{{"report"}, {"compare"}, {"conformance"}, {"engines"}, {"models", "synth"}, {"models", "convert"}, {"models", "import"}, {"gpu", "probe"}, {"cpu", "probe"}} {
			o = run(t, t.Context(), append(cmd, "--help")...)
			require.Equal(t, 0, o.code, "%v --help", cmd)
			assert.Contains(t, o.stdout, "EXAMPLE:\n      runner "+strings.Join(cmd, " "), "an example in the help of %v", cmd)
		}
		o = run(t, t.Context(), "--version")
		require.Equal(t, 0, o.code)
		assert.Regexp(t, `^runner version git \S+ go1\.`, o.stdout)
	})

	t.Run("sweep in every format", func(t *testing.T) {
		sweep := append([]string{"--out", t.TempDir(), "--prompt-len", "8,16", "--new-tokens", "4", "--batch", "1,2"}, base...)
		o := run(t, t.Context(), append(sweep, "--format", "json")...)
		require.Equal(t, 0, o.code, o.stderr)
		var s analysis.Summary
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &s), "--format json is summary.json")
		var names []string
		for _, c := range s.Cases {
			names = append(names, c.Name)
		}
		assert.Equal(t, []string{"p8-n4-b1", "p8-n4-b2", "p16-n4-b1", "p16-n4-b2"}, names, "the cross product of the sweep")
		assert.Equal(t, 2, s.Cases[1].Batch)

		o = run(t, t.Context(), append(sweep, "--format", "jsonl")...)
		require.Equal(t, 0, o.code, o.stderr)
		sc := bufio.NewScanner(strings.NewReader(o.stdout))
		lines := 0
		for sc.Scan() {
			var row map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &row), "jsonl line %q", sc.Text())
			lines++
		}
		assert.Equal(t, 4*2*len(analysis.Metrics), lines, "one line per case × engine × metric")

		o = run(t, t.Context(), append(sweep, "-o", "csv")...)
		require.Equal(t, 0, o.code, o.stderr)
		rows, err := csv.NewReader(strings.NewReader(o.stdout)).ReadAll()
		require.NoError(t, err)
		assert.Equal(t, "case", rows[0][0])
		assert.Len(t, rows, 1+4*2*len(analysis.Metrics))

		// Flags after a command's argument work too.
		dirs, err := os.ReadDir(sweep[1])
		require.NoError(t, err)
		dir := filepath.Join(sweep[1], dirs[0].Name())
		o = run(t, t.Context(), "report", dir, "--format", "jsonl")
		require.Equal(t, 0, o.code, o.stderr)
		assert.True(t, strings.HasPrefix(o.stdout, "{\"case\":"), "report DIR --format jsonl: %.60q", o.stdout)
		o = run(t, t.Context(), "compare", dir, dir, "--alpha", "0.01")
		require.Equal(t, 0, o.code, o.stderr)
		assert.Contains(t, o.stdout, "| TPOT ms |")
		assert.NotContains(t, o.stdout, "within ±", "no equivalence column without a margin")
		// Every row gets the equivalence column; whether a run is shown the same as itself depends on its launch spread
		// (2 noisy CPU launches here: often not even within ±50%), which the stats tests cover with known truth.
		o = run(t, t.Context(), "compare", dir, dir, "--equivalence", "50%")
		require.Equal(t, 0, o.code, o.stderr)
		assert.Contains(t, o.stdout, "| within ±50%? (TOST p, Holm) |")
		eqRows := regexp.MustCompile(`(?m)^\| p8-n4-b[12] \|.*$`).FindAllString(o.stdout, -1)
		require.Len(t, eqRows, 2*2*len(analysis.Compared))
		for _, r := range eqRows {
			assert.Regexp(t, `\| (yes|not shown) \([0-9.e+-]+\) \|$`, r)
		}

		o = run(t, t.Context(), append(sweep, "--set", "name=swept", "--set", "timeouts.start=90s")...)
		require.Equal(t, 0, o.code, o.stderr)
		assert.True(t, strings.HasPrefix(o.stdout, "# swept\n"), "--set name=swept: %.40q", o.stdout)
		assert.Contains(t, o.stdout, "## Verdicts")
	})

	t.Run("engines that replace the config's and its baseline", func(t *testing.T) {
		// The config's baseline is one of its own engines; --engines replaces them, so the first of the new ones is the
		// baseline (2026-12-02 on the H200: the run was refused instead), while a --baseline typed with them is checked.
		cfg := filepath.Join(t.TempDir(), "base.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("model: "+model+"\nbaseline: one\nengines: [{name: reference, label: one}]\n"+
			"cases: [{name: a, prompt_len: 4, max_new_tokens: 4}]\n"), 0o644))
		args := append([]string{"--out", t.TempDir(), "--config", cfg, "--engines", "reference:threads=2,reference:threads=1", "--format", "json"}, base...)
		o := run(t, t.Context(), args...)
		require.Equal(t, 0, o.code, o.stderr)
		assert.Contains(t, o.stderr, `note: the config's baseline "one" is none of --engines; the baseline is the first, reference:threads=2`)
		var s analysis.Summary
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &s))
		assert.Equal(t, "reference:threads=2", s.Baseline)
		o = run(t, t.Context(), append(args, "--baseline", "one")...)
		assert.Equal(t, 2, o.code, o.stderr)
		assert.Contains(t, o.stderr, `baseline "one" is none of the engines (reference:threads=2, reference:threads=1)`)
	})

	t.Run("equivalence margin", func(t *testing.T) {
		// --equivalence adds a TOST to every comparison (stats.TOST, pinned against statsmodels): in summary.json the
		// margin and each comparison's equivalence test; `runner report` keeps the margin unless told another.
		args := append([]string{"--out", t.TempDir(), "--engines", "reference:threads=1,reference:threads=2", "--prompt-len", "8", "--new-tokens", "4",
			"--equivalence", "2%", "--format", "json"}, base...)
		o := run(t, t.Context(), args...)
		require.Equal(t, 0, o.code, o.stderr)
		var s analysis.Summary
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &s))
		assert.Equal(t, 0.02, s.Equivalence)
		require.NotEmpty(t, s.Cases[0].Comparisons)
		for _, c := range s.Cases[0].Comparisons {
			require.NotNil(t, c.Equivalence, c.Metric)
			assert.Equal(t, 0.02, c.Equivalence.Margin)
			assert.Equal(t, c.Equivalence.PAdj < c.Alpha, c.Equivalence.Equivalent)
		}
		dirs, err := os.ReadDir(args[1])
		require.NoError(t, err)
		dir := filepath.Join(args[1], dirs[0].Name())
		o = run(t, t.Context(), "report", dir, "--format", "json")
		require.Equal(t, 0, o.code, o.stderr)
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &s))
		assert.Equal(t, 0.02, s.Equivalence, "runner report keeps the run's margin")
		o = run(t, t.Context(), "report", dir, "--format", "json", "--equivalence", "0")
		require.Equal(t, 0, o.code, o.stderr)
		s = analysis.Summary{}
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &s))
		assert.Zero(t, s.Equivalence)
		assert.Nil(t, s.Cases[0].Comparisons[0].Equivalence, "--equivalence 0 turns it off")
	})

	t.Run("mistakes", func(t *testing.T) {
		out := t.TempDir()
		cfg := filepath.Join(t.TempDir(), "my.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte("model: "+model+"\nengines: [{name: reference}]\ncases: [{name: a, prompt_len: 4, max_new_tokens: 4}]\n"), 0o644))
		tests := []struct {
			name string
			args []string
			want string
		}{
			{"unknown format", []string{"--format", "yaml"}, `--format "yaml": want one of md, json, jsonl, csv`},
			{"bad sweep value", []string{"--prompt-len", "128,x"}, `--prompt-len "128,x": want positive integers`},
			{"set without value", []string{"--set", "launches"}, `--set "launches": want KEY=VALUE`},
			{"set of an unknown field", []string{"--set", "lanches=3"}, "field lanches not found"},
			{"misspelled baseline", []string{"--baseline", "reference:threads=3"}, `baseline "reference:threads=3" is none of the engines (reference:threads=1, reference:threads=2)`},
			{"missing config", []string{"--config", "nope.yaml"}, "read config: open nope.yaml: no such file or directory"},
			{"engine not built", []string{"--engines", "nosuchengine"}, "nosuchengine"},
			{"negative launches", []string{"--launches", "-1"}, "--launches -1: need at least 1"},
			{"equivalence margin of 100%", []string{"--equivalence", "100%"}, `--equivalence "100%": want a margin such as 2% or 0.02`},
			{"config with a typo", []string{"--config", cfg, "--set", "warmpu=1"}, "field warmpu not found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"--bin-dir", bin, "--model", model, "--out", out}, tt.args...)
				o := run(t, t.Context(), args...)
				assert.Equal(t, 2, o.code, "exit code of %v: %s", tt.args, o.stderr)
				assert.Contains(t, o.stderr, tt.want)
			})
		}
		ents, err := os.ReadDir(out)
		require.NoError(t, err)
		assert.Empty(t, ents, "no results directory for a refused run")
	})
}
