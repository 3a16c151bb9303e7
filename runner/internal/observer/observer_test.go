package observer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
)

func TestParseModes(t *testing.T) {
	m, err := ParseModes("off, default,10ms,p10ms")
	require.NoError(t, err)
	require.Equal(t, []Mode{
		{Name: "off", Flags: []string{"--no-telemetry"}},
		{Name: "default", Flags: []string{}},
		{Name: "10ms", Flags: []string{"--telemetry-interval", "10ms"}},
		{Name: "p10ms", Flags: []string{"--power-interval", "10ms"}},
	}, m)
	for in, want := range map[string]string{
		"100ms":      "off must be one of them",
		"off":        "at least one sampling setting",
		"off,off,1s": `mode "off" given twice`,
		"off,fast":   `mode "fast": want off, default`,
		"off,-10ms":  `mode "-10ms"`,
		"off,p0s":    `mode "p0s": want pDURATION`,
		"off,px":     `mode "px": want pDURATION`,
	} {
		_, err := ParseModes(in)
		require.ErrorContains(t, err, want, in)
	}
}

// TestOrder: over len(modes) rounds every mode runs once in every position (a Latin square).
func TestOrder(t *testing.T) {
	modes, err := ParseModes("off,10ms,100ms,p10ms")
	require.NoError(t, err)
	pos := map[string]map[int]bool{}
	for r := 1; r <= len(modes); r++ {
		o := Order(modes, r)
		require.Len(t, o, len(modes))
		for i, m := range o {
			if pos[m.Name] == nil {
				pos[m.Name] = map[int]bool{}
			}
			require.False(t, pos[m.Name][i], "%s twice in position %d", m.Name, i)
			pos[m.Name][i] = true
		}
	}
	require.Equal(t, Order(modes, 1), Order(modes, len(modes)+1), "the square repeats")
	require.Equal(t, "off", Order(modes, 1)[0].Name)
}

// simulate is a launcher with known truth: each round has its own level (a card or host drifting: ±10%), each launch
// its own offset (sd launchSD on the log scale), each iteration noise (sd 1%), and mode m multiplies decode tok/s by
// effect[m] and TTFT by 1/effect[m].
func simulate(seed uint64, effect map[string]float64, launchSD float64) Launcher {
	rng := rand.New(rand.NewPCG(seed, 7))
	level := map[int]float64{}
	return func(_ context.Context, round int, m Mode, dir string) (Launch, error) {
		if _, ok := level[round]; !ok {
			level[round] = 1 + 0.1*(rng.Float64()*2-1)
		}
		f := effect[m.Name]
		if f == 0 {
			f = 1
		}
		l := level[round] * math.Exp(launchSD*rng.NormFloat64())
		var its []adapter.Iteration
		its = append(its, adapter.Iteration{Warmup: true, DecodeTokS: 1, TTFTMs: 1000}) // a warm-up never counts
		for range 5 {
			n := math.Exp(0.01 * rng.NormFloat64())
			its = append(its, adapter.Iteration{DecodeTokS: 400 * l * f * n, TTFTMs: 20 / (l * f) * n})
		}
		busy := 4.0
		if m.Name == Off {
			return Launch{Iterations: its}, os.MkdirAll(dir, 0o755)
		}
		return Launch{Iterations: its, SamplerBusyPct: &busy}, os.MkdirAll(dir, 0o755)
	}
}

func verdict(t *testing.T, s *Summary, mode, metric string) adapter.Verdict {
	t.Helper()
	for _, r := range s.Results {
		if r.Mode != mode {
			continue
		}
		for _, v := range r.Verdicts {
			if v.Metric == metric {
				return v
			}
		}
	}
	t.Fatalf("no verdict for %s %s", mode, metric)
	return adapter.Verdict{}
}

// TestRunKnownTruth: a mode that slows the engine 15% is found outside ±3% with a CI that excludes 1, one with no
// effect is within, despite a ±10% drift between rounds that the pairing by round cancels.
func TestRunKnownTruth(t *testing.T) {
	modes, err := ParseModes("off,10ms,100ms")
	require.NoError(t, err)
	dir := t.TempDir()
	s, err := Run(t.Context(), Options{Modes: modes, Rounds: 6, Tolerance: 0.03, Dir: dir, Params: Params{Engine: "sim"}},
		simulate(1, map[string]float64{"10ms": 0.85}, 0.005))
	require.NoError(t, err)
	require.Len(t, s.Launches, 18)
	slow := verdict(t, s, "10ms", adapter.MetricDecode)
	require.Equal(t, "paired", slow.Method)
	require.InDelta(t, 0.85, slow.Ratio, 0.01)
	require.Less(t, slow.Hi, 0.97, "resolved outside the band")
	require.False(t, slow.Within)
	ttft := verdict(t, s, "10ms", adapter.MetricTTFT)
	require.InDelta(t, 1/0.85, ttft.Ratio, 0.015)
	same := verdict(t, s, "100ms", adapter.MetricDecode)
	require.InDelta(t, 1, same.Ratio, 0.01)
	require.True(t, same.Within && same.Resolved, "%+v", same)
	require.False(t, s.Within, "one mode outside: the check says so")
	require.NotNil(t, s.Results[0].SamplerBusyPct)
	require.InDelta(t, 4, *s.Results[0].SamplerBusyPct, 1e-9)

	var onDisk Summary
	b, err := os.ReadFile(filepath.Join(dir, SummaryFile))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &onDisk))
	require.Len(t, onDisk.Launches, 18)
	rep, err := os.ReadFile(filepath.Join(dir, ReportFile))
	require.NoError(t, err)
	require.Contains(t, string(rep), "decode tok/s: 10ms / off = 0.85")
	require.Contains(t, string(rep), "NOT every mode within ±3%")
	for _, r := range s.Launches {
		for _, it := range r.Iterations {
			require.False(t, it.Warmup, "warm-ups are left out of the record")
		}
	}
}

// TestPrime: the priming launch runs first with the sampler off, is recorded as round 0, and counts in no verdict —
// here a first launch 30% slow, which would otherwise pull round 1's pair.
func TestPrime(t *testing.T) {
	modes, err := ParseModes("off,10ms")
	require.NoError(t, err)
	sim := simulate(5, nil, 0.005)
	var first []string
	s, err := Run(t.Context(), Options{Modes: modes, Rounds: 3, Tolerance: 0.03, Dir: t.TempDir(), Prime: true},
		func(ctx context.Context, r int, m Mode, d string) (Launch, error) {
			first = append(first, fmt.Sprintf("%d:%s", r, m.Name))
			l, err := sim(ctx, r, m, d)
			if r == 0 {
				for i := range l.Iterations {
					l.Iterations[i].DecodeTokS *= 0.7
				}
			}
			return l, err
		})
	require.NoError(t, err)
	require.Equal(t, "0:off", first[0], "primed with the sampler off")
	require.Len(t, s.Launches, 7)
	require.Equal(t, PrimeMode, s.Launches[0].Mode)
	v := verdict(t, s, "10ms", adapter.MetricDecode)
	require.Equal(t, 3, v.NativeRuns, "off's launches: the three rounds', not the prime")
	require.InDelta(t, 1, v.Ratio, 0.01)
}

// TestRunCalibration: with no effect at all, over many simulated checks, the paired 95% CI of a mode against off
// covers 1 about 95% of the time (a check that cried "effect" more often would send users chasing nothing).
func TestRunCalibration(t *testing.T) {
	modes, err := ParseModes("off,100ms")
	require.NoError(t, err)
	const checks = 300
	covered := 0
	for i := range checks {
		s, err := Run(t.Context(), Options{Modes: modes, Rounds: 5, Tolerance: 0.03, Dir: t.TempDir(), Params: Params{Engine: "sim"}},
			simulate(uint64(100+i), nil, 0.03))
		require.NoError(t, err)
		v := verdict(t, s, "100ms", adapter.MetricDecode)
		if v.Lo <= 1 && 1 <= v.Hi {
			covered++
		}
	}
	rate := float64(covered) / checks
	require.InDelta(t, 0.95, rate, 0.035, "coverage %d/%d", covered, checks)
}

// TestRunFailures: a failed launch is recorded and the rounds go on; off failing everywhere is ErrNoLaunches with
// the record still written; an interruption stops the rounds and keeps what finished.
func TestRunFailures(t *testing.T) {
	modes, err := ParseModes("off,10ms")
	require.NoError(t, err)
	ok := simulate(3, nil, 0.01)
	t.Run("one launch fails", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Run(t.Context(), Options{Modes: modes, Rounds: 3, Tolerance: 0.03, Dir: dir}, func(ctx context.Context, r int, m Mode, d string) (Launch, error) {
			if r == 2 && m.Name == "10ms" {
				return Launch{}, errors.New("engine error (oom): out of memory")
			}
			return ok(ctx, r, m, d)
		})
		require.NoError(t, err)
		require.Len(t, s.Launches, 6)
		v := verdict(t, s, "10ms", adapter.MetricDecode)
		require.Equal(t, 2, v.RunnerRuns)
		require.Equal(t, 3, v.NativeRuns)
		rep, _ := os.ReadFile(filepath.Join(dir, ReportFile))
		require.Contains(t, string(rep), "FAILED: engine error (oom): out of memory")
	})
	t.Run("off never runs", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Run(t.Context(), Options{Modes: modes, Rounds: 2, Tolerance: 0.03, Dir: dir, Params: Params{Engine: "x"}}, func(ctx context.Context, r int, m Mode, d string) (Launch, error) {
			if m.Name == Off {
				return Launch{}, errors.New("no")
			}
			return ok(ctx, r, m, d)
		})
		require.ErrorIs(t, err, ErrNoLaunches)
		require.FileExists(t, filepath.Join(dir, SummaryFile))
	})
	t.Run("interrupted", func(t *testing.T) {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		n := 0
		s, err := Run(ctx, Options{Modes: modes, Rounds: 5, Tolerance: 0.03, Dir: dir}, func(c context.Context, r int, m Mode, d string) (Launch, error) {
			n++
			if n == 3 {
				cancel()
			}
			return ok(c, r, m, d)
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, s.Launches, 3)
		require.False(t, s.Within)
		require.FileExists(t, filepath.Join(dir, ReportFile))
	})
}
