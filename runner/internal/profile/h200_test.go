package profile

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// TestH200Fixture runs the real activity file of a pytorch eager launch,
// captured on an NVIDIA H200 (GPU-50adcf8f…, driver 580.159.04, CUPTI 13.0,
// 2026-12-01; scripts/gpu-run.sh's profile stage, TinyLlama-1.1B shape, p16-n8, 2
// timed iterations), through decoding, alignment with the launch's own
// runs.jsonl and aggregation: every timed iteration is covered, the decode
// steps launch hundreds of kernels each (eager mode: one per op), the GPU is
// mostly idle between them (host-bound), and the names are cuBLAS/PyTorch's.
func TestH200Fixture(t *testing.T) {
	f, err := os.Open("testdata/h200/cupti-734.bin.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	tr, err := DecodeTrace(zr)
	require.NoError(t, err)
	assert.Greater(t, len(tr.Kernels), 1000, "kernels in the trace")
	assert.Empty(t, tr.Dropped["pool"]+tr.Dropped["cupti"], "records dropped")
	assert.Equal(t, 13, int(tr.CUPTIVersion/10000), "CUPTI major version (130001 = 13.0.1)")

	recs, _, err := results.ReadRuns(filepath.Join("testdata", "h200", "runs.jsonl"))
	require.NoError(t, err)
	require.Len(t, recs, 2, "pytorch-eager and its profiled twin")
	r := recs[1]
	require.True(t, r.Profiled)
	require.Equal(t, "pytorch-eager+profile", r.Engine)
	require.NotZero(t, r.SpawnMonoNs)
	ws := Windows(r.Iterations, r.SpawnMonoNs)
	require.Len(t, ws, 2, "timed iterations")
	l := Analyze([]*Trace{tr}, ws)
	require.Len(t, l.Cases, 1)
	c := l.Cases[0]
	assert.Equal(t, 2, c.Iterations, "iterations covered by activity")
	assert.Zero(t, c.Uncovered)
	d := c.Decode
	require.Positive(t, d.Steps)
	perStep := d.PerStep(d.Kernels)
	assert.Greater(t, perStep, 300.0, "eager launches hundreds of kernels per decode step")
	assert.Less(t, perStep, 3000.0)
	assert.Less(t, d.BusyNs, d.WallNs, "busy within wall")
	assert.Greater(t, float64(d.IdleNs())/float64(d.WallNs), 0.5, "eager decode is host-bound: the GPU idles most of the step")
	var names []string
	for _, s := range d.Top {
		names = append(names, s.Name)
	}
	joined := strings.Join(names, " ")
	assert.True(t, strings.Contains(joined, "nvjet") || strings.Contains(joined, "gemm") || strings.Contains(joined, "elementwise"),
		"top kernels are cuBLAS/PyTorch ones: %v", names)
}
