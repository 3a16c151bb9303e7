package suite

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// TestCommittedSuites keeps configs/suite-*.yaml valid, every cell included, and every workload within its
// synthesized model's vocabulary and positions (2026-12-02: p2048-n16 on TinyLlama's 2048 positions, found on the H200).
func TestCommittedSuites(t *testing.T) {
	files, err := filepath.Glob("../../../configs/suite-*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 2)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			require.NoError(t, err)
			cases := 0
			for _, cell := range c.Cells() {
				cases += len(cell.Workloads)
				cfg, err := c.CellConfig(cell, c.Engines)
				require.NoError(t, err, cell.Name)
				require.GreaterOrEqual(t, cfg.Launches, 4, "the issue asks for at least 4 launches per engine per cell")
				if cell.Model.Synth != nil {
					shape, ok := synth.Shapes[cell.Model.Synth.Shape]
					require.True(t, ok, "%s: synth shape %q", cell.Name, cell.Model.Synth.Shape)
					_, err := workload.Cases(cfg, shape)
					require.NoError(t, err, cell.Name)
				}
			}
			require.Equal(t, len(c.Models)*len(c.Workloads), cases, "every model × workload in one cell")
		})
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, err string
	}{
		{name: "ok", yaml: "models: [{dir: m/a}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n"},
		{name: "no models", yaml: "workloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: "models: need at least one"},
		{name: "no workloads", yaml: "models: [{dir: m/a}]\n", err: "workloads: need at least one"},
		{name: "model in the base", yaml: "model: m\nmodels: [{dir: m/a}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: "a suite lists its models under models:"},
		{name: "cases in the base", yaml: "cases: [{name: c, prompt_len: 4, max_new_tokens: 2}]\nmodels: [{dir: m/a}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: "a suite lists its cases under workloads:"},
		{name: "twice", yaml: "models: [{dir: m/a}, {dir: n/a}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: `name "a" used twice`},
		{name: "bad name", yaml: "models: [{dir: m/a}]\nworkloads: [{name: 'w x', prompt_len: 4, max_new_tokens: 2}]\n", err: "want letters"},
		{name: "unknown field", yaml: "modles: []\n", err: "modles"},
		{name: "skip with a reason", yaml: "engines: [{name: burn, options: {attention: padded}}]\nmodels: [{dir: m/a, skip: {burn: fails here}}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n"},
		{name: "skip without one", yaml: "models: [{dir: m/a, skip: {burn: ''}}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: `skip "burn": say why`},
		{name: "skip of no engine", yaml: "engines: [{name: candle}]\nmodels: [{dir: m/a, skip: {burn: fails}}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: `skip "burn": names none of the engines`},
		{name: "bad grouping", yaml: "cells: per-engine\nmodels: [{dir: m/a}]\nworkloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n", err: "cells: \"per-engine\": want per-workload, per-batch or per-model"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "a", c.Models[0].Name, "a model's name defaults to its directory's base name")
			require.Equal(t, []string{"a-w"}, []string{c.Cells()[0].Name})
		})
	}
}

// TestSkipped: a model's skip matches an engine variant by its label first, then every variant by the engine's name.
func TestSkipped(t *testing.T) {
	m := Model{Skip: map[string]string{"burn": "all of burn", "candle:x=1": "this variant"}}
	require.Equal(t, "all of burn", m.Skipped(config.EngineSpec{Name: "burn", Options: map[string]string{"attention": "padded"}}))
	require.Equal(t, "this variant", m.Skipped(config.EngineSpec{Name: "candle", Options: map[string]string{"x": "1"}}))
	require.Equal(t, "", m.Skipped(config.EngineSpec{Name: "candle"}))
}

// TestCellConfig: a cell inherits the suite's settings, gets its model and
// one case, and falls back to the first engine when the baseline is skipped.
func TestCellConfig(t *testing.T) {
	c, err := Parse([]byte("name: s\nlaunches: 4\niterations: 2\nbaseline: reference:threads=2\n" +
		"models: [{name: t, dir: models/t, synth: {shape: tiny, dtype: f32, seed: 3}}]\n" +
		"workloads: [{name: b8, prompt_len: 4, max_new_tokens: 2, batch_size: 8}]\n"))
	require.NoError(t, err)
	cells := c.Cells()
	both := []config.EngineSpec{{Name: "reference", Threads: 1}, {Name: "reference", Threads: 2}}
	cfg, err := c.CellConfig(cells[0], both)
	require.NoError(t, err)
	require.Equal(t, "s-t-b8", cfg.Name)
	require.Equal(t, "models/t", cfg.Model)
	require.Equal(t, uint64(3), cfg.Synth.Seed)
	require.Equal(t, 4, cfg.Launches)
	require.Equal(t, 2, cfg.Iterations)
	require.Len(t, cfg.Cases, 1)
	cs := cfg.Cases[0]
	require.Equal(t, [4]any{"b8", 4, 2, 8}, [4]any{cs.Name, cs.PromptLen, cs.MaxNewTokens, cs.BatchSize})
	require.Equal(t, "reference:threads=2", cfg.Baseline)
	cfg, err = c.CellConfig(cells[0], both[:1])
	require.NoError(t, err)
	require.Equal(t, "", cfg.Baseline)
}

// TestCellsPerBatch: per-batch, a model's workloads of one batch size make one cell (in the order the batch sizes
// first appear), whose benchmark runs them as cases; per-workload (the default) keeps a cell per workload; per-model
// makes one cell of all a model's workloads.
func TestCellsPerBatch(t *testing.T) {
	src := "models: [{name: a, dir: m/a}, {name: b, dir: m/b}]\nworkloads: [{name: d, prompt_len: 8, max_new_tokens: 16}, " +
		"{name: b8, prompt_len: 8, max_new_tokens: 4, batch_size: 8}, {name: p, prompt_len: 64, max_new_tokens: 2}]\n"
	names := func(cells []Cell) (out []string) {
		for _, c := range cells {
			out = append(out, c.Name)
		}
		return out
	}
	c, err := Parse([]byte(src))
	require.NoError(t, err)
	require.Equal(t, []string{"a-d", "a-b8", "a-p", "b-d", "b-b8", "b-p"}, names(c.Cells()))
	c, err = Parse([]byte("cells: per-batch\n" + src))
	require.NoError(t, err)
	cells := c.Cells()
	require.Equal(t, []string{"a-d+p", "a-b8", "b-d+p", "b-b8"}, names(cells))
	require.Equal(t, "d+p", cells[0].Workload())
	require.Equal(t, [2]int{1, 8}, [2]int{cells[0].MinBatch(), cells[1].MinBatch()})
	cfg, err := c.CellConfig(cells[2], []config.EngineSpec{{Name: "reference"}})
	require.NoError(t, err)
	require.Equal(t, "m/b", cfg.Model)
	require.Len(t, cfg.Cases, 2)
	require.Equal(t, [2]string{"d", "p"}, [2]string{cfg.Cases[0].Name, cfg.Cases[1].Name})
	// per-model: one cell a model, every workload a case in the workloads' order; its smallest batch decides who sits
	// it out (nobody here: d and p are batch 1).
	c, err = Parse([]byte("cells: per-model\n" + src))
	require.NoError(t, err)
	cells = c.Cells()
	require.Equal(t, []string{"a-d+b8+p", "b-d+b8+p"}, names(cells))
	require.Equal(t, 1, cells[0].MinBatch())
	cfg, err = c.CellConfig(cells[1], []config.EngineSpec{{Name: "reference"}})
	require.NoError(t, err)
	require.Len(t, cfg.Cases, 3)
	require.Equal(t, 8, cfg.Cases[1].BatchSize)
}

// TestColdStarts: launch 1 against the median of the later ones, per
// engine, failed launches left out.
func TestColdStarts(t *testing.T) {
	rec := func(engine string, load, compile, total float64, ok bool) results.Record {
		r := results.Record{Engine: engine, Status: results.StatusOK, ColdStartNs: int64(load * 1e9), DurationNs: int64(total * 1e9),
			Loaded: &protocol.Loaded{CompileNs: int64(compile * 1e9)}}
		if !ok {
			r.Status = results.StatusFailed
		}
		return r
	}
	got := ColdStarts([]results.Record{
		rec("a", 60, 50, 70, true), rec("b", 2, 0, 5, true),
		rec("a", 9, 5, 20, true), rec("b", 100, 0, 100, false), rec("a", 11, 7, 22, true), rec("a", 10, 6, 30, true),
	})
	require.Equal(t, []ColdStart{
		{Engine: "a", Launches: 4, FirstLoad: 60, LaterLoad: 10, FirstCompile: 50, LaterCompile: 6, FirstTotal: 70, LaterTotal: 22},
		{Engine: "b", Launches: 1, FirstLoad: 2, FirstTotal: 5},
	}, got)
}

// TestAddModels: the suite gains the other config's models after its own, keeps its own engines, workloads and
// launches, and takes the other's timeouts.
func TestAddModels(t *testing.T) {
	other, err := Load("../../../configs/suite-h200.yaml")
	require.NoError(t, err)
	c, err := Load("../../../configs/suite-h200.yaml")
	require.NoError(t, err)
	c.Models = c.Models[:1] // a suite begun with --models tinyllama-1.1b
	c.Launches, c.Timeouts.Prepare.Duration = 2, other.Timeouts.Prepare.Duration/3
	before := len(c.Cells())

	added, err := c.AddModels(other, nil)
	require.NoError(t, err)
	require.Len(t, added, 1)
	require.Equal(t, "llama-3-8b", added[0].Name)
	require.Equal(t, []string{"tinyllama-1.1b", "llama-3-8b"}, []string{c.Models[0].Name, c.Models[1].Name})
	require.Equal(t, 2, c.Launches, "the suite's own launch count stays")
	require.Equal(t, other.Timeouts, c.Timeouts, "the other config's timeouts")
	cells := c.Cells()
	require.Len(t, cells, 2*before)
	require.Equal(t, "tinyllama-1.1b", cells[0].Model.Name, "the suite's cells first")
	require.Equal(t, "llama-3-8b", cells[len(cells)-1].Model.Name)

	_, err = c.AddModels(other, nil)
	require.ErrorContains(t, err, "no model to add")
	_, err = c.AddModels(other, []string{"tinyllama-1.1b"})
	require.ErrorContains(t, err, "in the suite already")
	_, err = c.AddModels(other, []string{"nope"})
	require.ErrorContains(t, err, `has no model "nope"`)
}

// TestModelTotals: each model's wall time over its cells, with the share its engines' preparations took and the
// failed ones named (a preparation that runs out of time costs its whole timeout and measures nothing).
func TestModelTotals(t *testing.T) {
	dir := t.TempDir()
	prep := func(cell, engine string, s float64, failed bool) {
		p := &results.Preparation{Engine: engine, WallNs: int64(s * 1e9)}
		if failed {
			p.Error = "prepare ran past timeouts.prepare (4m0s)"
		} else {
			p.Prepared = &protocol.Prepared{Ran: true}
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dir, cell), 0o755))
		require.NoError(t, results.AppendPreparation(filepath.Join(dir, cell), p))
	}
	prep("tiny-b1", "compiled", 67, false)
	prep("tiny-b1", "burn", 240, true)
	prep("tiny-b8", "compiled", 75, false)
	st := &State{Cells: []CellState{
		{Name: "tiny-b1", Model: "tiny", WallSeconds: 828},
		{Name: "tiny-b8", Model: "tiny", WallSeconds: 513},
		{Name: "big-b1", Model: "big", WallSeconds: 60},
	}}
	assert.Equal(t, [][2]string{
		{"tiny", "22m21s over its 2 cell(s), of which 6m22s in preparations (4m0s in ones that failed: burn)"},
		{"big", "1m0s over its 1 cell(s)"},
	}, modelTotals(dir, st))
}
