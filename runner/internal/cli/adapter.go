package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

func adapterCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "adapter",
		Usage:     "adapter-overhead check: the engine's own decode loop (no Go, no protocol) against runner launches, interleaved on one device",
		ArgsUsage: "ENGINE[:key=value...]",
		Description: "For each round: the engine's native tool (candle-bench, llamacpp-bench, burn-bench, pytorch's bench.py,\n" +
			"`mistralrs native`) then one `runner bench` launch of the same engine, weights, prompt ids and iteration counts, so\n" +
			"clock and temperature drift hit both sides alike. Then one verdict line per metric (decode tok/s; TTFT where the\n" +
			"native tool prints it): ratio runner/native with a 95% hierarchical-bootstrap CI (runs, then iterations within them)\n" +
			"and whether it is within ±tolerance. Writes DIR/<timestamp>-adapter-ENGINE/: each run's raw output, report.md and\n" +
			"adapter.json. ENGINE:key=value options go to the runner's launch and, where the tool has the flag, to the native\n" +
			"tool (burn:attention=padded, pytorch:compile=none, llamacpp:type=f16).\n\n" +
			"Exit status: 0 within tolerance, 4 when a metric's ratio is outside it, 3 when a side had no successful run,\n" +
			"2 for a usage error (unknown engine, missing native tool).",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "model", Required: true, Usage: "model `DIR` (HF layout, e.g. runner models synth --shape tinyllama-1.1b --dtype bf16)"},
			&ucli.StringFlag{Name: "device", Value: "cuda:0", Usage: "device (cpu, cuda:N)"},
			&ucli.StringFlag{Name: "dtype", Value: "bf16", Usage: "dtype (f32, f16, bf16)"},
			&ucli.IntFlag{Name: "rounds", Value: 2, Usage: "native + runner pairs"},
			&ucli.IntFlag{Name: "prompt-len", Value: 128, Usage: "prompt length (the runner's synthetic prompt ids for --seed and the case name)"},
			&ucli.IntFlag{Name: "new-tokens", Value: 256, Usage: "new tokens per iteration"},
			&ucli.IntFlag{Name: "warmup", Value: 2, Usage: "warm-up iterations per run, each side"},
			&ucli.IntFlag{Name: "iterations", Value: 5, Usage: "timed iterations per run, each side"},
			&ucli.Float64Flag{Name: "tolerance", Value: 0.03, Usage: "allowed |runner/native − 1|"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "prompt seed"},
			&ucli.IntFlag{Name: "threads", Usage: "CPU threads on both sides (0: each side's default)"},
			&ucli.StringFlag{Name: "metrics", Value: "decode,ttft", Usage: "metrics to judge: decode, ttft (TTFT only where the native tool prints it)"},
			&ucli.BoolFlag{Name: "prime", Value: true, Usage: "one runner launch before round 1, judged nowhere (a machine's first process reads the model from disk); --prime=false skips it"},
			&ucli.BoolFlag{Name: "native-spin", Usage: "also run the native tool, each round, next to a busy-looping thread (the runner's process tree keeps a second CPU awake); reported, not gating"},
			&ucli.DurationFlag{Name: "native-timeout", Value: 30 * time.Minute, Usage: "longest native run"},
			binDirFlag(e),
			&ucli.StringFlag{Name: "out", Value: "results", Usage: "results root `DIR`; the check writes DIR/<timestamp>-adapter-ENGINE/"},
			&ucli.DurationFlag{Name: "idle-timeout", Value: 10 * time.Second, Usage: "longest wait for the GPU to return to rest before a runner launch"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines, only the verdicts"},
		},
		Action: func(c *ucli.Context) error { return adapterCmd(c, e) },
	}
}

func adapterCmd(c *ucli.Context, e *env) error {
	if c.Args().Len() != 1 {
		return usageError("adapter: want one ENGINE (engines with a native tool: %s)", strings.Join(adapter.Engines(), ", "))
	}
	specs, err := config.ParseEngines(c.Args().First())
	if err != nil || len(specs) != 1 {
		return usageError("adapter: engine %q: want ENGINE or ENGINE:key=value", c.Args().First())
	}
	spec := specs[0]
	native, err := adapter.Lookup(spec.Name)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("adapter: %w", err))
	}
	var metrics []string
	for _, m := range strings.Split(c.String("metrics"), ",") {
		switch strings.TrimSpace(m) {
		case "decode":
			metrics = append(metrics, adapter.MetricDecode)
		case "ttft":
			metrics = append(metrics, adapter.MetricTTFT)
		case "":
		default:
			return usageError("adapter: --metrics %q: want decode, ttft", m)
		}
	}
	if c.Int("rounds") < 1 || c.Int("iterations") < 1 || c.Int("warmup") < 0 || c.Int("new-tokens") < 2 || c.Int("prompt-len") < 1 {
		return usageError("adapter: need --rounds ≥ 1, --iterations ≥ 1, --warmup ≥ 0, --new-tokens ≥ 2, --prompt-len ≥ 1")
	}
	if t := c.Float64("tolerance"); !(t > 0 && t < 1) {
		return usageError("adapter: --tolerance %g: want a fraction in (0, 1), e.g. 0.03", t)
	}
	model := c.String("model")
	if _, err := os.Stat(filepath.Join(model, "config.json")); err != nil {
		return usageError("adapter: model %s has no config.json (make one: runner models synth --shape tinyllama-1.1b --dtype bf16 --out %s)", model, model)
	}
	wd, _ := os.Getwd()
	threads := c.Int("threads")
	if spec.Threads > 0 {
		threads = spec.Threads
	}
	p := adapter.Params{
		Engine: spec.Name, BinDir: c.String("bin-dir"), Model: model, Device: c.String("device"), DType: c.String("dtype"),
		PromptLen: c.Int("prompt-len"), NewTokens: c.Int("new-tokens"), Warmup: c.Int("warmup"), Iterations: c.Int("iterations"),
		Seed: c.Uint64("seed"), Threads: threads, Options: spec.Options, Getenv: e.getenv, WorkDir: wd,
	}
	p.Case = fmt.Sprintf("p%d-n%d", p.PromptLen, p.NewTokens)
	// Both binaries must be there before anything runs; the native tool is
	// looked for next to the engine (the bin dir, or the runner's own dir).
	enginePath, err := e.findEngine(spec.Name, p.BinDir, c.IsSet("bin-dir"))
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("adapter: %w", err))
	}
	if filepath.Base(enginePath) == spec.Name {
		p.BinDir = filepath.Dir(enginePath)
	}
	if _, err := native.Command(c.Context, p); err != nil {
		return withCode(ExitUsage, fmt.Errorf("adapter %s: %w", spec.Name, err))
	}
	if err := checkGPUPresent(p.Device); err != nil {
		return err
	}

	dir, err := newAdapterDir(c.String("out"), "adapter-"+safeName(spec.Name))
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "runner.yaml")
	if err := os.WriteFile(cfgPath, []byte(adapterConfig("adapter-"+p.Engine, p, native.Options(p))), 0o644); err != nil {
		return err
	}
	progress := e.stderr
	if c.Bool("quiet") {
		progress = nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "adapter: %s vs runner, %d rounds, into %s\n", native.Tool, c.Int("rounds"), dir)
	}
	launch := func(ctx context.Context, round int, out string) ([]adapter.Iteration, error) {
		log, err := os.Create(out + ".log")
		if err != nil {
			return nil, err
		}
		defer log.Close()
		args := []string{"runner", "bench", "--config", cfgPath, "--launches", "1", "--out", out, "-q",
			"--idle-timeout", c.Duration("idle-timeout").String(), "--bin-dir", p.BinDir}
		sub := *e
		sub.stdout, sub.stderr, sub.args = log, log, args
		runErr := newApp(&sub).RunContext(ctx, args)
		return runnerIterations(out, runErr)
	}
	sum, err := adapter.Run(c.Context, native, adapter.Options{
		Params: p, Rounds: c.Int("rounds"), Tolerance: c.Float64("tolerance"), Spin: c.Bool("native-spin"), Metrics: metrics,
		Dir: dir, Env: e.environ, Progress: progress, NativeTimeout: c.Duration("native-timeout"), Prime: c.Bool("prime"),
	}, launch)
	if sum != nil {
		for _, v := range sum.Verdicts {
			fmt.Fprintf(e.stdout, "adapter %s %s\n", spec.Name, v.Line())
		}
		for _, v := range sum.SpinVerdicts {
			fmt.Fprintf(e.stdout, "adapter %s (native+spin, diagnostic) %s\n", spec.Name, v.Line())
		}
		if sum.Tokens != "" {
			fmt.Fprintf(e.stdout, "adapter %s tokens: %s\n", spec.Name, sum.Tokens)
		}
		fmt.Fprintf(e.stdout, "adapter %s: %s\n", spec.Name, dir)
	}
	switch {
	case errors.Is(err, adapter.ErrNoRuns):
		return withCode(ExitRunsFailed, err)
	case err != nil:
		return err
	case !sum.Within:
		return withCode(ExitOutsideTolerance, fmt.Errorf("adapter %s: runner/native outside ±%g%%", spec.Name, c.Float64("tolerance")*100))
	}
	return nil
}

// newAdapterDir makes root/<timestamp>-name (or -2, -3… when it exists).
func newAdapterDir(root, name string) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(root, time.Now().UTC().Format("20060102-150405")+"-"+name)
	for i := 1; i <= 1000; i++ {
		dir := base
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return dir, err
	}
	return "", fmt.Errorf("adapter: %s and 999 numbered ones exist", base)
}

// adapterConfig is the runner side's benchmark config: one engine, one case (the observer check's too).
func adapterConfig(name string, p adapter.Params, opts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nmodel: %q\ndevice: %q\ndtype: %q\nseed: %d\nwarmup: %d\niterations: %d\nlaunches: 1\n",
		name, p.Model, p.Device, p.DType, p.Seed, p.Warmup, p.Iterations)
	fmt.Fprintf(&b, "engines:\n  - name: %s\n", p.Engine)
	if p.Threads > 0 {
		fmt.Fprintf(&b, "    threads: %d\n", p.Threads)
	}
	if len(opts) > 0 {
		b.WriteString("    options:\n")
		for _, k := range slices.Sorted(maps.Keys(opts)) {
			fmt.Fprintf(&b, "      %s: %q\n", k, opts[k])
		}
	}
	fmt.Fprintf(&b, "cases:\n  - {name: %s, prompt_len: %d, max_new_tokens: %d}\n", p.Case, p.PromptLen, p.NewTokens)
	b.WriteString("timeouts: {start: 15m, stall: 5m, total: 30m}\n")
	return b.String()
}

// launchRecords reads the records of the one results directory under out.
func launchRecords(out string) []results.Record {
	ents, _ := os.ReadDir(out)
	for _, d := range ents {
		if d.IsDir() {
			recs, _, _ := results.ReadRuns(filepath.Join(out, d.Name(), results.RunsFile))
			return recs
		}
	}
	return nil
}

// runnerIterations reads the launch's iterations from the one results
// directory under out; a failed launch's error comes with its reason.
func runnerIterations(out string, runErr error) ([]adapter.Iteration, error) {
	return iterationsOf(launchRecords(out), out, runErr)
}

// iterationsOf are the iterations of a launch's records (launchRecords).
func iterationsOf(recs []results.Record, out string, runErr error) ([]adapter.Iteration, error) {
	var its []adapter.Iteration
	for _, r := range recs {
		if r.Status != results.StatusOK {
			return nil, fmt.Errorf("runner launch failed: %s", r.Error)
		}
		for _, it := range r.Iterations {
			a := adapter.Iteration{Warmup: it.Raw.Warmup, DecodeTokS: it.Metrics.DecodeTPS, TTFTMs: float64(it.Metrics.TTFTNs) / 1e6}
			if len(it.Raw.OutputTokens) > 0 {
				a.FirstIDs = it.Raw.OutputTokens[0][:min(8, len(it.Raw.OutputTokens[0]))]
			}
			its = append(its, a)
		}
	}
	if runErr != nil && len(its) == 0 {
		return nil, fmt.Errorf("runner bench: %w (log: %s.log)", runErr, out)
	}
	return its, nil
}
