package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// runEnv is run with extra environment variables for the engines.
func runEnv(t *testing.T, ctx context.Context, extra []string, args ...string) out {
	t.Helper()
	var so, se bytes.Buffer
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, extra...)
	code := cli.Run(ctx, append([]string{"runner"}, args...), strings.NewReader(""), &so, &se, env)
	return out{code, so.String(), se.String()}
}

// testConfig writes a one-launch config of the tiny model with body appended.
func testConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bench.yaml")
	require.NoError(t, os.WriteFile(p, []byte("model: "+testbin.TinyModel(t)+"\nlaunches: 1\nwarmup: 1\niterations: 2\n"+
		"cases: [{name: c, prompt_len: 4, max_new_tokens: 3}]\n"+body), 0o644))
	return p
}

// TestRefusedBeforeLaunch: an engine whose info declares another protocol
// version, or does not list the benchmark's device or dtype, or whose info
// does not answer within the start timeout, is refused before anything is
// launched or written, with a usage error that names it and what was wrong.
func TestRefusedBeforeLaunch(t *testing.T) {
	bin := testbin.Dir(t)
	tests := []struct {
		name string
		env  []string
		body string
		args []string
		want []string
	}{
		{name: "other protocol version", env: []string{"TESTENGINE_INFO=protocol=2"},
			want: []string{"engine testengine", "info declares protocol 2, the runner speaks 1"}},
		{name: "device not listed", args: []string{"--device", "cuda:0", "--no-telemetry"},
			want: []string{"engine testengine", "info does not list device cuda:0 (devices: cpu)"}},
		{name: "dtype not listed", env: []string{"TESTENGINE_INFO=dtypes=f32"}, args: []string{"--dtype", "bf16"},
			want: []string{"engine testengine", "info does not list dtype bf16 (dtypes: f32)"}},
		{name: "info past the start timeout", env: []string{"TESTENGINE_INFO=hang"}, body: "timeouts: {start: 1s}\n",
			want: []string{"engine testengine", "start timeout: no info within 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "results")
			start := time.Now()
			args := append([]string{"--bin-dir", bin, "--out", root, "--config", testConfig(t, tt.body), "--engines", "testengine"}, tt.args...)
			o := runEnv(t, t.Context(), tt.env, args...)
			require.Equal(t, cli.ExitUsage, o.code, o.stderr)
			for _, w := range tt.want {
				require.Contains(t, o.stderr, w)
			}
			require.NoDirExists(t, root, "nothing launched, nothing written")
			require.Less(t, time.Since(start), 30*time.Second)
		})
	}
}

// TestInterruptDuringInfo: Ctrl-C while an engine's info hangs exits 130.
func TestInterruptDuringInfo(t *testing.T) {
	bin := testbin.Dir(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	o := runEnv(t, ctx, []string{"TESTENGINE_INFO=hang"}, "--bin-dir", bin, "--out", t.TempDir(), "--config", testConfig(t, ""), "--engines", "testengine")
	require.Equal(t, cli.ExitInterrupted, o.code, o.stderr)
	require.Contains(t, o.stderr, "engine testengine")
	require.Contains(t, o.stderr, "interrupted")
	require.Less(t, time.Since(start), 30*time.Second)
}

// TestNegativeCounts: negative --iterations, --launches or --warmup, or a
// negative sampling interval, are usage errors, not ignored.
func TestNegativeCounts(t *testing.T) {
	bin := testbin.Dir(t)
	cfg := testConfig(t, "")
	for _, tt := range []struct{ flag, value, want string }{
		{"--iterations", "-1", "--iterations -1: need at least 1"},
		{"--launches", "-3", "--launches -3: need at least 1"},
		{"--launches", "0", "--launches 0: need at least 1"},
		{"--warmup", "-2", "--warmup -2: need at least 0"},
		{"--telemetry-interval", "-10ms", "--telemetry-interval -10ms: must not be negative"},
		{"--power-interval", "-1ms", "--power-interval -1ms: must not be negative"},
	} {
		t.Run(tt.flag+" "+tt.value, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "results")
			o := run(t, t.Context(), "--bin-dir", bin, "--out", root, "--config", cfg, "--engines", "testengine", tt.flag, tt.value)
			require.Equal(t, cli.ExitUsage, o.code, o.stderr)
			require.Contains(t, o.stderr, tt.want)
			require.NoDirExists(t, root)
		})
	}
}

// TestSameSecondRuns: two benchmarks of the same name started together never
// share a results directory.
func TestSameSecondRuns(t *testing.T) {
	bin := testbin.Dir(t)
	cfg := testConfig(t, "")
	root := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]out, 2)
	for i := range outs {
		wg.Go(func() {
			outs[i] = run(t, t.Context(), "--bin-dir", bin, "--out", root, "--config", cfg, "--engines", "testengine", "--quiet")
		})
	}
	wg.Wait()
	for _, o := range outs {
		require.Equal(t, 0, o.code, o.stderr)
	}
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 2, "two results directories")
	for _, e := range ents {
		recs, _, err := results.ReadRuns(filepath.Join(root, e.Name(), results.RunsFile))
		require.NoError(t, err)
		require.Len(t, recs, 1, e.Name())
	}
}

// TestRelativeBinDir: --bin-dir . finds the engine in the working directory,
// and the report files are readable by all (0644, like runs.jsonl).
func TestRelativeBinDir(t *testing.T) {
	bin := testbin.Dir(t)
	cfg := testConfig(t, "")
	root := t.TempDir()
	t.Chdir(bin)
	o := run(t, t.Context(), "--bin-dir", ".", "--out", root, "--config", cfg, "--engines", "testengine")
	require.Equal(t, 0, o.code, o.stderr)
	dir := resultDir(t, root)
	for _, f := range []string{results.ReportMD, results.ReportHTML, results.SummaryFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o644), st.Mode().Perm(), f)
	}
}

// TestNoGPUBeforeSynth: a CUDA benchmark on a machine with no NVIDIA GPU is
// refused before the model is synthesized (a 16 GB write for the 8B shape).
func TestNoGPUBeforeSynth(t *testing.T) {
	if nodes, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(nodes) > 0 {
		t.Skip("this machine has an NVIDIA GPU")
	}
	bin := testbin.Dir(t)
	model := filepath.Join(t.TempDir(), "m")
	p := filepath.Join(t.TempDir(), "gpu.yaml")
	require.NoError(t, os.WriteFile(p, []byte("model: "+model+"\nsynth: {shape: tiny, dtype: f32, seed: 1}\ndevice: cuda:0\n"+
		"cases: [{name: c, prompt_len: 4, max_new_tokens: 3}]\n"), 0o644))
	o := runEnv(t, t.Context(), []string{"TESTENGINE_INFO=devices=cpu,cuda:0"}, "--bin-dir", bin, "--out", t.TempDir(), "--config", p, "--engines", "testengine")
	require.Equal(t, cli.ExitUsage, o.code, o.stderr)
	require.Contains(t, o.stderr, "device cuda:0: no NVIDIA GPU on this machine")
	require.NoDirExists(t, model, "no model synthesized")
}
