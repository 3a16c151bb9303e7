package cpuprobe

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProbeSmall(t *testing.T) {
	m, err := Probe(context.Background(), Options{Threads: 2, Bytes: 16 << 20, Iters: 3, Warmup: 1})
	require.NoError(t, err)
	assert.Equal(t, 2, m.Threads)
	assert.Equal(t, int64(16<<20), m.Bytes)
	assert.Positive(t, m.ReadBytesPerSec)
	assert.Positive(t, m.CopyBytesPerSec)
	assert.LessOrEqual(t, m.ReadMinMs, m.ReadMaxMs)
}

func TestProbeTooSmall(t *testing.T) {
	_, err := Probe(context.Background(), Options{Threads: 4, Bytes: 1 << 20})
	require.ErrorContains(t, err, "too small")
}

func TestSum(t *testing.T) {
	v := make([]uint64, 16)
	for i := range v {
		v[i] = uint64(i + 1)
	}
	// Accumulator k sums v[k] and v[k+8]: (k+1) + (k+9) = 2k+10; the result XORs them.
	var want uint64
	for k := range 8 {
		want ^= uint64(2*k + 10)
	}
	assert.Equal(t, want, sum(v))
}
