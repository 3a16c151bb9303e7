package roofline

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLimit(t *testing.T) {
	tests := []struct {
		name  string
		bytes int64
		bw    float64
		batch int
		want  float64
	}{
		// GPU.md: measured 3009 GB/s on the H100 host.
		{"llama-3-8b bf16", 15_010_000_000, 3009e9, 1, 200.4663},
		{"tinyllama-1.1b bf16", 2_070_000_000, 3009e9, 1, 1453.6232},
		{"batch 4", 15_010_000_000, 3009e9, 4, 801.8654},
		{"theoretical H100", 15_010_000_000, 3.35232e12, 1, 223.3391},
		{"unknown bandwidth", 15_010_000_000, 0, 1, 0},
		{"no weights", 0, 3009e9, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Limit(tt.bytes, tt.bw, tt.batch)
			assert.InDelta(t, tt.want, got, 1e-4, "Limit(%d, %g, %d) = %g, want %g", tt.bytes, tt.bw, tt.batch, got, tt.want)
		})
	}
}

func TestCompute(t *testing.T) {
	// GPU.md: the CUDA-graph torch loop reached 122.9 tok/s on the 8B shape.
	r := Compute(15_010_000_000, 1, 122.9, 3.35232e12, 3009e9)
	assert.InDelta(t, 223.3391, r.Theoretical.LimitTokPerSec, 1e-4)
	assert.InDelta(t, 55.0284, r.Theoretical.PercentOfLimit, 1e-4)
	assert.InDelta(t, 200.4663, r.Measured.LimitTokPerSec, 1e-4)
	assert.InDelta(t, 61.3070, r.Measured.PercentOfLimit, 1e-4)

	r = Compute(15_010_000_000, 1, 122.9, 3.35232e12, 0)
	assert.Zero(t, r.Measured.LimitTokPerSec)
	assert.Zero(t, r.Measured.PercentOfLimit)
}

// fakePython writes a stand-in interpreter that ignores the script and runs
// body with the probe's arguments in $3..$6.
func fakePython(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "python3")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	return p
}

const okBody = `echo "warming up" ; printf '{"device":%s,"name":"NVIDIA H100 80GB HBM3","uuid":"GPU-abc","bytes":%s,"iters":%s,"warmup":%s,"median_ms":2.854,"min_ms":2.85,"max_ms":2.9,"bytes_per_s":3009e9,"torch":"2.11.0+cu130","cuda":"13.0","order":"%s"}\n' "$3" "$4" "$5" "$6" "$CUDA_DEVICE_ORDER"`

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		uuid    string
		wantErr string
	}{
		{name: "ok", body: okBody, uuid: "GPU-abc"},
		{name: "ok without uuid check", body: okBody},
		{name: "other gpu", body: okBody, uuid: "GPU-def", wantErr: "gpu probe on cuda:1: torch measured GPU-abc, want GPU-def (device order differs?)"},
		{
			name:    "no torch",
			body:    `echo '{"error": "python3 cannot import torch: No module named '"'"'torch'"'"'"}'; exit 3`,
			wantErr: "gpu probe on cuda:1: python3 cannot import torch: No module named 'torch'",
		},
		{
			name:    "crash",
			body:    `echo "Traceback" >&2; echo "RuntimeError: CUDA error" >&2; exit 1`,
			wantErr: "gpu probe on cuda:1: python3: exit status 1; stderr: Traceback | RuntimeError: CUDA error",
		},
		{name: "garbage", body: `echo hello`, wantErr: `gpu probe on cuda:1: read result "hello": invalid character 'h' looking for beginning of value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Probe(context.Background(), ProbeOptions{
				Python: fakePython(t, tt.body), Env: []string{"PATH=/usr/bin:/bin"},
				Device: 1, UUID: tt.uuid, Bytes: 1 << 20, Iters: 7, Warmup: 2,
			})
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, strings.Replace(err.Error(), fakeName(err.Error()), "python3", 1))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "GPU-abc", m.UUID)
			assert.Equal(t, "NVIDIA H100 80GB HBM3", m.Name)
			assert.InDelta(t, 3009e9, m.BytesPerSec, 1)
			assert.Equal(t, int64(1<<20), m.CopyBytes)
			assert.Equal(t, 7, m.Iters)
			assert.Equal(t, 2, m.Warmup)
			assert.InDelta(t, 2.854, m.MedianMs, 1e-12)
			assert.Equal(t, "2.11.0+cu130", m.Torch)
			assert.False(t, m.When.IsZero())
		})
	}
}

// fakeName finds the temp path of the fake interpreter in an error message.
func fakeName(msg string) string {
	for _, f := range strings.Fields(msg) {
		if strings.HasSuffix(f, "/python3:") {
			return strings.TrimSuffix(f, ":")
		}
	}
	return "\x00"
}

func TestProbeMissingPython(t *testing.T) {
	_, err := Probe(context.Background(), ProbeOptions{Python: "/nonexistent/python3"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gpu probe: /nonexistent/python3 not found (the probe needs python3 with a CUDA build of torch)")
}

// TestProbeRealPython runs the embedded script under the machine's python3:
// without torch or a GPU it must say so; with them it must measure.
func TestProbeRealPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	m, err := Probe(context.Background(), ProbeOptions{Bytes: 1 << 20, Iters: 3, Warmup: 1})
	if err != nil {
		assert.Regexp(t, `^gpu probe on cuda:0: (python3 cannot import torch|torch .* sees no CUDA device)`, err.Error())
		return
	}
	assert.Positive(t, m.BytesPerSec)
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "bandwidth.json")
	c, err := LoadCache(path)
	require.NoError(t, err)
	_, ok := c.Get("GPU-abc")
	assert.False(t, ok)
	require.NoError(t, c.Put(Measurement{UUID: "GPU-abc", BytesPerSec: 3009e9}))
	require.NoError(t, c.Put(Measurement{UUID: "GPU-def", BytesPerSec: 4.2e12}))
	assert.EqualError(t, c.Put(Measurement{}), "bandwidth cache: measurement has no GPU UUID")

	c2, err := LoadCache(path)
	require.NoError(t, err)
	m, ok := c2.Get("GPU-def")
	require.True(t, ok)
	assert.InDelta(t, 4.2e12, m.BytesPerSec, 1)

	var raw map[string]any
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.EqualValues(t, 1, raw["version"])

	require.NoError(t, os.WriteFile(path, []byte("{broken"), 0o644))
	_, err = LoadCache(path)
	assert.ErrorContains(t, err, "read bandwidth cache "+path)
}

func TestMeasured(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bandwidth.json")
	counter := filepath.Join(t.TempDir(), "runs")
	py := fakePython(t, "echo run >> "+counter+"\n"+okBody)
	o := ProbeOptions{Python: py, UUID: "GPU-abc", Bytes: 1 << 20}
	runs := func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "run")
	}
	tests := []struct {
		name       string
		refresh    bool
		wantCached bool
		wantRuns   int
	}{
		{"first probes", false, false, 1},
		{"second is cached", false, true, 1},
		{"refresh probes again", true, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, cached, err := Measured(context.Background(), path, o, tt.refresh)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCached, cached)
			assert.Equal(t, tt.wantRuns, runs())
			assert.InDelta(t, 3009e9, m.BytesPerSec, 1)
		})
	}
	_, _, err := Measured(context.Background(), path, ProbeOptions{Python: py}, false)
	assert.EqualError(t, err, "gpu probe: no GPU UUID to cache the result under")
}

func TestCachePath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	assert.Equal(t, "/c/bandwidth.json", CachePath(env(map[string]string{"CIB_CACHE": "/c", "HOME": "/h"})))
	assert.Equal(t, "/h/.cache/cib/bandwidth.json", CachePath(env(map[string]string{"HOME": "/h"})))
}
