package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/observer"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

func observerCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "observer",
		Usage:     "observer-effect check: does the runner's GPU sampling change what it measures? the engine with the sampler off and on, interleaved",
		ArgsUsage: "ENGINE[:key=value...]",
		Description: "Each round launches the engine once per mode (`runner bench`, one fresh process each), the order rotated\n" +
			"every round, and compares each mode's launch medians of decode tok/s and TTFT with the same round's launch\n" +
			"with the sampler off: ratio mode/off with a 95% CI paired by round (3+ rounds; fewer: a hierarchical bootstrap)\n" +
			"and whether it is within ±tolerance. Modes: off (--no-telemetry), default (the runner's defaults: sampling every\n" +
			telemetry.DefaultInterval.String() + "), DURATION (--telemetry-interval DURATION, e.g. 10ms) and pDURATION (the default sampler\n" +
			"plus --power-interval DURATION, e.g. p10ms). Writes DIR/<timestamp>-observer-ENGINE/: each launch's results,\n" +
			"report.md and observer.json.\n\n" +
			"Exit status: 0 when every mode is within tolerance, 4 when one is outside it, 3 when off or every other mode had\n" +
			"no successful launch, 2 for a usage error.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "model", Required: true, Usage: "model `DIR` (HF layout, e.g. runner models synth --shape tinyllama-1.1b --dtype bf16)"},
			&ucli.StringFlag{Name: "modes", Value: "off,default", Usage: "comma-separated `MODES`: off and the sampling settings to test (default, 10ms, p10ms …)"},
			&ucli.StringFlag{Name: "device", Value: "cuda:0", Usage: "device (cpu, cuda:N)"},
			&ucli.StringFlag{Name: "dtype", Value: "bf16", Usage: "dtype (f32, f16, bf16)"},
			&ucli.IntFlag{Name: "rounds", Value: 3, Usage: "rounds (one launch per mode each)"},
			&ucli.IntFlag{Name: "prompt-len", Value: 128, Usage: "prompt length (synthetic prompt ids for --seed)"},
			&ucli.IntFlag{Name: "new-tokens", Value: 256, Usage: "new tokens per iteration"},
			&ucli.IntFlag{Name: "warmup", Value: 2, Usage: "warm-up iterations per launch"},
			&ucli.IntFlag{Name: "iterations", Value: 5, Usage: "timed iterations per launch"},
			&ucli.Float64Flag{Name: "tolerance", Value: 0.03, Usage: "allowed |mode/off − 1|"},
			&ucli.BoolFlag{Name: "prime", Value: true, Usage: "one launch with the sampler off before round 1, judged nowhere (a machine's first process reads the model from disk); --prime=false skips it"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "prompt seed"},
			binDirFlag(e),
			&ucli.StringFlag{Name: "out", Value: "results", Usage: "results root `DIR`; the check writes DIR/<timestamp>-observer-ENGINE/"},
			&ucli.DurationFlag{Name: "idle-timeout", Value: 10 * time.Second, Usage: "longest wait for the GPU to return to rest before a launch"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines, only the verdicts"},
		},
		Action: func(c *ucli.Context) error { return observerCmd(c, e) },
	}
}

func observerCmd(c *ucli.Context, e *env) error {
	if c.Args().Len() != 1 {
		return usageError("observer: want one ENGINE")
	}
	specs, err := config.ParseEngines(c.Args().First())
	if err != nil || len(specs) != 1 {
		return usageError("observer: engine %q: want ENGINE or ENGINE:key=value", c.Args().First())
	}
	spec := specs[0]
	modes, err := observer.ParseModes(c.String("modes"))
	if err != nil {
		return usageError("observer: --modes %q: %v", c.String("modes"), err)
	}
	if c.Int("rounds") < 1 || c.Int("iterations") < 1 || c.Int("warmup") < 0 || c.Int("new-tokens") < 2 || c.Int("prompt-len") < 1 {
		return usageError("observer: need --rounds ≥ 1, --iterations ≥ 1, --warmup ≥ 0, --new-tokens ≥ 2, --prompt-len ≥ 1")
	}
	if t := c.Float64("tolerance"); !(t > 0 && t < 1) {
		return usageError("observer: --tolerance %g: want a fraction in (0, 1), e.g. 0.03", t)
	}
	model := c.String("model")
	if _, err := os.Stat(filepath.Join(model, "config.json")); err != nil {
		return usageError("observer: model %s has no config.json (make one: runner models synth --shape tinyllama-1.1b --dtype bf16 --out %s)", model, model)
	}
	p := adapter.Params{
		Engine: spec.Name, BinDir: c.String("bin-dir"), Model: model, Device: c.String("device"), DType: c.String("dtype"),
		PromptLen: c.Int("prompt-len"), NewTokens: c.Int("new-tokens"), Warmup: c.Int("warmup"), Iterations: c.Int("iterations"),
		Seed: c.Uint64("seed"), Threads: spec.Threads, Options: spec.Options,
	}
	p.Case = fmt.Sprintf("p%d-n%d", p.PromptLen, p.NewTokens)
	enginePath, err := e.findEngine(spec.Name, p.BinDir, c.IsSet("bin-dir"))
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("observer: %w", err))
	}
	if filepath.Base(enginePath) == spec.Name {
		p.BinDir = filepath.Dir(enginePath)
	}
	if err := checkGPUPresent(p.Device); err != nil {
		return err
	}
	dir, err := newAdapterDir(c.String("out"), "observer-"+safeName(spec.Name))
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "runner.yaml")
	if err := os.WriteFile(cfgPath, []byte(adapterConfig("observer-"+p.Engine, p, spec.Options)), 0o644); err != nil {
		return err
	}
	progress := e.stderr
	if c.Bool("quiet") {
		progress = nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "observer: %s, modes %s, %d rounds, into %s\n", spec.Name, c.String("modes"), c.Int("rounds"), dir)
	}
	launch := func(ctx context.Context, round int, m observer.Mode, out string) (observer.Launch, error) {
		log, err := os.Create(out + ".log")
		if err != nil {
			return observer.Launch{}, err
		}
		defer log.Close()
		args := append([]string{"runner", "bench", "--config", cfgPath, "--launches", "1", "--out", out, "-q",
			"--idle-timeout", c.Duration("idle-timeout").String(), "--bin-dir", p.BinDir}, m.Flags...)
		sub := *e
		sub.stdout, sub.stderr, sub.args = log, log, args
		runErr := newApp(&sub).RunContext(ctx, args)
		recs := launchRecords(out)
		its, err := iterationsOf(recs, out, runErr)
		return observer.Launch{Iterations: its, SamplerBusyPct: samplerBusy(recs)}, err
	}
	params := observer.Params{Engine: c.Args().First(), Options: spec.Options, Model: model, Device: p.Device, DType: p.DType,
		Case: p.Case, Warmup: p.Warmup, Iterations: p.Iterations}
	sum, err := observer.Run(c.Context, observer.Options{Modes: modes, Rounds: c.Int("rounds"), Tolerance: c.Float64("tolerance"), Prime: c.Bool("prime"),
		Dir: dir, Progress: progress, Params: params}, launch)
	if sum != nil {
		for _, r := range sum.Results {
			for _, v := range r.Verdicts {
				fmt.Fprintf(e.stdout, "observer %s %s\n", spec.Name, v.LineAs(r.Mode, observer.Off))
			}
		}
		fmt.Fprintf(e.stdout, "observer %s: %s\n", spec.Name, dir)
	}
	switch {
	case errors.Is(err, observer.ErrNoLaunches):
		return withCode(ExitRunsFailed, err)
	case err != nil:
		return err
	case !sum.Within:
		return withCode(ExitOutsideTolerance, fmt.Errorf("observer %s: a sampling mode moved a metric outside ±%g%%", spec.Name, c.Float64("tolerance")*100))
	}
	return nil
}

// samplerBusy is the launch's share of time in NVML (its record's telemetry), nil when it was not sampled.
func samplerBusy(recs []results.Record) *float64 {
	for _, r := range recs {
		var t struct {
			Busy *float64 `json:"sampler_busy_pct"`
		}
		if len(r.Telemetry) > 0 && json.Unmarshal(r.Telemetry, &t) == nil && t.Busy != nil {
			return t.Busy
		}
	}
	return nil
}
