package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/observer"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestObserverUsage: the errors a user meets before anything runs, with nothing written.
func TestObserverUsage(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{name: "no engine", args: []string{"observer", "--model", model}, want: "want one ENGINE"},
		{name: "no off", args: []string{"observer", "reference", "--model", model, "--modes", "10ms,100ms"}, want: "off must be one of them"},
		{name: "bad mode", args: []string{"observer", "reference", "--model", model, "--modes", "off,often"}, want: `mode "often"`},
		{name: "engine missing", args: []string{"observer", "candle", "--model", model, "--bin-dir", t.TempDir(), "--device", "cpu"}, want: `engine "candle" not found`},
		{name: "model without config.json", args: []string{"observer", "reference", "--model", t.TempDir()}, want: "runner models synth"},
		{name: "bad rounds", args: []string{"observer", "reference", "--model", model, "--rounds", "0"}, want: "--rounds ≥ 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := append(tt.args, "--out", out)
			if !strings.Contains(strings.Join(args, " "), "--bin-dir") {
				args = append(args, "--bin-dir", bin)
			}
			o := run(t, t.Context(), args...)
			require.Equal(t, cli.ExitUsage, o.code, "stderr: %s", o.stderr)
			require.Contains(t, o.stderr, tt.want)
			ents, _ := os.ReadDir(out)
			require.Empty(t, ents)
		})
	}
}

// TestObserverCPU runs the whole check with real reference-engine processes on CPU: every mode launched once per
// round in the rotated order, each launch's results and the record written. On a CPU nothing is sampled, so no
// timing is asserted: the flow, the files and the exit code's meaning (0 within, 4 outside ±tolerance).
func TestObserverCPU(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	out := t.TempDir()
	o := run(t, t.Context(), "observer", "reference:threads=1", "--model", model, "--device", "cpu", "--dtype", "f32",
		"--modes", "off,100ms,p10ms", "--rounds", "3", "--warmup", "0", "--iterations", "2", "--new-tokens", "4",
		"--prompt-len", "8", "--bin-dir", bin, "--out", out, "--tolerance", "0.5")
	require.Contains(t, []int{0, cli.ExitOutsideTolerance}, o.code, "stderr: %s", o.stderr)
	dir := resultDir(t, out)
	b, err := os.ReadFile(filepath.Join(dir, observer.SummaryFile))
	require.NoError(t, err)
	var s observer.Summary
	require.NoError(t, json.Unmarshal(b, &s))
	require.Len(t, s.Launches, 10)
	require.Equal(t, observer.PrimeMode, s.Launches[0].Mode, "the priming launch first, judged nowhere")
	require.Equal(t, 0, s.Launches[0].Round)
	var order []string
	for _, l := range s.Launches {
		require.Empty(t, l.Error)
		require.Len(t, l.Iterations, 2, "timed iterations only")
		require.Nil(t, l.SamplerBusyPct, "a CPU launch samples nothing")
		order = append(order, l.Mode)
		runs, _ := filepath.Glob(filepath.Join(dir, l.Path, "*-observer-reference"))
		require.Len(t, runs, 1, "the launch's results directory, named for the check")
	}
	require.Equal(t, "prime off 100ms p10ms 100ms p10ms off p10ms off 100ms", strings.Join(order, " "))
	require.Len(t, s.Results, 2)
	for _, r := range s.Results {
		require.Len(t, r.Verdicts, 2)
		require.Equal(t, "paired", r.Verdicts[0].Method)
	}
	require.Equal(t, s.Within, o.code == 0)
	require.Contains(t, o.stdout, "observer reference decode tok/s: 100ms / off = ")
	require.Contains(t, o.stdout, "observer reference TTFT ms: p10ms / off = ")
	// Each mode's flags are on record (a flag bench refused would have failed its launches above).
	rep, err := os.ReadFile(filepath.Join(dir, observer.ReportFile))
	require.NoError(t, err)
	require.Contains(t, string(rep), "| p10ms | `--power-interval 10ms` |")
	log, err := os.ReadFile(filepath.Join(dir, "r1-off.log"))
	require.NoError(t, err)
	require.NotContains(t, string(log), "FAILED")
}
