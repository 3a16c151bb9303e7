package report

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchproc"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// TestBenchstatKeepsVariantsApart reads bench.txt with benchstat's own
// parser and projection (golang.org/x/perf): `-col /engine` must give one
// column per engine variant, also for labels ending in a number.
func TestBenchstatKeepsVariantsApart(t *testing.T) {
	labels := []string{"reference:threads=1", "reference:threads=2", "candle", "run-2", "run-3"}
	s := &analysis.Summary{Cases: []analysis.Case{{Name: "p64-n64"}}}
	for _, l := range labels {
		s.Cases[0].Results = append(s.Cases[0].Results, analysis.Result{Engine: l})
	}
	var b bytes.Buffer
	require.NoError(t, Bench(&b, s, func(string, string) []BenchSample {
		return []BenchSample{{E2ENs: 1000, TTFTNs: 100, TPOTNs: 10, DecodeTPS: 100}, {E2ENs: 1100, TTFTNs: 110, TPOTNs: 11, DecodeTPS: 90}}
	}))
	var parser benchproc.ProjectionParser
	col, err := parser.Parse("/engine", nil)
	require.NoError(t, err)
	r := benchfmt.NewReader(&b, "bench.txt")
	seen := map[string]int{}
	for r.Scan() {
		res, ok := r.Result().(*benchfmt.Result)
		if !ok {
			continue
		}
		seen[col.Project(res).String()]++
	}
	require.NoError(t, r.Err())
	assert.Len(t, seen, len(labels), "benchstat -col /engine columns: %v", seen)
	for k, n := range seen {
		assert.Equal(t, 2, n, "column %s", k)
	}
}
