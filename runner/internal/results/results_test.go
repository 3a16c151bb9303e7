package results_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// TestCreateNew: two benchmarks with the same name started in the same second
// get two directories, and each one's runs.jsonl holds only its own records.
func TestCreateNew(t *testing.T) {
	root := filepath.Join(t.TempDir(), "results")
	a, err := results.CreateNew(root, "20260101-120000-smoke")
	require.NoError(t, err)
	defer a.Close()
	b, err := results.CreateNew(root, "20260101-120000-smoke")
	require.NoError(t, err)
	defer b.Close()
	require.NotEqual(t, a.Dir(), b.Dir())
	require.Equal(t, filepath.Join(root, "20260101-120000-smoke-2"), b.Dir())
	require.NoError(t, a.Append(&results.Record{Engine: "a"}))
	require.NoError(t, b.Append(&results.Record{Engine: "b"}))
	for _, w := range []*results.Writer{a, b} {
		recs, _, err := results.ReadRuns(filepath.Join(w.Dir(), results.RunsFile))
		require.NoError(t, err)
		require.Len(t, recs, 1, w.Dir())
	}
}

// TestSpecJSON: a record's spec uses snake_case keys, and records written
// before it had json tags (Go field names) still read.
func TestSpecJSON(t *testing.T) {
	dir := t.TempDir()
	w, err := results.Create(dir)
	require.NoError(t, err)
	spec := config.EngineSpec{Name: "reference", Label: "ref", Threads: 2, Options: map[string]string{"kernel": "tiled"}}
	require.NoError(t, w.Append(&results.Record{Engine: "ref", Spec: spec}))
	require.NoError(t, w.Close())
	b, err := os.ReadFile(filepath.Join(dir, results.RunsFile))
	require.NoError(t, err)
	require.Contains(t, string(b), `"spec":{"name":"reference","label":"ref","threads":2,"options":{"kernel":"tiled"}}`)

	old := `{"schema":1,"engine":"ref","spec":{"Name":"reference","Label":"ref","Threads":2,"Options":{"kernel":"tiled"}},"launch":0,"order":0,"status":"ok","exit":0,"started_at":"2026-01-01T00:00:00Z","duration_ns":1,"iterations":[]}`
	recs, _, err := results.DecodeRuns(strings.NewReader(old + "\n"))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, spec, recs[0].Spec)
}

// TestWriteFileMode: report files are readable by all, like runs.jsonl.
func TestWriteFileMode(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, results.WriteFile(dir, results.ReportMD, []byte("# report\n")))
	st, err := os.Stat(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}
