package bench_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/profile"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestProfiledTwins runs a CPU engine with its profiled twin: the twin is its
// own variant, marked profiled, aligned (spawn on CLOCK_MONOTONIC), and since
// no CUDA process loads the library its profile says so instead of inventing
// figures.
func TestProfiledTwins(t *testing.T) {
	bin := testbin.Dir(t)
	dir := t.TempDir()
	w, err := results.Create(filepath.Join(dir, "r"))
	require.NoError(t, err)
	defer w.Close()
	lib := filepath.Join(dir, "libcib_cupti.so")
	require.NoError(t, os.WriteFile(lib, nil, 0o644))
	s := config.EngineSpec{Name: "testengine"}
	vs := bench.WithProfiledTwins([]bench.Variant{{Spec: s, Label: s.DisplayLabel(), Path: filepath.Join(bin, "testengine")}})
	require.Len(t, vs, 2)
	require.Equal(t, "testengine+profile", vs[1].Label)
	cfg := &config.Config{Launches: 1, Timeouts: config.Timeouts{
		Start: config.Duration{Duration: time.Minute}, Stall: config.Duration{Duration: time.Minute}, Total: config.Duration{Duration: time.Minute},
	}}
	recs, err := bench.Run(context.Background(), bench.Options{
		Config: cfg, Variants: vs, Writer: w, Env: []string{"CUDA_INJECTION64_PATH=/stale.so", "PATH=" + os.Getenv("PATH")},
		Profiler: &bench.Profiler{Lib: lib, Keep: true},
		Request: protocol.Request{Protocol: protocol.Version, Model: dir, Device: "cpu", DType: "f32", Warmup: 1, Iterations: 2,
			Cases: []protocol.Case{{Name: "c", PromptTokens: []int{5, 6, 7}, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true}}},
	})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	for _, r := range recs {
		require.Equal(t, results.StatusOK, r.Status, r.Error)
		require.NotZero(t, r.SpawnMonoNs)
	}
	require.False(t, recs[0].Profiled)
	require.Empty(t, recs[0].Profile)
	require.True(t, recs[1].Profiled)
	var l profile.Launch
	require.NoError(t, json.Unmarshal(recs[1].Profile, &l))
	require.Len(t, l.Cases, 1)
	require.Equal(t, 2, l.Cases[0].Iterations)
	require.Contains(t, l.Warnings, "no activity file: no CUDA process of the launch loaded the profiler")
	require.DirExists(t, filepath.Join(dir, "r", "profile", "testengine+profile-launch1"), "kept")
}
