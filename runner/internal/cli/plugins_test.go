package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// pluginPath is a PATH holding the misbehaving test plugins and the Python
// example (runner-plugin-slo) ahead of the system's.
func pluginPath(t *testing.T) string {
	t.Helper()
	td, err := filepath.Abs(filepath.Join("..", "plugin", "testdata"))
	require.NoError(t, err)
	ex, err := filepath.Abs(filepath.Join("..", "..", "..", "protocol", "plugins"))
	require.NoError(t, err)
	return "PATH=" + td + ":" + ex + ":" + os.Getenv("PATH")
}

// writeGPUResult writes a results directory of engines A and B (B 1.5× A's
// times), 3 launches × 4 timed iterations of 16 new tokens, with NVML
// energy per token, as `runner bench` would have left it.
func writeGPUResult(t *testing.T, dir string) {
	t.Helper()
	req := protocol.Request{Device: "cuda:0", DType: "bf16", Warmup: 0, Iterations: 4,
		Cases: []protocol.Case{{Name: "c", PromptTokens: []int{1, 2, 3, 4}, MaxNewTokens: 16, BatchSize: 1}}}
	w, err := results.Create(dir)
	require.NoError(t, err)
	defer w.Close()
	order := 0
	for l := range 3 {
		for e, label := range []string{"A", "B"} {
			rec := results.Record{Engine: label, Spec: config.EngineSpec{Name: "reference"}, Launch: l, Order: order, Status: results.StatusOK,
				StartedAt: time.Unix(1_800_000_000, 0).UTC(), ColdStartNs: 1e9, DurationNs: 2e9}
			order++
			for i := range 4 {
				step := int64(float64(2e6) * (1 + 0.5*float64(e)) * (1 + 0.01*float64(l) + 0.001*float64(i)))
				raw := protocol.Iteration{Case: 0, Index: i, PromptTokens: 4, OutputTokens: [][]int{make([]int, 16)}}
				for k := range 16 {
					raw.TokenNs = append(raw.TokenNs, int64(k+1)*step)
				}
				raw.EndNs = raw.TokenNs[15]
				rec.Iterations = append(rec.Iterations, results.Iteration{CaseName: "c", ArrivedNs: 1e9, Raw: raw, Metrics: metrics.FromIteration(&raw)})
			}
			rec.Telemetry, _ = json.Marshal(telemetry.Summary{EnergyPerTokenJ: 0.4 * (1 + 0.5*float64(e))})
			require.NoError(t, w.Append(&rec))
		}
	}
	require.NoError(t, results.WriteJSON(dir, results.EnvFile, envinfo.Env{CreatedAt: time.Unix(1_800_000_000, 0).UTC()}))
	require.NoError(t, results.WriteJSON(dir, "request.json", req))
}

// TestReportPlugins runs `runner report` over an existing result with the
// cost prices and one real plugin process each — the Python example, one
// that crashes, one that hangs, one that prints garbage — and checks that the
// result is intact every time (runs.jsonl untouched, every comparison
// there), that the cost section is there, and that a failing plugin is named
// in summary.json, report.md and on stderr.
func TestReportPlugins(t *testing.T) {
	tests := []struct {
		name    string
		plugin  string
		section string // the plugin's section title, "" when it fails
		failure string
		stderr  string
	}{
		{name: "good", plugin: "slo", section: "Latency targets (example plugin)"},
		{name: "crash", plugin: "crash", failure: "post: exited: exit status 3", stderr: "crash: cannot read the summary"},
		{name: "hang", plugin: "hang", failure: "post: timeout: no answer within 1s, killed", stderr: "hang: thinking"},
		{name: "garbage", plugin: "garbage", failure: "post: stdout is not a response object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "r")
			writeGPUResult(t, dir)
			runs, err := os.ReadFile(filepath.Join(dir, results.RunsFile))
			require.NoError(t, err)
			start := time.Now()
			o := runEnv(t, t.Context(), []string{pluginPath(t)}, "report", "--gpu-price", "$3.60/h", "--energy-price", "0.12/kWh",
				"--plugin", tt.plugin, "--plugin-timeout", "1s", dir)
			require.Equal(t, 0, o.code, "a plugin never fails the report: %s", o.stderr)
			require.Less(t, time.Since(start), 20*time.Second)

			after, err := os.ReadFile(filepath.Join(dir, results.RunsFile))
			require.NoError(t, err)
			require.Equal(t, runs, after, "runs.jsonl untouched")
			var sum analysis.Summary
			require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &sum))
			require.Len(t, sum.Cases[0].Comparisons, len(analysis.Compared), "the result is complete")
			require.Equal(t, &analysis.Prices{GPUPerHour: 3.6, EnergyPerKWh: 0.12, Currency: "$"}, sum.Prices)
			require.NotEmpty(t, sum.Sections)
			require.Equal(t, "cost", sum.Sections[0].Plugin)
			md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
			require.NoError(t, err)
			require.Contains(t, string(md), "## Cost per million output tokens")
			require.Contains(t, string(md), "c: **A is the cheapest by GPU time**")
			require.Contains(t, o.stdout, "## Cost per million output tokens", "the terminal shows the sections")
			if tt.section != "" {
				require.Empty(t, sum.PluginFailures)
				require.Len(t, sum.Sections, 2)
				require.Equal(t, tt.section, sum.Sections[1].Title)
				require.Contains(t, string(md), "## "+tt.section)
				return
			}
			require.Len(t, sum.Sections, 1, "only the cost section")
			require.Len(t, sum.PluginFailures, 1)
			f := sum.PluginFailures[0]
			require.Equal(t, tt.plugin, f.Plugin)
			require.Equal(t, plugin.HookPost, f.Hook)
			require.Contains(t, f.Error, tt.failure)
			require.Contains(t, f.Stderr, tt.stderr)
			require.Contains(t, string(md), "## Plugins that failed")
			require.Contains(t, string(md), "- plugin "+tt.plugin+" failed in its post hook: "+tt.failure)
			require.Contains(t, o.stderr, "note: plugin "+tt.plugin+" failed in its post hook (the result is kept)")
		})
	}
}

// TestReportKeepsPrices: a second `runner report` without price flags keeps
// the prices summary.json recorded, so the cost section stays; a flag
// replaces one price; a bad price is a usage error that writes nothing.
func TestReportKeepsPrices(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	writeGPUResult(t, dir)
	read := func() analysis.Summary {
		var s analysis.Summary
		require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &s))
		return s
	}
	o := run(t, t.Context(), "report", "--gpu-price", "2/h", dir)
	require.Equal(t, 0, o.code, o.stderr)
	require.Equal(t, &analysis.Prices{GPUPerHour: 2}, read().Prices)

	o = run(t, t.Context(), "report", dir)
	require.Equal(t, 0, o.code, o.stderr)
	s := read()
	require.Equal(t, &analysis.Prices{GPUPerHour: 2}, s.Prices)
	require.Len(t, s.Sections, 1)
	require.Equal(t, "Cost per million output tokens", s.Sections[0].Title)

	o = run(t, t.Context(), "report", "--energy-price", "0.30/kWh", dir)
	require.Equal(t, 0, o.code, o.stderr)
	require.Equal(t, &analysis.Prices{GPUPerHour: 2, EnergyPerKWh: 0.3}, read().Prices)

	for _, args := range [][]string{{"--gpu-price", "free"}, {"--energy-price", "0.1/h"}, {"--plugin", "nope"}} {
		before, err := os.ReadFile(filepath.Join(dir, results.SummaryFile))
		require.NoError(t, err)
		o = run(t, t.Context(), append(append([]string{"report"}, args...), dir)...)
		require.Equal(t, cli.ExitUsage, o.code, "%v: %s", args, o.stderr)
		after, err := os.ReadFile(filepath.Join(dir, results.SummaryFile))
		require.NoError(t, err)
		require.Equal(t, before, after, "%v: nothing rewritten", args)
	}
	require.Contains(t, o.stderr, "plugin nope: not found")
}

// TestBenchPlugins runs real benchmarks with plugins: the example plugin
// vetoes a run ("the card is reserved") before anything is launched or
// written; a plugin that crashes in both hooks costs nothing — the benchmark
// runs, its result is complete, and the report says the plugin failed.
func TestBenchPlugins(t *testing.T) {
	bin := testbin.Dir(t)
	path := pluginPath(t)

	root := filepath.Join(t.TempDir(), "results")
	o := runEnv(t, t.Context(), []string{path, "CIB_RESERVED=the card is reserved"},
		"--bin-dir", bin, "--out", root, "--config", testConfig(t, ""), "--engines", "reference", "--plugin", "slo")
	require.Equal(t, cli.ExitError, o.code, o.stderr)
	require.Contains(t, o.stderr, "runner: plugin slo vetoed the run: the card is reserved")
	require.NoDirExists(t, root, "nothing launched, nothing written")

	o = runEnv(t, t.Context(), []string{path}, "--bin-dir", bin, "--out", root, "--config", testConfig(t, "plugins: [crash]\nprices: {gpu: 1.5/h}\n"),
		"--engines", "reference", "--plugin", "slo")
	require.Equal(t, 0, o.code, o.stderr)
	dir := resultDir(t, root)
	var sum analysis.Summary
	require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &sum))
	require.Len(t, sum.Cases[0].Results[0].Metrics["e2e_ms"].Samples, 2, "the benchmark ran")
	var titles, failed []string
	for _, s := range sum.Sections {
		titles = append(titles, s.Plugin+": "+s.Title)
	}
	for _, f := range sum.PluginFailures {
		failed = append(failed, f.Plugin+" "+f.Hook)
	}
	require.Equal(t, []string{"cost: Cost per million output tokens", "slo: Latency targets (example plugin)"}, titles)
	require.Equal(t, []string{"crash pre", "crash post"}, failed)
	md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	require.Contains(t, string(md), "- plugin crash failed in its pre hook: pre: exited: exit status 3")
	require.True(t, strings.Contains(string(md), "Prices are the user's inputs, not measurements: GPU $1.5 per hour."), "the config's price")

	// Re-reported, the pre-hook failure stays on record.
	o = runEnv(t, t.Context(), []string{path}, "report", dir)
	require.Equal(t, 0, o.code, o.stderr)
	sum = analysis.Summary{}
	require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &sum))
	require.Len(t, sum.PluginFailures, 1)
	require.Equal(t, plugin.HookPre, sum.PluginFailures[0].Hook)
}
