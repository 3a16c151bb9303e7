package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// TestLyingEngine drives a testengine that lies in its event stream next to an
// honest one: each lie fails its launch promptly with a message naming what
// was wrong, the iterations received before it are kept, and the honest
// engine's launch is unaffected.
func TestLyingEngine(t *testing.T) {
	bin := testbin.Dir(t)
	tests := []struct {
		name  string
		fail  string
		want  string
		iters int
	}{
		{name: "iterations past the requested count", fail: "flood", want: "protocol: iteration 4 is past the 3 requested (1 warm-up + 2 timed per case, 1 case)", iters: 3},
		{name: "warm-up labelled timed", fail: "mislabel", want: "protocol: iteration 1 (case c, warm-up 1/1) is labelled timed", iters: 0},
		{name: "no loaded event", fail: "no-loaded", want: "protocol: iteration before the loaded event", iters: 0},
		{name: "two loaded events", fail: "double-loaded", want: "protocol: a second loaded event", iters: 0},
		{name: "every token at 0 ns", fail: "zero-times", want: "first token at 0 ns after the iteration's start", iters: 0},
		{name: "iteration longer than observed", fail: "long", want: "by the engine's clock, but only", iters: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := results.Create(filepath.Join(dir, "r"))
			require.NoError(t, err)
			defer w.Close()
			variant := func(opts map[string]string) bench.Variant {
				s := config.EngineSpec{Name: "testengine", Options: opts}
				return bench.Variant{Spec: s, Label: s.DisplayLabel(), Path: filepath.Join(bin, "testengine")}
			}
			cfg := &config.Config{Launches: 1, Timeouts: config.Timeouts{
				Start: config.Duration{Duration: time.Minute}, Stall: config.Duration{Duration: time.Minute}, Total: config.Duration{Duration: time.Minute},
			}}
			start := time.Now()
			recs, err := bench.Run(context.Background(), bench.Options{
				Config:   cfg,
				Variants: []bench.Variant{variant(map[string]string{"fail": tt.fail}), variant(nil)},
				Request: protocol.Request{Protocol: protocol.Version, Model: dir, Device: "cpu", DType: "f32", Warmup: 1, Iterations: 2,
					Cases: []protocol.Case{{Name: "c", PromptTokens: []int{5, 6, 7}, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true}}},
				Writer: w,
			})
			require.NoError(t, err)
			require.Less(t, time.Since(start), 20*time.Second, "a lie ends its launch at once, not at a timeout")
			require.Len(t, recs, 2)
			require.Equal(t, results.StatusFailed, recs[0].Status)
			require.Contains(t, recs[0].Error, tt.want)
			require.Len(t, recs[0].Iterations, tt.iters, "iterations received before the lie are kept")
			require.Equal(t, results.StatusOK, recs[1].Status, recs[1].Error)
			onDisk, _, err := results.ReadRuns(filepath.Join(dir, "r", results.RunsFile))
			require.NoError(t, err)
			require.Len(t, onDisk, 2)
		})
	}
}
