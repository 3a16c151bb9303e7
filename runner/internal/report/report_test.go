package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// iteration builds one timed iteration with n tokens spaced tpot apart after
// a first token at ttft (all in µs).
func iteration(ci, idx int, ttft, tpot int64, n int, tokens []int) results.Iteration {
	raw := protocol.Iteration{Case: ci, Index: idx, PromptTokens: 8, OutputTokens: [][]int{tokens}}
	for i := range n {
		raw.TokenNs = append(raw.TokenNs, (ttft+int64(i)*tpot)*1000)
	}
	raw.EndNs = raw.TokenNs[n-1] + 1000
	return results.Iteration{CaseName: "c", Raw: raw, Metrics: metrics.FromIteration(&raw)}
}

// records are two engines, three launches each, with B about 20% faster per
// token than A, plus one failed launch. B's greedy outputs are identical
// within each launch but its third launch differs from the others.
func records() []results.Record {
	var recs []results.Record
	order := 0
	for launch := range 3 {
		for e, label := range []string{"A", "B"} {
			r := results.Record{Engine: label, Launch: launch, Order: order, Status: results.StatusOK, ColdStartNs: int64(1e9 + 1e8*e + 1e7*launch),
				Loaded: &protocol.Loaded{WeightsToHostNs: 5e8, TotalNs: 9e8}}
			if label == "A" { // A: a host-bound loop, one core; B: no record (an older result)
				r.HostCPU = &results.HostCPU{CPUSeconds: 0.98 + 0.04*float64(launch), WallSeconds: 1}
			}
			order++
			toks := []int{5, 6, 7, 8, 9, 10}
			if label == "B" {
				toks = []int{5, 6, 7, 1, 9, 10}
				if launch == 2 { // B's last launch parts from its others at token 5: the determinism lines
					toks = []int{5, 6, 7, 1, 9, 11}
				}
			}
			for i := range 6 {
				jitter := int64((i*7+launch*3)%5) * 20
				tpot := int64(1000 + jitter)
				if label == "B" {
					tpot = 800 + jitter
				}
				it := iteration(0, i, 5000+jitter, tpot, 6, toks)
				it.Raw.PeakAllocBytes = int64(3 << 20)
				r.Iterations = append(r.Iterations, it)
			}
			recs = append(recs, r)
		}
	}
	recs = append(recs, results.Record{Engine: "B", Launch: 3, Order: order, Status: results.StatusFailed, Exit: 139, Error: "engine exited: signal: segmentation fault"})
	return recs
}

func summary(t *testing.T) *analysis.Summary { return summaryWith(t, false) }

// summaryWith builds the golden summary, with NVML figures and a GPU record
// when gpu is set.
func summaryWith(t *testing.T, gpu bool) *analysis.Summary {
	env := envinfo.Env{
		CreatedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Host: "h", OS: "Debian", Kernel: "6.1", CPU: "cpu", CPUs: 2,
		CPUPower:  envinfo.CPUPower{IdleDriver: "haltpoll", IdleGovernor: "haltpoll", LoadAvg1: 0.5},
		GoVersion: "go1.26", GitCommit: "0123456789abcdef", Command: []string{"runner", "--engines", "A,B"},
		Engines:   map[string]protocol.Info{"A": {Library: "liba", LibraryVersion: "1.0"}, "B": {Library: "libb", LibraryVersion: "2.0"}},
		Model:     envinfo.Model{Dir: "models/tiny", Hash: "sha256:abcdef0123456789", Params: 158000, WeightBytesPerToken: 501200, DType: "f32"},
		Telemetry: "off (no NVML)",
	}
	req := analysis.RequestInfo{Device: "cpu", DType: "f32", Warmup: 0, Iterations: 6,
		Cases: []protocol.Case{{Name: "c", PromptTokens: make([]int, 8), MaxNewTokens: 6, BatchSize: 1}}}
	recs := records()
	if gpu {
		env.GPU = json.RawMessage(`{"name":"NVIDIA H100 80GB HBM3","uuid":"GPU-0000","driver_version":"580.159.04","theoretical_bandwidth_bytes_per_s":3.35e12}`)
		env.Bandwidth = &roofline.Measurement{UUID: "GPU-0000", BytesPerSec: 3.009e12}
		env.Telemetry = "on"
		aUnsampled := false
		for i := range recs {
			if recs[i].Status != results.StatusOK {
				continue
			}
			tel := telemetry.Summary{ProcMemPeak: 3 << 30, DevMemPeak: 4 << 30, EnergyPerTokenJ: 0.5 + 0.01*float64(i), PowerMeanW: 400,
				PrefillPowerW: 450, DecodePowerW: 380, SMUtilMean: 90, SMClockMeanMHz: 1980, TempMaxC: 60, SamplerBusyPct: 1.5 + 0.1*float64(i)}
			if i == 1 {
				tel.Throttled, tel.ReasonNames = true, []string{"sw_power_cap"}
			}
			// Prefill power: B's prefills and A's first one fell between samples (0: not measured); A's figure is the
			// median of the launches that sampled it, B's is "–", never 0 W.
			tel.PrefillPowerW = 440 + 10*float64(i)
			if recs[i].Engine == "B" || !aUnsampled {
				aUnsampled = aUnsampled || recs[i].Engine == "A"
				tel.PrefillPowerW = 0
			}
			recs[i].Telemetry, _ = json.Marshal(tel)
			if recs[i].Engine == "B" { // B runs a q8_0 file: its roofline counts 34 bytes per 32 weights, not f32's 4 per weight
				l := *recs[i].Loaded
				l.DType = "q8_0"
				recs[i].Loaded = &l
			}
		}
	}
	s, err := analysis.Build("golden", env, req, []string{"A", "B"}, "", recs, analysis.Options{})
	require.NoError(t, err)
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), string(got), "%s differs from golden (go test ./internal/report -update to accept)", name)
}

func TestGolden(t *testing.T) {
	s := summary(t)
	var md, csv, bench bytes.Buffer
	require.NoError(t, report.Markdown(&md, s))
	require.NoError(t, report.CSV(&csv, s))
	recs := records()
	require.NoError(t, report.Bench(&bench, s, func(engine, caseName string) []report.BenchSample {
		var out []report.BenchSample
		for _, r := range recs {
			if r.Engine != engine || r.Status != results.StatusOK {
				continue
			}
			for _, it := range r.Iterations {
				out = append(out, report.BenchSample{E2ENs: it.Metrics.E2ENs, TTFTNs: it.Metrics.TTFTNs, TPOTNs: it.Metrics.TPOTNs, DecodeTPS: it.Metrics.DecodeTPS})
			}
		}
		return out
	}))
	golden(t, "report.md", md.Bytes())
	var page bytes.Buffer
	require.NoError(t, report.HTML(&page, s))
	golden(t, "report.html", page.Bytes())
	golden(t, "report.csv", csv.Bytes())
	golden(t, "bench.txt", bench.Bytes())

	md.Reset()
	require.NoError(t, report.Markdown(&md, summaryWith(t, true)))
	golden(t, "report-gpu.md", md.Bytes())
}

// TestSummaryVerdicts checks the analysis behind the golden report: B is
// faster per token (significant), parity finds the divergence at token 4,
// the failed launch is listed.
func TestSummaryVerdicts(t *testing.T) {
	s := summary(t)
	c := s.Cases[0]
	var tpot *analysis.Comparison
	for i := range c.Comparisons {
		if c.Comparisons[i].Metric == "tpot_ms" {
			tpot = &c.Comparisons[i]
		}
	}
	require.NotNil(t, tpot)
	require.True(t, tpot.Significant, "B's 20%% lower TPOT must be significant: %+v", tpot.Comparison)
	require.InDelta(t, 0.8, tpot.Ratio, 0.03)
	require.Equal(t, 3, c.Parity[0].Matched)
	require.InDelta(t, 5.0/6, c.Parity[0].Agree, 1e-9)
	require.Len(t, s.Failures, 1)
	require.Equal(t, 4, s.Engines[1].Launches)
	require.Equal(t, 1, s.Engines[1].Failed)
	// A's launches: 0.98, 1.02, 1.06 CPU s over 6 iterations × 6 steps (warm-ups count: the window is loaded→done).
	require.Equal(t, 3, s.Engines[0].HostCPUPerStep.N)
	require.InDelta(t, 1020.0/36, s.Engines[0].HostCPUPerStep.Median, 1e-9)
	require.Zero(t, s.Engines[1].HostCPUPerStep.N, "B has no host CPU record")
}

// TestEquivalenceWords: with an equivalence margin, a metric the test shows within it reads "the same within ±m"
// (headline and verdict), one it cannot reads "not shown to be within ±m", and a significant difference is said as
// before; without a margin nothing changes (the golden files).
func TestEquivalenceWords(t *testing.T) {
	req := analysis.RequestInfo{Device: "cpu", DType: "f32", Iterations: 6,
		Cases: []protocol.Case{{Name: "c", PromptTokens: make([]int, 8), MaxNewTokens: 6, BatchSize: 1}}}
	build := func(m float64) (*analysis.Summary, map[string]string) {
		s, err := analysis.Build("eq", envinfo.Env{CreatedAt: time.Unix(0, 0)}, req, []string{"A", "B"}, "", records(), analysis.Options{Equivalence: m})
		require.NoError(t, err)
		v := map[string]string{}
		for _, c := range s.Cases[0].Comparisons {
			v[c.Metric] = report.Verdict(c)
		}
		return s, v
	}
	s, v := build(0.05)
	require.Equal(t, 0.05, s.Equivalence)
	hs := report.Headlines(s)
	require.Len(t, hs, 1)
	require.Contains(t, hs[0].Text, "**B is 1.24× faster than A in TPOT**")
	require.Contains(t, hs[0].Text, "; the same within ±5% in TTFT (equivalence test)")
	require.Regexp(t, `^B vs A in TTFT: the same within ±5% \(ratio 1\.00 \[95% CI [0-9.]+–[0-9.]+\], equivalence test p < 0\.001, Holm; difference launch-level p = `, v["ttft_ms"])
	require.Regexp(t, `^\*\*B is 1\.24× faster than A in TPOT\*\* \[95% CI 1\.20–1\.28×\], launch-level p < 0\.001 \(Holm\)$`, v["tpot_ms"], "significant and 24% apart: no equivalence words")

	var md bytes.Buffer
	require.NoError(t, report.Markdown(&md, s))
	require.Contains(t, md.String(), "- Equivalence (within ±5%): two one-sided Welch t-tests (TOST)")

	s, v = build(0.0005)
	require.Contains(t, report.Headlines(s)[0].Text, "; no significant difference, nor shown to be within ±0.05%, in TTFT")
	require.Regexp(t, `^B vs A in TTFT: no significant difference \(.*\); not shown to be within ±0\.05% \(equivalence test p = [0-9.]+, Holm\)$`, v["ttft_ms"])
}
