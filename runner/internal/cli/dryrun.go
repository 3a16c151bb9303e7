package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/suite"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// dryRun prints what `runner bench` would run — the model, the cases, each variant's binary and library, the
// launches and iterations — after every check a run makes before its first launch (config, engines found and
// answering info, options they know, device and dtype they serve, the baseline), and the checks that would
// otherwise only fail inside a launch: prompt ids within the vocabulary (an error), batch sizes within each
// engine's max_batch (a note naming the cases its launches leave out; an error when none is left). Nothing is launched or written. Its error is the run's: a device minute is not spent finding out that
// a config names a baseline none of its engines has (2026-12-02, on the H200).
func dryRun(w io.Writer, cfg *config.Config, variants []bench.Variant) error {
	var errs []error
	fmt.Fprintf(w, "dry run of %s: nothing launched, nothing written\n", cfg.Name)
	dir, _ := filepath.Abs(cfg.Model)
	var mc *modelcfg.Config
	switch _, err := os.Stat(filepath.Join(dir, modelcfg.ConfigFile)); {
	case err == nil:
		m, err := modelcfg.Load(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("model %s: %w", cfg.Model, err))
			break
		}
		mc = &m
		fmt.Fprintf(w, "  model %s: %s, %s params, vocabulary %d\n", cfg.Model, m.ModelType, paramCount(m.Params()), m.VocabSize)
	case cfg.Synth != nil:
		s, ok := synth.Shapes[cfg.Synth.Shape]
		if !ok {
			errs = append(errs, fmt.Errorf("synth.shape %q: want one of %s", cfg.Synth.Shape, strings.Join(synth.ShapeNames(), ", ")))
			break
		}
		mc = &s
		fmt.Fprintf(w, "  model %s: not there yet; the run synthesizes shape %s (%s, seed %d), vocabulary %d\n",
			cfg.Model, cfg.Synth.Shape, cfg.Synth.DType, cfg.Synth.Seed, s.VocabSize)
	default:
		errs = append(errs, fmt.Errorf("model %s: %w (no %s there, and the config has no synth section)", cfg.Model, workload.ErrNoModel, modelcfg.ConfigFile))
	}
	fmt.Fprintf(w, "  device %s, %s, seed %d\n", cfg.Device, cfg.DType, cfg.Seed)
	if mc != nil {
		if _, err := workload.Cases(cfg, *mc); err != nil {
			errs = append(errs, err)
		}
	}
	var batches []protocol.Case // each case's name and batch size, for caseFit
	for _, c := range cfg.Cases {
		b := max(c.BatchSize, 1)
		batches = append(batches, protocol.Case{Name: c.Name, BatchSize: b})
		prompt := fmt.Sprintf("%d prompt tokens", c.PromptLen)
		if len(c.PromptTokens) > 0 {
			prompt = fmt.Sprintf("%d given prompt tokens", len(c.PromptTokens))
		}
		fmt.Fprintf(w, "  case %s: %s, %d new, batch %d\n", c.Name, prompt, c.MaxNewTokens, b)
	}
	baseline := cfg.Baseline
	if baseline == "" && len(variants) > 0 {
		baseline = variants[0].Label
	}
	for _, v := range variants {
		mark := ""
		if v.Label == baseline {
			mark = " (baseline)"
		}
		prep := ""
		if v.Info.Capabilities.Prepare {
			prep = ", prepared before its first launch"
		}
		fmt.Fprintf(w, "  engine %s%s: %s, %s %s%s\n", v.Label, mark, v.Path, v.Info.Library, v.Info.LibraryVersion, prep)
		switch _, note, err := caseFit(v.Label, v.Info.Capabilities.MaxBatch, batches); { // as the run's caseSubsets
		case err != nil:
			errs = append(errs, err)
		case note != "":
			fmt.Fprintf(w, "  note: engine %s %s\n", v.Label, note)
		}
	}
	launches := fmt.Sprintf("%d launches per engine", cfg.Launches)
	if a := cfg.Adaptive; a != nil {
		launches = fmt.Sprintf("%d to %d launches per engine (adaptive: until every launch-level CI is within ±%.1f%%, at most %s)",
			cfg.Launches, a.MaxLaunches, 100*a.TargetRelCI, a.MaxDuration.Duration)
	}
	fmt.Fprintf(w, "  %s, interleaved; each: %d warm-up + %d timed iterations per case\n", launches, cfg.Warmup, cfg.Iterations)
	if err := errors.Join(errs...); err != nil {
		return withCode(ExitUsage, err)
	}
	fmt.Fprintln(w, "  ok: the run would start")
	return nil
}

// paramCount is a parameter count for people: 1.10B, 0.6M.
func paramCount(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}

// suiteDryRun is `runner suite CONFIG --dry-run`: each cell's engines (those its batch skips named), every cell checked
// as `runner bench --dry-run` checks a benchmark, the launches in all; nothing launched or written.
func suiteDryRun(w io.Writer, e *env, binDir string, binGiven bool, sc *suite.Config, specs []config.EngineSpec, infos map[string]*protocol.Info) error {
	fmt.Fprintf(w, "dry run of suite %s: nothing launched, nothing written\n", sc.Name)
	var errs []error
	launches := 0
	for _, cell := range sc.Cells() {
		var vs []bench.Variant
		var cellSpecs []config.EngineSpec
		var skipped []string
		for _, v := range cellEngines(e, binDir, binGiven, cell, specs, infos) { // suite.go: as the suite decides
			switch {
			case v.why != "":
				skipped = append(skipped, fmt.Sprintf("%s (on %s: %s)", v.Label, cell.Model.Name, v.why))
			case v.maxBatch > 0:
				skipped = append(skipped, fmt.Sprintf("%s (batch %d > its max batch %d)", v.Label, cell.MinBatch(), v.maxBatch))
			default:
				cellSpecs = append(cellSpecs, v.Spec)
				vs = append(vs, v.Variant)
			}
		}
		skip := ""
		if len(skipped) > 0 {
			skip = "; skipped: " + strings.Join(skipped, ", ")
		}
		if len(vs) == 0 {
			fmt.Fprintf(w, "  cell %s: no engine%s\n", cell.Name, skip)
			continue
		}
		cfg, err := sc.CellConfig(cell, cellSpecs)
		if err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", cell.Name, err))
			continue
		}
		if err := dryRun(io.Discard, cfg, vs); err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", cell.Name, err))
		}
		launches += len(vs) * cfg.Launches
		fmt.Fprintf(w, "  cell %s: %d engine(s) × %d launches (%d warm-up + %d timed iterations per case)%s\n",
			cell.Name, len(vs), cfg.Launches, cfg.Warmup, cfg.Iterations, skip)
	}
	fmt.Fprintf(w, "  %d launches in all\n", launches)
	if err := errors.Join(errs...); err != nil {
		return withCode(ExitUsage, err)
	}
	fmt.Fprintln(w, "  ok: the suite would start")
	return nil
}

// suiteCasesErr checks every cell's workloads against its model (its config.json, or the shape the suite would
// synthesize) before a new suite starts: a workload no engine can serve is the config's error, found before the
// first cell instead of as every engine's failed launches in a later one. A model neither there nor synthesized is
// left to the cell, which says so.
func suiteCasesErr(sc *suite.Config) error {
	var errs []error
	for _, cell := range sc.Cells() {
		cfg, err := sc.CellConfig(cell, sc.Engines)
		if err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", cell.Name, err))
			continue
		}
		var mc modelcfg.Config
		if m, err := modelcfg.Load(cfg.Model); err == nil {
			mc = m
		} else if s, ok := synthShape(cfg); ok {
			mc = s
		} else {
			continue
		}
		if _, err := workload.Cases(cfg, mc); err != nil {
			errs = append(errs, fmt.Errorf("cell %s: %w", cell.Name, err))
		}
	}
	return errors.Join(errs...)
}

// synthShape is the shape cfg's synth section names, when it names a known one.
func synthShape(cfg *config.Config) (modelcfg.Config, bool) {
	if cfg.Synth == nil {
		return modelcfg.Config{}, false
	}
	s, ok := synth.Shapes[cfg.Synth.Shape]
	return s, ok
}
