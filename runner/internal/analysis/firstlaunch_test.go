package analysis

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// TestFirstLaunch: the first successful launch (by launch index, not by
// record order; a failed one does not count) against the median of the later
// ones, cold start and first warm-up iteration — e.g. burn's autotune pass,
// which a later launch finds in the store.
func TestFirstLaunch(t *testing.T) {
	rec := func(launch int, status string, coldS float64, warmS ...float64) results.Record {
		r := results.Record{Engine: "burn", Launch: launch, Status: status, ColdStartNs: int64(coldS * 1e9)}
		for i, w := range warmS {
			r.Iterations = append(r.Iterations, results.Iteration{Raw: protocol.Iteration{Warmup: true, Index: i}, Metrics: metrics.Iteration{E2ENs: int64(w * 1e9)}})
		}
		r.Iterations = append(r.Iterations, results.Iteration{Raw: protocol.Iteration{Index: len(warmS)}, Metrics: metrics.Iteration{E2ENs: 5e8}})
		return r
	}
	recs := []results.Record{
		rec(3, results.StatusOK, 2.0, 0.9, 0.5),
		rec(0, results.StatusFailed, 30), // killed: not the first launch that counts
		rec(1, results.StatusOK, 4.0, 612.0, 0.5),
		rec(2, results.StatusOK, 1.0, 0.7, 0.5),
		rec(4, results.StatusOK, 3.0, 0.8, 0.5),
	}
	f := FirstLaunchOf(recs)
	require.NotNil(t, f)
	assert.Equal(t, FirstLaunch{Launch: 1, ColdStartS: 4, FirstWarmupS: 612, Later: 3, LaterColdStartS: 2, LaterFirstWarmupS: 0.8}, *f)

	assert.Equal(t, FirstLaunch{Launch: 3, ColdStartS: 2, FirstWarmupS: 0.9}, *FirstLaunchOf(recs[:2]), "one successful launch: no later ones")
	assert.Nil(t, FirstLaunchOf(recs[1:2]), "no successful launch")
	noWarm := []results.Record{rec(0, results.StatusOK, 1), rec(1, results.StatusOK, 2)}
	assert.Equal(t, FirstLaunch{Launch: 0, ColdStartS: 1, Later: 1, LaterColdStartS: 2}, *FirstLaunchOf(noWarm))
}
