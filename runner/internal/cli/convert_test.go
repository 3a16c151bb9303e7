package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestModelsConvertLmrs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny")
	require.Equal(t, 0, run(t, ctx, "models", "synth", "--shape", "tiny", "--dtype", "bf16", "--out", tiny).code)
	out := filepath.Join(dir, "tiny-q4")
	o := run(t, ctx, "models", "convert", "--to", "lmrs", "--quant", "q4_0", "--model", tiny, "--out", out)
	require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
	assert.Contains(t, o.stdout, "lmrs v1 q4_0, group size 16")
	for _, f := range []string{"model.lmrs", "config.json"} {
		_, err := os.Stat(filepath.Join(out, f))
		assert.NoError(t, err)
	}
	o = run(t, ctx, "models", "convert", "--to", "gguf", "--model", tiny, "--out", out)
	assert.Equal(t, 2, o.code, "unknown target is a usage error; stderr: %s", o.stderr)
	o = run(t, ctx, "models", "convert", "--to", "lmrs", "--quant", "q3", "--model", tiny, "--out", out)
	assert.Equal(t, 2, o.code, "stderr: %s", o.stderr)
}

func TestCPUProbe(t *testing.T) {
	o := run(t, context.Background(), "cpu", "probe", "--threads", "1", "--bytes", "8388608", "--iters", "2", "--json")
	require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
	assert.Contains(t, o.stdout, `"read_bytes_per_s"`)
}
