package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// setHost rewrites the host name in dir's environment record, as if its launches had run on another machine, and
// returns the record as it was.
func setHost(t *testing.T, dir, host string) []byte {
	t.Helper()
	path := filepath.Join(dir, results.EnvFile)
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	var env map[string]any
	require.NoError(t, json.Unmarshal(old, &env))
	env["host"] = host
	b, err := json.Marshal(env)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return old
}

// TestResume: a benchmark cut short (its last launches missing from
// runs.jsonl, as after Ctrl-C or a GPU call's time limit) is finished by
// `runner bench --resume DIR` without re-running what was recorded, in the
// same interleaved order, into the same directory.
func TestResume(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	root := t.TempDir()
	o := run(t, t.Context(), "--bin-dir", bin, "--model", model, "--out", root, "--launches", "3", "--iterations", "2", "--warmup", "1", "-q",
		"--engines", "reference:threads=1,reference:threads=2", "--prompt-len", "8", "--new-tokens", "4")
	require.Equal(t, 0, o.code, o.stderr)
	dir := resultDir(t, root)
	require.FileExists(t, filepath.Join(dir, "config.yaml"))

	// Cut the run after its third launch.
	runs := filepath.Join(dir, results.RunsFile)
	raw, err := os.ReadFile(runs)
	require.NoError(t, err)
	lines := bytes.SplitAfter(raw, []byte("\n"))
	kept := bytes.Join(lines[:3], nil)
	require.NoError(t, os.WriteFile(runs, kept, 0o644))

	// On another machine the resume is refused before any launch: its launches would be pooled with these under one
	// environment record (the record names the host here; a GPU run's names the card).
	envRaw := setHost(t, dir, "elsewhere")
	o = run(t, t.Context(), "--bin-dir", bin, "--resume", dir)
	require.Equal(t, 2, o.code, o.stderr)
	require.Contains(t, o.stderr, "another machine: its launches ran on host elsewhere (")
	after, err := os.ReadFile(runs)
	require.NoError(t, err)
	require.Equal(t, kept, after, "nothing launched, nothing dropped")
	require.NoError(t, os.WriteFile(filepath.Join(dir, results.EnvFile), envRaw, 0o644))

	o = run(t, t.Context(), "--bin-dir", bin, "--resume", dir)
	require.Equal(t, 0, o.code, o.stderr)
	require.Contains(t, o.stderr, "resuming: 3 launch(es) already recorded")
	recs, _, err := results.ReadRuns(runs)
	require.NoError(t, err)
	require.Len(t, recs, 6)
	after, err = os.ReadFile(runs)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(after, kept), "recorded launches are kept as they were")
	var got []string
	for i, r := range recs {
		require.Equal(t, i, r.Order, "launch order continues")
		got = append(got, r.Engine)
	}
	require.Equal(t, []string{"reference:threads=1", "reference:threads=2", "reference:threads=1", "reference:threads=2", "reference:threads=1", "reference:threads=2"}, got)
	require.Equal(t, 2, recs[5].Launch)
	require.FileExists(t, filepath.Join(dir, results.SummaryFile))
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 1, "no new results directory")

	// Resuming a finished run launches nothing more.
	o = run(t, t.Context(), "--bin-dir", bin, "--resume", dir, "-q")
	require.Equal(t, 0, o.code, o.stderr)
	recs, _, err = results.ReadRuns(runs)
	require.NoError(t, err)
	require.Len(t, recs, 6)

	// Flags that would change the benchmark, and a directory without a config, are refused.
	o = run(t, t.Context(), "--bin-dir", bin, "--resume", dir, "--launches", "5")
	require.Equal(t, 2, o.code)
	require.Contains(t, o.stderr, "--launches would change the benchmark being finished")
	o = run(t, t.Context(), "--bin-dir", bin, "--resume", t.TempDir())
	require.Equal(t, 2, o.code)
	require.Contains(t, o.stderr, "no config.yaml there")
}
