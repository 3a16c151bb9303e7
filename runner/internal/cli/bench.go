package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

func benchFlags(e *env) []ucli.Flag {
	return append([]ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "benchmark config `FILE` (YAML); default: the embedded smoke config"},
		&ucli.StringFlag{Name: "engines", Aliases: []string{"e"}, Usage: "comma-separated engine variants, e.g. candle,burn or reference:threads=1,reference:threads=2"},
		binDirFlag(e),
		&ucli.StringFlag{Name: "out", Value: "results", Usage: "results root `DIR`; each benchmark writes DIR/<timestamp>-<name>/"},
		&ucli.StringFlag{Name: "model", Usage: "override the config's model `DIR`"},
		&ucli.StringFlag{Name: "device", Usage: "override the device (cpu, cuda:N)"},
		&ucli.StringFlag{Name: "dtype", Usage: "override the dtype (f32, f16, bf16)"},
		&ucli.IntFlag{Name: "launches", DefaultText: "the config's", Usage: "override launches per engine (K), exactly: turns adaptive stopping off"},
		&ucli.IntFlag{Name: "iterations", DefaultText: "the config's", Usage: "override timed iterations per launch (M)"},
		&ucli.IntFlag{Name: "warmup", DefaultText: "the config's", Usage: "override warm-up iterations per launch"},
		&ucli.StringFlag{Name: "baseline", Usage: "engine label the others are compared with (default: the first)"},
		equivalenceFlag(),
		&ucli.BoolFlag{Name: "no-telemetry", Usage: "do not sample the GPU through NVML"},
		&ucli.DurationFlag{Name: "telemetry-interval", Value: telemetry.DefaultInterval, Usage: "GPU sampling interval: the energy counter (a read takes ~3.5 ms on an H200, while the engine's driver calls wait) and the other fields; the report's \"sampler busy %\" is the share of time spent in NVML (--power-interval resolves short phases cheaply)"},
		&ucli.DurationFlag{Name: "power-interval", Usage: "read the instantaneous power this often (µs a call), the energy counter and the rest at --telemetry-interval: the power of short phases at almost no cost (e.g. 10ms; off when unset)"},
		&ucli.BoolFlag{Name: "allow-busy", Usage: "run even when another process holds the GPU"},
		&ucli.DurationFlag{Name: "idle-timeout", Value: 60 * time.Second, Usage: "longest wait for the GPU to return to rest before a launch (then a warning)"},
		&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines, only the report"},
		&ucli.BoolFlag{Name: "dry-run", Usage: "check the config, engines, options and baseline as a run does, print what it would run, launch and write nothing"},
		gpusFlag(),
	}, append(append(overrideFlags(), pluginFlags()...), profileFlags()...)...)
}

func binDirFlag(e *env) ucli.Flag {
	def := e.getenv("CIB_BIN_DIR")
	if def == "" {
		def = "bin"
	}
	return &ucli.StringFlag{Name: "bin-dir", Value: def, Usage: "where engine binaries are (env CIB_BIN_DIR); then PATH (cib-NAME)"}
}

// loadConfig reads --config or the embedded default and applies overrides.
func loadConfig(c *ucli.Context) (*config.Config, error) {
	name, raw, err := configSource(c)
	if err != nil {
		return nil, err
	}
	if raw, err = applyOverrides(raw, c); err != nil {
		return nil, err
	}
	cfg, err := config.Parse(raw)
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("config %s: %w", name, err))
	}
	if v := c.String("model"); v != "" {
		cfg.Model, cfg.Synth = v, nil
	}
	if v := c.String("device"); v != "" {
		cfg.Device = v
	}
	if v := c.String("dtype"); v != "" {
		cfg.DType = v
		if cfg.Synth != nil {
			cfg.Synth.DType = v
		}
	}
	for _, f := range []struct {
		name string
		min  int
	}{{"launches", 1}, {"iterations", 1}, {"warmup", 0}} {
		if v := c.Int(f.name); c.IsSet(f.name) && v < f.min {
			return nil, usageError("--%s %d: need at least %d", f.name, v, f.min)
		}
	}
	for _, f := range []string{"telemetry-interval", "power-interval"} {
		if v := c.Duration(f); v < 0 {
			return nil, usageError("--%s %s: must not be negative", f, v)
		}
	}
	if c.IsSet("launches") {
		// An explicit launch count is exact: it turns adaptive stopping off.
		cfg.Launches, cfg.Adaptive = c.Int("launches"), nil
	}
	if c.IsSet("iterations") {
		cfg.Iterations = c.Int("iterations")
	}
	if c.IsSet("warmup") {
		cfg.Warmup = c.Int("warmup")
	}
	if v := c.String("baseline"); v != "" {
		cfg.Baseline = v
	}
	if c.IsSet("equivalence") {
		m, err := parseMargin(c.String("equivalence"))
		if err != nil {
			return nil, err
		}
		cfg.Equivalence = m
	}
	if v := c.String("engines"); v != "" {
		specs, err := config.ParseEngines(v)
		if err != nil {
			return nil, usageError("%v", err)
		}
		cfg.Engines = specs
		// The config's baseline names one of the config's engines, which --engines has just replaced: where it names
		// none of the new ones the first becomes the baseline, as with no baseline at all (a --baseline given on the
		// command line is still checked below).
		if c.String("baseline") == "" && checkBaseline(cfg) != nil {
			fmt.Fprintf(c.App.ErrWriter, "note: the config's baseline %q is none of --engines; the baseline is the first, %s\n",
				cfg.Baseline, specs[0].DisplayLabel())
			cfg.Baseline = ""
		}
	}
	if len(cfg.Engines) == 0 {
		return nil, usageError("no engines: give --engines or an engines list in the config")
	}
	if err := checkBaseline(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return cfg, nil
}

// resolveVariants finds every engine binary and reads its info (each under
// the start timeout); an engine that cannot serve the config's device, dtype
// or protocol version is refused before anything is launched, and every
// problem is reported at once. An interrupt stops it with ErrInterrupted.
func resolveVariants(ctx context.Context, e *env, binDir string, binDirGiven bool, cfg *config.Config) ([]bench.Variant, error) {
	var out []bench.Variant
	var errs []error
	infos := map[string]*protocol.Info{}
	for _, s := range cfg.Engines {
		path, err := e.findEngine(s.Name, binDir, binDirGiven)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, ok := infos[path]
		if !ok && e.cell != nil { // read once for the whole suite, device already checked
			if info, ok = e.cell.infos[path]; ok {
				infos[path] = info
			}
		}
		if !ok {
			info, _, err = spawn.Info(ctx, path, e.environ, cfg.Timeouts.Start.Duration)
			if errors.Is(err, spawn.ErrInterrupted) {
				return nil, withCode(ExitInterrupted, fmt.Errorf("engine %s: %w", s.Name, err))
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("engine %s: %w", s.Name, err))
				continue
			}
			if err := info.Serves(cfg.Device, cfg.DType); err != nil {
				errs = append(errs, fmt.Errorf("engine %s (%s) cannot run this benchmark: %w", s.Name, path, err))
				continue
			}
			infos[path] = info
		}
		for k := range s.Options {
			if _, ok := info.Options[k]; !ok {
				errs = append(errs, fmt.Errorf("engine %s: unknown option %q (it knows: %s)", s.Name, k, optionList(info)))
			}
		}
		out = append(out, bench.Variant{Spec: s, Label: s.DisplayLabel(), Path: path, Info: info})
	}
	if len(errs) > 0 {
		return nil, withCode(ExitUsage, errors.Join(errs...))
	}
	return out, nil
}

func optionList(info *protocol.Info) string {
	if len(info.Options) == 0 {
		return "none"
	}
	var ks []string
	for k, v := range info.Options {
		ks = append(ks, k+" ("+v+")")
	}
	return strings.Join(ks, ", ")
}

func benchCmd(c *ucli.Context, e *env) error {
	if c.Args().Len() > 0 {
		return usageError("unexpected argument %q (commands: engines, models, compare, report, conformance, gpu)", c.Args().First())
	}
	ctx := c.Context
	if err := checkFormat(c); err != nil {
		return err
	}
	res, err := openResume(c) // nil unless --resume
	if err != nil {
		return err
	}
	var cfg *config.Config
	if res != nil {
		cfg = res.cfg
	} else if e.cell != nil { // a suite's cell (suite.go)
		cfg = e.cell.cfg
	} else if cfg, err = loadConfig(c); err != nil {
		return err
	}
	plugs, err := newPlugins(c, e, cfg.Plugins, cfg.Prices, nil) // plugins.go
	if err != nil {
		return err
	}
	progress := e.stderr
	if c.Bool("quiet") {
		progress = nil
	}
	variants, err := resolveVariants(ctx, e, c.String("bin-dir"), c.IsSet("bin-dir"), cfg)
	if err != nil {
		return err
	}
	profiler, variants, err := profileVariants(c, e, cfg, variants)
	if err != nil {
		return err
	}
	multi := c.IsSet("gpus")
	if multi {
		switch {
		case res != nil:
			return usageError("--gpus with --resume: resuming a multi-GPU run is not supported yet")
		case profiler != nil:
			return usageError("--gpus with --profile: profile on one GPU")
		}
	}
	if c.Bool("dry-run") {
		return dryRun(e.stdout, cfg, variants) // dryrun.go
	}
	if err := checkGPUPresent(cfg.Device); err != nil {
		return err
	}
	model, err := workload.PrepareModel(ctx, cfg, progress, modelcfg.HashCachePath(e.getenv))
	if errors.Is(err, workload.ErrNoModel) {
		return withCode(ExitUsage, err)
	} else if err != nil {
		return err
	}
	cases, err := workload.Cases(cfg, model.Config)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	wd, _ := os.Getwd()
	envRec := envinfo.Collect(ctx, e.args, wd, e.getenv("CIB_GIT_COMMIT"))
	envRec.Slurm = envinfo.SlurmFrom(e.getenv) // node and job ids of a runner slurm task
	envRec.Model = model.Info
	for _, v := range variants {
		envRec.Engines[v.Label] = *v.Info
		envRec.Binaries[v.Label] = v.Path
	}
	var mon gpuMonitor
	var telemetryNote string
	var cards *cardsRun
	if multi {
		if cards, err = openCards(c, cfg, e, model); err != nil {
			return err
		}
		defer cards.close()
		telemetryNote = cards.note
		envRec.GPUs = cards.records
		if len(cards.records) > 0 {
			envRec.GPU = cards.records[0]
			envRec.GPUBandwidth = cards.bandwidth
			if u := cards.cards[0].UUID; cards.bandwidth[u] != nil {
				envRec.Bandwidth = cards.bandwidth[u]
			}
		}
		if n := bench.BalancedLaunches(cfg.Launches, len(cards.cards)); n != cfg.Launches || cfg.Adaptive != nil {
			if progress != nil {
				fmt.Fprintf(progress, "note: --gpus runs exactly %d launches per engine (a multiple of the %d cards, no adaptive stopping): each engine gets %d on every card\n",
					n, len(cards.cards), n/len(cards.cards))
			}
			cfg.Launches, cfg.Adaptive = n, nil
		}
	} else if mon, telemetryNote, err = openMonitor(c, cfg, e, model); err != nil {
		return err
	}
	envRec.Telemetry = telemetryNote
	if mon != nil {
		envRec.GPU = mon.DeviceRecord()
		envRec.Bandwidth = mon.MeasuredBandwidth()
		defer mon.Close()
	}
	if progress != nil {
		fmt.Fprintf(progress, "telemetry: %s\n", telemetryNote)
	}
	if err := plugs.pre(cfg, envRec); err != nil { // a plugin's veto: nothing launched, nothing written
		return err
	}

	req := protocol.Request{
		Protocol: protocol.Version, Model: model.Dir, Device: cfg.Device, DType: cfg.DType, Seed: cfg.Seed,
		Warmup: cfg.Warmup, Iterations: cfg.Iterations, Cases: cases,
	}
	if kind, _, _ := protocol.ParseDevice(req.Device); multi && kind == "cuda" {
		req.Device = "cuda:0" // the one card each child sees
	}
	var w *results.Writer
	var prev []results.Record
	if res != nil { // the run's own environment record and exact request; new launches append
		if !envinfo.SameMachine(res.env, envRec) {
			return withCode(ExitUsage, fmt.Errorf("resume %s: %w: its launches ran on %s, these would run on %s; one run's launches share one "+
				"machine, so start a new run (runner suite --resume starts such a cell again by itself)", res.dir, errOtherMachine, res.env.Machine(), envRec.Machine()))
		}
		if res.req.Model != req.Model || !sameCases(res.req.Cases, req.Cases) {
			return usageError("resume %s: the model or the prompts changed since the run started (%s)", res.dir, res.req.Model)
		}
		envRec, req, prev = res.env, res.req, res.prev
		if w, err = results.Create(res.dir); err != nil {
			return err
		}
	} else {
		root, name := c.String("out"), envRec.CreatedAt.Format("20060102-150405")+"-"+safeName(cfg.Name)
		if e.cell != nil {
			root, name = filepath.Split(e.cell.dir)
		}
		if w, err = results.CreateNew(root, name); err != nil {
			return err
		}
		for _, f := range []func() error{
			func() error { return results.WriteJSON(w.Dir(), results.EnvFile, envRec) },
			func() error { return results.WriteJSON(w.Dir(), "request.json", req) },
			func() error { return writeConfig(w.Dir(), cfg) },
		} {
			if err := f(); err != nil {
				w.Close()
				return err
			}
		}
	}
	defer w.Close()
	dir := w.Dir()
	if progress != nil {
		fmt.Fprintf(progress, "benchmark %s: %d engine variant(s) × %d launch(es), results in %s\n", cfg.Name, len(variants), cfg.Launches, dir)
		if len(prev) > 0 {
			fmt.Fprintf(progress, "resuming: %d launch(es) already recorded\n", len(prev))
		}
	}
	// Before any launch: can this design call a difference significant?
	// (The report says it again from the launches that succeeded.)
	if len(variants) > 1 && progress != nil {
		family := (len(variants) - 1) * len(cases) * analysis.Hypotheses()
		if a := stats.DesignAdvice(cfg.Launches, family, stats.DefaultAlpha); a != "" {
			if cfg.Adaptive != nil {
				a += fmt.Sprintf(" (adaptive stopping may add launches up to %d)", cfg.Adaptive.MaxLaunches)
			}
			fmt.Fprintf(progress, "note: %s\n", a)
		}
	}
	var monitor bench.Monitor
	if mon != nil {
		monitor = mon
	}
	var live *liveProgress
	var observer bench.Observer
	if progress != nil && !multi && isTerminal(progress, e) { // a live bar on a terminal, plain lines elsewhere
		live = newLiveProgress(progress, cfg.Launches*len(variants))
		observer = live
	}
	if variants, err = caseSubsets(variants, req.Cases, progress); err != nil {
		return err
	}
	opts := bench.Options{
		Config: cfg, Variants: variants, Request: req, Writer: w, Monitor: monitor, Progress: progress, Env: e.environ,
		Observer: observer, Profiler: profiler, Previous: prev,
	}
	if e.cell != nil {
		opts.Stop = e.cell.stop
	}
	if cards != nil {
		opts.Cards = cards.cards
	}
	recs, runErr := bench.Run(ctx, opts)
	if live != nil {
		live.Close()
	}
	labels := make([]string, len(variants))
	for i, v := range variants {
		labels[i] = v.Label
	}
	if len(recs) == 0 {
		if runErr != nil {
			return withCode(ExitInterrupted, runErr)
		}
		return results.ErrNoRuns
	}
	preps, pw := results.ReadPreparations(dir)
	sum, err := writeReports(dir, cfg.Name, envRec, req, labels, cfg.Baseline, analysis.Options{Equivalence: cfg.Equivalence}, recs, preps, pw, plugs)
	if err != nil {
		return err
	}
	if err := writeFormat(e.stdout, c.String("format"), sum); err != nil {
		return err
	}
	if progress != nil {
		fmt.Fprintf(progress, "\nresults: %s (runs.jsonl, summary.json, report.md, report.html, report.csv, bench.txt)\n", dir)
	}
	if progress != nil {
		printHeadlines(progress, sum, useColour(progress, e))
	}
	if runErr != nil {
		return withCode(ExitInterrupted, fmt.Errorf("%w; the %d launch(es) finished before it are saved in %s", runErr, len(recs), dir))
	}
	if n := len(sum.Failures); n > 0 {
		return withCode(ExitRunsFailed, fmt.Errorf("%d launch(es) failed (see the report)", n))
	}
	return nil
}

// sameCases reports whether two requests send the same prompts and lengths.
func sameCases(a, b []protocol.Case) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].MaxNewTokens != b[i].MaxNewTokens || a[i].BatchSize != b[i].BatchSize || !slices.Equal(a[i].PromptTokens, b[i].PromptTokens) {
			return false
		}
	}
	return true
}

// requestInfo rebuilds what the report needs to know about the request.
func requestInfo(req protocol.Request) analysis.RequestInfo {
	return analysis.RequestInfo{Device: req.Device, DType: req.DType, Warmup: req.Warmup, Iterations: req.Iterations, Cases: req.Cases}
}

func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// caseSubsets gives each variant whose engine serves smaller batches than some case asks the cases it can run
// (caseFit), saying which it leaves out; an engine that can run none of them is an error before any launch.
func caseSubsets(variants []bench.Variant, cases []protocol.Case, progress io.Writer) ([]bench.Variant, error) {
	var errs []error
	for i := range variants {
		v := &variants[i]
		mb := 0
		if v.Info != nil {
			mb = v.Info.Capabilities.MaxBatch
		}
		keep, note, err := caseFit(v.Label, mb, cases)
		v.Cases = keep
		switch {
		case err != nil:
			errs = append(errs, err)
		case note != "" && progress != nil && !strings.HasSuffix(v.Label, bench.ProfileSuffix):
			fmt.Fprintf(progress, "note: %s %s\n", v.Label, note)
		}
	}
	if len(errs) > 0 {
		return nil, withCode(ExitUsage, errors.Join(errs...))
	}
	return variants, nil
}

// caseFit is what an engine serving batches of up to maxBatch runs of cases, for a run and its dry run alike: the
// cases it keeps (bench.CasesFor: nil for all), a note naming those it leaves out ("" when none), or an error when
// none fits.
func caseFit(label string, maxBatch int, cases []protocol.Case) ([]int, string, error) {
	keep := bench.CasesFor(cases, maxBatch)
	switch {
	case keep == nil:
		return nil, "", nil
	case len(keep) == 0:
		return keep, "", fmt.Errorf("engine %s serves batches of up to %d: no case of this benchmark fits it", label, max(maxBatch, 1))
	}
	var left []string
	for ci, c := range cases {
		if !slices.Contains(keep, ci) {
			left = append(left, fmt.Sprintf("%s (batch %d)", c.Name, c.BatchSize))
		}
	}
	return keep, fmt.Sprintf("serves batches of up to %d: its launches leave out %s", max(maxBatch, 1), strings.Join(left, ", ")), nil
}
