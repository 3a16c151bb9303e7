package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/engine"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
)

func enginesCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "engines",
		Usage: "list the engine binaries found and what each reports in `info`",
		Flags: []ucli.Flag{binDirFlag(e), &ucli.BoolFlag{Name: "json", Usage: "print the info objects as JSON"}},
		Action: func(c *ucli.Context) error {
			binDir := c.String("bin-dir")
			all := map[string]any{}
			for _, name := range engine.KnownNames() {
				path, err := e.findEngine(name, binDir, c.IsSet("bin-dir"))
				if err != nil {
					if !c.Bool("json") {
						fmt.Fprintf(e.stdout, "%-10s not built (%s)\n", name, engine.Known[name])
					}
					continue
				}
				info, _, err := spawn.Info(c.Context, path, e.environ, time.Minute)
				if err != nil {
					fmt.Fprintf(e.stdout, "%-10s %s: BROKEN: %v\n", name, path, err)
					continue
				}
				all[name] = info
				if c.Bool("json") {
					continue
				}
				var opts []string
				for k := range info.Options {
					opts = append(opts, k)
				}
				sort.Strings(opts)
				fmt.Fprintf(e.stdout, "%-10s %s — %s %s; devices %s; dtypes %s; options [%s]; max batch %d\n",
					name, path, info.Library, info.LibraryVersion, strings.Join(info.Devices, ","), strings.Join(info.DTypes, ","),
					strings.Join(opts, ","), info.Capabilities.MaxBatch)
			}
			if c.Bool("json") {
				b, _ := json.MarshalIndent(all, "", "  ")
				fmt.Fprintf(e.stdout, "%s\n", b)
			}
			return nil
		},
	}
}

func modelsCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "models",
		Usage: "model directories",
		Subcommands: []*ucli.Command{{
			Name:  "synth",
			Usage: "write a deterministic random-weight Llama checkpoint at a standard shape",
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "shape", Required: true, Usage: "one of " + strings.Join(synth.ShapeNames(), ", ")},
				&ucli.StringFlag{Name: "out", Required: true, Usage: "model `DIR` to create"},
				&ucli.StringFlag{Name: "dtype", Value: "bf16", Usage: "f32, f16 or bf16"},
				&ucli.Uint64Flag{Name: "seed", Value: 1},
				&ucli.BoolFlag{Name: "overwrite", Usage: "replace an existing model directory"},
			},
			Action: func(c *ucli.Context) error {
				if _, ok := synth.Shapes[c.String("shape")]; !ok {
					return usageError("--shape %q: want one of %s", c.String("shape"), strings.Join(synth.ShapeNames(), ", "))
				}
				dt, err := modelcfg.ParseDType(c.String("dtype"))
				if err != nil {
					return usageError("--dtype: %v", err)
				}
				res, err := synth.Write(c.Context, synth.Options{
					Shape: c.String("shape"), Out: c.String("out"), DType: dt, Seed: c.Uint64("seed"),
					Overwrite: c.Bool("overwrite"), Progress: e.stderr,
				})
				if err != nil {
					return err
				}
				modelcfg.RememberHash(res.Dir, modelcfg.HashCachePath(e.getenv), res.Hash) // the first benchmark need not re-read it
				secs := res.Duration.Seconds()
				fmt.Fprintf(e.stdout, "%s: %s %s, %d params, %.2f GB in %.1fs (%.2f GB/s), %s\n", res.Dir, c.String("shape"), c.String("dtype"),
					res.Params, float64(res.Bytes)/1e9, secs, float64(res.Bytes)/1e9/max(secs, 1e-9), res.Hash.Sum)
				return nil
			},
		}, convertCommand(e), importCommand(e)},
	}
}

func compareCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "compare",
		Usage:     "compare two results (directories or summary.json files): what changed and whether it is significant",
		ArgsUsage: "A B",
		Flags:     []ucli.Flag{&ucli.Float64Flag{Name: "alpha", Value: 0.05}, equivalenceFlag()},
		Action: func(c *ucli.Context) error {
			if c.Args().Len() != 2 {
				return usageError("compare: want two results (A B)")
			}
			a, err := readSummary(c.Args().Get(0))
			if err != nil {
				return err
			}
			b, err := readSummary(c.Args().Get(1))
			if err != nil {
				return err
			}
			margin := 0.0
			if c.IsSet("equivalence") {
				if margin, err = parseMargin(c.String("equivalence")); err != nil {
					return err
				}
			}
			return compareSummaries(e, a, b, c.Float64("alpha"), margin)
		},
	}
}

func readSummary(p string) (*analysis.Summary, error) {
	dir, name := p, results.SummaryFile
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		dir, name = filepath.Dir(p), filepath.Base(p)
	}
	var s analysis.Summary
	if err := results.ReadJSON(dir, name, &s); err != nil {
		return nil, err
	}
	if s.Schema != analysis.Schema {
		return nil, fmt.Errorf("%s: summary schema %d, this runner reads %d (re-analyse it with `runner report DIR`)", p, s.Schema, analysis.Schema)
	}
	return &s, nil
}

type pair struct {
	caseName, engine, metric string
	a, b                     analysis.Stat
	cmp                      stats.Comparison
}

func compareSummaries(e *env, a, b *analysis.Summary, alpha, margin float64) error {
	w := e.stdout
	fmt.Fprintf(w, "# compare %s (A) → %s (B)\n\n", a.Name, b.Name)
	diffs := envDiff(a, b)
	if len(diffs) == 0 {
		fmt.Fprintf(w, "Environment: same GPU, model, dtype and engine versions.\n\n")
	} else {
		fmt.Fprintf(w, "Environment changes:\n")
		for _, d := range diffs {
			fmt.Fprintf(w, "- %s\n", d)
		}
		fmt.Fprintln(w)
	}
	var pairs []pair
	for _, ca := range a.Cases {
		cb := b.Case(ca.Name)
		if cb == nil {
			continue
		}
		for _, ra := range ca.Results {
			rb := cb.Result(ra.Engine)
			if rb == nil {
				continue
			}
			for _, key := range analysis.Compared {
				sa, sb := ra.Metrics[key], rb.Metrics[key]
				if len(sa.Samples) == 0 || len(sb.Samples) == 0 {
					continue
				}
				cmp := stats.Compare(sa.Groups(), sb.Groups(), stats.CompareOptions{Alpha: alpha, Resamples: 2000, Seed: 1, Margin: margin})
				pairs = append(pairs, pair{ca.Name, ra.Engine, key, sa, sb, cmp})
			}
		}
	}
	if len(pairs) == 0 {
		return fmt.Errorf("compare: no case × engine in common between %s and %s", a.Name, b.Name)
	}
	family := make([]analysis.Keyed, len(pairs))
	for i, p := range pairs {
		family[i] = analysis.Keyed{Case: p.caseName, Engine: p.engine, Metric: p.metric, C: &pairs[i].cmp}
	}
	analysis.AdjustHolm(family)
	fmt.Fprintf(w, "Launch-level: A and B are means of launch medians, B/A their ratio with a hierarchical bootstrap CI, p a Welch test on launch medians.\n\n")
	head, rule := "", ""
	if margin > 0 {
		fmt.Fprintf(w, "Equivalence: two one-sided Welch tests (TOST) on the log launch medians against ±ln(1+%g), Holm-corrected as a family of their own.\n\n", margin)
		head, rule = fmt.Sprintf(" within ±%g%%? (TOST p, Holm) |", 100*margin), "---|"
	}
	fmt.Fprintf(w, "| case | engine | metric | A | B | B/A [95%% CI] | launches B vs A | p (Holm) | Cliff's δ (iterations) | verdict |%s\n|---|---|---|---|---|---|---|---|---|---|%s\n", head, rule)
	for _, p := range pairs {
		eq := ""
		if margin > 0 {
			switch q := p.cmp.Equivalence; {
			case q == nil:
				eq = " — |"
			case q.Equivalent:
				eq = fmt.Sprintf(" yes (%.3g) |", q.PAdj)
			default:
				eq = fmt.Sprintf(" not shown (%.3g) |", q.PAdj)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.4g | %.4g | %.3f [%.3f, %.3f] | %d vs %d | %.3g | %+.2f | %s |%s\n", p.caseName, p.engine, report.MetricName(p.metric),
			p.cmp.EstimateA, p.cmp.EstimateB, p.cmp.Ratio, p.cmp.RatioLo, p.cmp.RatioHi, p.cmp.LaunchesB, p.cmp.LaunchesA, p.cmp.PAdj, p.cmp.CliffsDelta, p.cmp.Verdict, eq)
	}
	return nil
}

func envDiff(a, b *analysis.Summary) []string {
	var out []string
	diff := func(what, x, y string) {
		if x != y {
			out = append(out, fmt.Sprintf("%s: %q → %q", what, x, y))
		}
	}
	var ga, gb map[string]any
	_ = json.Unmarshal(a.Env.GPU, &ga)
	_ = json.Unmarshal(b.Env.GPU, &gb)
	str := func(v any) string { // absent (no GPU record) is "", not "<nil>"
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	for _, k := range []string{"name", "uuid", "driver_version", "cuda_driver_version"} {
		diff("GPU "+k, str(ga[k]), str(gb[k]))
	}
	diff("model hash", a.Env.Model.Hash, b.Env.Model.Hash)
	diff("dtype", a.Request.DType, b.Request.DType)
	diff("device", a.Request.Device, b.Request.Device)
	diff("git commit", a.Env.GitCommit, b.Env.GitCommit)
	diff("host", a.Env.Host, b.Env.Host)
	diff("cpuidle driver", a.Env.CPUPower.IdleDriver, b.Env.CPUPower.IdleDriver)
	diff("cpufreq governor", a.Env.CPUPower.FreqGovernor, b.Env.CPUPower.FreqGovernor)
	var labels []string
	for l := range a.Env.Engines {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	for _, l := range labels {
		ia := a.Env.Engines[l]
		ib, ok := b.Env.Engines[l]
		if !ok {
			continue
		}
		diff(l+" library version", ia.LibraryVersion, ib.LibraryVersion)
		var keys []string
		for k := range ia.Versions {
			keys = append(keys, k)
		}
		for k := range ib.Versions {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			diff(l+" "+k, ia.Versions[k], ib.Versions[k])
		}
	}
	return out
}
