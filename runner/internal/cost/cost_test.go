package cost_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cost"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

const newTokens = 128

// records are engines A (E2E 128 ms: 1 ms per output token) and B (twice
// as slow), 3 launches × 4 timed iterations each, launch effects of ±1%, on
// case "b1" (batch 1) and "b4" (batch 4, same times: 4× the tokens). A's
// NVML energy is 0.36 J per output token, B's 0.72; engine C failed every
// launch.
func records() []results.Record {
	var recs []results.Record
	order := 0
	for l := range 3 {
		for e, label := range []string{"A", "B"} {
			slow := float64(e + 1)
			launch := 1 + 0.01*float64(l-1)
			r := results.Record{Engine: label, Launch: l, Order: order, Status: results.StatusOK}
			order++
			for ci, batch := range []int{1, 4} {
				for i := range 4 {
					raw := protocol.Iteration{Case: ci, Index: i, PromptTokens: 8}
					for range batch {
						raw.OutputTokens = append(raw.OutputTokens, make([]int, newTokens))
					}
					for k := range newTokens {
						raw.TokenNs = append(raw.TokenNs, int64(float64(1e6*(k+1))*slow*launch))
					}
					raw.EndNs = raw.TokenNs[newTokens-1]
					r.Iterations = append(r.Iterations, results.Iteration{Raw: raw, Metrics: metrics.FromIteration(&raw)})
				}
			}
			r.Telemetry, _ = json.Marshal(telemetry.Summary{EnergyPerTokenJ: 0.36 * slow})
			recs = append(recs, r)
		}
		recs = append(recs, results.Record{Engine: "C", Launch: l, Order: order, Status: results.StatusFailed, Error: "boom"})
		order++
	}
	return recs
}

func summary(t *testing.T, p *analysis.Prices) *analysis.Summary {
	t.Helper()
	req := analysis.RequestInfo{Device: "cuda:0", DType: "bf16", Iterations: 4, Cases: []protocol.Case{
		{Name: "b1", PromptTokens: make([]int, 8), MaxNewTokens: newTokens, BatchSize: 1},
		{Name: "b4", PromptTokens: make([]int, 8), MaxNewTokens: newTokens, BatchSize: 4},
	}}
	s, err := analysis.Build("cost", envinfo.Env{CreatedAt: time.Unix(0, 0)}, req, []string{"A", "B", "C"}, "", records(), analysis.Options{})
	require.NoError(t, err)
	s.Prices = p
	return s
}

// TestCompute pins the arithmetic: at 3.60 per GPU hour, 1 ms of E2E per
// output token is 1000 s = 1.00 per million output tokens (batch 4: 4× the
// tokens in the same time, 0.25); 0.36 J per token is 0.1 kWh per million
// tokens, 0.012 at 0.12 per kWh. CIs are E2E's launch-level CI scaled: launch
// medians 0.99, 1.00, 1.01 ms per token give exp(±t(0.975, 2)·0.01/√3) =
// [0.9754, 1.025] (by hand: t = 4.303, SD of the logs 0.0100).
func TestCompute(t *testing.T) {
	s := summary(t, &analysis.Prices{GPUPerHour: 3.60, EnergyPerKWh: 0.12})
	f, err := cost.Compute(s)
	require.NoError(t, err)
	require.Equal(t, "$", f.Prices.Currency)
	want := []struct {
		caseName, engine  string
		gpu, energyJ, eng float64
	}{
		{"b1", "A", 1.00, 0.36, 0.012},
		{"b1", "B", 2.00, 0.72, 0.024},
		{"b4", "A", 0.25, 0.36, 0.012},
		{"b4", "B", 0.50, 0.72, 0.024},
	}
	var rows []cost.Row
	for _, r := range f.Rows {
		if r.Engine != "C" {
			rows = append(rows, r)
			continue
		}
		require.Nil(t, r.GPUPerMTok, "C has no timings")
		require.Zero(t, r.EnergyPerMTok)
	}
	require.Len(t, rows, len(want))
	for i, w := range want {
		r := rows[i]
		require.Equal(t, w.caseName, r.Case)
		require.Equal(t, w.engine, r.Engine)
		require.InDelta(t, w.gpu, r.GPUPerMTok.Value, w.gpu*1e-3, "Compute %s/%s GPU cost", w.caseName, w.engine)
		require.InDelta(t, w.energyJ, r.EnergyJPerToken, 1e-12)
		require.InDelta(t, w.eng, r.EnergyPerMTok, 1e-12, "Compute %s/%s energy cost", w.caseName, w.engine)
		// The CI is E2E's launch-level CI under the same linear map.
		e2e := s.Case(w.caseName).Result(w.engine).Metrics["e2e_ms"].Launch
		k := 3.60 / 3600 / 1e3 * 1e6 / float64(r.TokensPerIteration)
		require.True(t, r.GPUPerMTok.HasCI)
		require.InDelta(t, e2e.Lo*k, r.GPUPerMTok.Lo, 1e-12)
		require.InDelta(t, e2e.Hi*k, r.GPUPerMTok.Hi, 1e-12)
		require.Less(t, r.GPUPerMTok.Lo, r.GPUPerMTok.Value)
		// Tokens per currency unit inverts it, bounds swapped.
		require.InDelta(t, 1e6/r.GPUPerMTok.Value, r.TokensPerUnit.Value, 1e-6)
		require.InDelta(t, 1e6/r.GPUPerMTok.Hi, r.TokensPerUnit.Lo, 1e-6)
	}
	require.Len(t, f.Cheapest, 4, "by GPU time and by energy, per case")
	ch := f.Cheapest[0]
	require.Equal(t, "gpu_time", ch.By)
	require.Equal(t, "A", ch.Engine)
	require.Len(t, ch.Others, 1)
	require.InDelta(t, 2.0, ch.Others[0].Ratio, 1e-3)
	require.True(t, ch.Others[0].HasTest)
	require.True(t, ch.Others[0].Significant, "B's doubled E2E is significant: %+v", ch.Others[0])
	require.Equal(t, "b1: **A is the cheapest by GPU time**, $1.0000 [0.9754, 1.025] per 1M output tokens; "+
		"B costs 2.00× as much [95% CI 1.97–2.03×], launch-level p < 0.001 (Holm)", cost.Words(ch, "$"))
	require.Equal(t, "b1: **A is the cheapest by energy**, $0.0120 per 1M output tokens; B 2.00× as much (medians over launches, no CI)",
		cost.Words(f.Cheapest[1], "$"))
	// Not significant: a CI that excludes 1 says too few launches; one that holds 1 says no difference.
	few := cost.Cheapest{Case: "c", By: "gpu_time", Engine: "A", PerMTok: cost.Interval{Value: 1, Lo: 0.9, Hi: 1.1},
		Others: []cost.Versus{{Engine: "B", Ratio: 3, RatioLo: 2.5, RatioHi: 3.6, P: 0.09, HasTest: true}, {Engine: "C", Ratio: 1.02, RatioLo: 0.97, RatioHi: 1.08, P: 0.8, HasTest: true}}}
	require.Equal(t, "c: **A is the cheapest by GPU time**, $1.000 per 1M output tokens; "+
		"B costs 3.00× as much [95% CI 2.50–3.60×], not significant: too few launches to decide (launch-level p = 0.090, Holm); "+
		"C costs 1.02× as much [95% CI 0.970–1.08×], no significant difference (launch-level p = 0.800, Holm)", cost.Words(few, "$"))
}

// TestSection: the section goes through the plugin interface from
// summary.json alone, and says which prices it used; without a price it is
// an error, not an empty section.
func TestSection(t *testing.T) {
	tests := []struct {
		name    string
		prices  *analysis.Prices
		columns []string
		prose   string
		wantErr error
	}{
		{name: "no prices", wantErr: cost.ErrNoPrice},
		{name: "zero prices", prices: &analysis.Prices{}, wantErr: cost.ErrNoPrice},
		{name: "gpu only", prices: &analysis.Prices{GPUPerHour: 2, Currency: "€"},
			columns: []string{"case", "engine", "GPU time s / 1M out tok [95% CI]", "€ GPU time / 1M out tok [95% CI]", "out tok per € [95% CI]", "energy J / out tok"},
			prose:   "Prices are the user's inputs, not measurements: GPU €2 per hour."},
		{name: "energy only", prices: &analysis.Prices{EnergyPerKWh: 0.3},
			columns: []string{"case", "engine", "GPU time s / 1M out tok [95% CI]", "energy J / out tok", "$ energy / 1M out tok"},
			prose:   "NVML summarises a launch, not a case: energy per token is each engine's over all its cases."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(summary(t, tt.prices))
			require.NoError(t, err)
			secs, err := cost.Analyzer{}.Post(t.Context(), b)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, secs, 1)
			require.Equal(t, "Cost per million output tokens", secs[0].Title)
			require.Equal(t, tt.columns, secs[0].Table.Columns)
			require.Len(t, secs[0].Table.Rows, 6)
			require.Contains(t, secs[0].Markdown, tt.prose)
			var f cost.Fields
			require.NoError(t, json.Unmarshal(secs[0].Fields, &f))
			require.Len(t, f.Rows, 6)
		})
	}
}

func TestParsePrice(t *testing.T) {
	tests := []struct {
		in, unit string
		v        float64
		cur      string
		wantErr  string
	}{
		{in: "3.50/h", unit: "h", v: 3.5},
		{in: "3.50", unit: "h", v: 3.5},
		{in: "$3.50/hour", unit: "h", v: 3.5, cur: "$"},
		{in: "€ 2 / hr", unit: "h", v: 2, cur: "€"},
		{in: "0.12/kWh", unit: "kWh", v: 0.12},
		{in: "0.12/kwh", unit: "kWh", v: 0.12},
		{in: "0.12/h", unit: "kWh", wantErr: `price "0.12/h": per "h", want per kWh`},
		{in: "-1/h", unit: "h", wantErr: `price "-1/h": want a positive number per h, e.g. 3.50/h`},
		{in: "cheap", unit: "h", wantErr: `price "cheap": want a positive number per h, e.g. 3.50/h`},
		{in: "NaN", unit: "h", wantErr: `price "NaN": want a positive number per h, e.g. 3.50/h`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, cur, err := cost.ParsePrice(tt.in, tt.unit)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.v, v, "ParsePrice(%q) = %v, want %v", tt.in, v, tt.v)
			require.Equal(t, tt.cur, cur)
		})
	}
}
