package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestDryRun: `runner bench --dry-run` makes every check a run makes before its first launch, plus the ones that
// would otherwise fail inside a launch (prompt ids outside the vocabulary; a batch over an engine's max_batch: a note, an error when no case is left), says
// what would run, and neither launches nor writes anything; a model the config would synthesize is not written either.
func TestDryRun(t *testing.T) {
	bin := testbin.Dir(t)
	model := privateModel(t) // its own copy: other tests' testengine launches prepare the shared one
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "c.yaml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := "model: " + model + "\nlaunches: 3\nwarmup: 1\niterations: 4\nbaseline: b\n" +
		"engines: [{name: reference, label: a}, {name: testengine, label: b, options: {prepare: need}}]\n" +
		"cases: [{name: c1, prompt_len: 8, max_new_tokens: 4}, {name: c2, prompt_len: 4, max_new_tokens: 2, batch_size: 2}]\n"
	tests := []struct {
		name string
		body string
		code int
		want []string
	}{
		{"what would run", good, cli.ExitOK, []string{
			"dry run of ", "vocabulary 512", "case c1: 8 prompt tokens, 4 new, batch 1", "case c2: 4 prompt tokens, 2 new, batch 2",
			"engine a: " + filepath.Join(bin, "reference"), "engine b (baseline): ", "prepared before its first launch",
			"3 launches per engine, interleaved; each: 1 warm-up + 4 timed iterations per case", "ok: the run would start"}},
		{"a model it would synthesize", "model: " + filepath.Join(t.TempDir(), "m") + "\nsynth: {shape: llama-3-8b, dtype: bf16, seed: 1}\n" +
			"engines: [{name: reference}]\ncases: [{name: c, prompt_len: 8, max_new_tokens: 4}]\n", cli.ExitOK,
			[]string{"not there yet; the run synthesizes shape llama-3-8b (bf16, seed 1), vocabulary 128256", "ok: the run would start"}},
		{"no model", "model: " + filepath.Join(t.TempDir(), "none") + "\nengines: [{name: reference}]\ncases: [{name: c, prompt_len: 8, max_new_tokens: 4}]\n",
			cli.ExitUsage, []string{"no model (no config.json there, and the config has no synth section)"}},
		{"batch over max_batch", "model: " + model + "\nengines: [{name: testengine}]\ncases: [{name: c, prompt_len: 4, max_new_tokens: 2, batch_size: 8}]\n",
			cli.ExitUsage, []string{"engine testengine serves batches of up to 4: no case of this benchmark fits it"}},
		{"some cases over max_batch", "model: " + model + "\nengines: [{name: testengine}]\ncases: [{name: c1, prompt_len: 4, max_new_tokens: 2}, " +
			"{name: c8, prompt_len: 4, max_new_tokens: 2, batch_size: 8}, {name: c4, prompt_len: 4, max_new_tokens: 2, batch_size: 4}]\n",
			cli.ExitOK, []string{"note: engine testengine serves batches of up to 4: its launches leave out c8 (batch 8)", "ok: the run would start"}},
		{"prompt id outside the vocabulary", "model: " + model + "\nengines: [{name: reference}]\ncases: [{name: c, prompt_tokens: [1, 600], max_new_tokens: 2}]\n",
			cli.ExitUsage, []string{"id 600 is outside the model's vocabulary (512)"}},
		{"unknown baseline", strings.Replace(good, "baseline: b", "baseline: z", 1), cli.ExitUsage, []string{`baseline "z" is none of the engines (a, b)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "results")
			o := run(t, t.Context(), "--bin-dir", bin, "--out", out, "--config", write(tt.body), "--dry-run")
			require.Equal(t, tt.code, o.code, "stdout %s\nstderr %s", o.stdout, o.stderr)
			for _, w := range tt.want {
				assert.Contains(t, o.stdout+o.stderr, w)
			}
			assert.NoDirExists(t, out, "a dry run writes nothing")
		})
	}
	_, err := os.Stat(filepath.Join(model, ".testengine-prepared-f32"))
	assert.True(t, os.IsNotExist(err), "a dry run prepares nothing")
}

// TestSuiteDryRun: `runner suite CONFIG --dry-run` checks every cell, names the engines a batch skips, counts the
// launches, and writes nothing (no suite directory, no model synthesized).
func TestSuiteDryRun(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", filepath.Join(work, "results"),
		"--engines", "reference:threads=1,testengine", "--dry-run")
	require.Equal(t, cli.ExitOK, p.wait(t), p.stderr.String())
	out := p.stdout.String()
	for _, w := range []string{"dry run of suite suite-cpu", "cell tiny-p32-n64: 2 engine(s) × 4 launches (1 warm-up + 3 timed iterations per case)",
		"cell tiny-b8-p32-n32: 1 engine(s) × 4 launches (1 warm-up + 3 timed iterations per case); skipped: testengine (batch 8 > its max batch 4)",
		"40 launches in all", "ok: the suite would start"} {
		assert.Contains(t, out, w)
	}
	ents, err := os.ReadDir(work)
	require.NoError(t, err)
	for _, e := range ents {
		assert.Contains(t, []string{"cache"}, e.Name(), "a dry run writes nothing: %s", e.Name())
	}
	p = startSuite(t, bin, work, "--resume", work, "--dry-run")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	assert.Contains(t, p.stderr.String(), "--dry-run checks a new suite")
}
