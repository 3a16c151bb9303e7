package observer

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// environment fills the card and commit from the launches' environment.json files.
func environment(s *Summary, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "r*-*", "*", results.EnvFile))
	s.Card, _, s.Commit = adapter.LaunchEnvironment(files)
}

// Label names a mode's side in verdict lines.
func Label(mode string) string {
	switch {
	case mode == Off:
		return "sampler off"
	case mode == "default":
		return "sampler (defaults)"
	case strings.HasPrefix(mode, "p"):
		return "sampler + power every " + mode[1:]
	}
	return "sampler every " + mode
}

// Report is report.md: the workload, each launch, each mode's verdicts against off and how they were made.
func Report(s *Summary) string {
	var b strings.Builder
	p := s.Params
	fmt.Fprintf(&b, "# Observer check: %s\n\n", p.Engine)
	fmt.Fprintf(&b, "Does the runner's NVML sampler change what it measures? `runner bench` launches of %s (one engine process "+
		"each) with the sampler off and in each mode below, %d rounds, the order rotated every round (a Latin square); each "+
		"mode's launch medians are compared with the same round's launch with the sampler off. Device %s, %s; case %s, "+
		"%d warm-up + %d timed iterations per launch; model `%s`; started %s.\n\n",
		p.Engine, s.Rounds, p.Device, p.DType, p.Case, p.Warmup, p.Iterations, p.Model, s.StartedAt.Format("2006-01-02 15:04:05 UTC"))
	card := s.Card
	if card == "" {
		card = "no GPU record (NVML absent: a CPU run, where every mode samples nothing)"
	}
	commit := s.Commit
	if commit == "" {
		commit = "–"
	}
	fmt.Fprintf(&b, "Card: %s. Runner commit: %s.\n\n", card, commit)
	if len(s.Launches) > 0 && s.Launches[0].Mode == PrimeMode {
		b.WriteString("Round 0 (`prime`): one launch with the sampler off before the rounds, judged nowhere — a machine's first " +
			"process reads the model from disk and warms the driver's caches, which would otherwise fall on round 1's first mode.\n\n")
	}
	b.WriteString("| mode | runner flags |\n|---|---|\n")
	for _, m := range s.Modes {
		fmt.Fprintf(&b, "| %s | `%s` |\n", m.Name, strings.Join(m.Flags, " "))
	}
	b.WriteString("\n## Verdicts (mode / off; below 1 for decode tok/s, above 1 for TTFT: the sampler slows the engine)\n\n")
	for _, r := range s.Results {
		busy := "no sampler record"
		if r.SamplerBusyPct != nil {
			busy = fmt.Sprintf("sampler busy %.1f%% of each launch (median)", *r.SamplerBusyPct)
		}
		fmt.Fprintf(&b, "### %s (%s)\n\n", r.Mode, busy)
		for _, v := range r.Verdicts {
			fmt.Fprintf(&b, "- %s\n", v.LineAs(r.Mode, Off))
			for _, w := range v.Warnings {
				fmt.Fprintf(&b, "  - warning: %s\n", w)
			}
		}
		b.WriteString("\n")
	}
	word := "no effect outside"
	if !s.Within {
		word = "NOT every mode within"
	}
	fmt.Fprintf(&b, "Result: %s ±%g%%.\n\n", word, s.Tolerance*100)
	b.WriteString("## Launches\n\n| round | mode | median decode tok/s | median TTFT ms | sampler busy % | seconds | path |\n|---|---|---|---|---|---|---|\n")
	for _, r := range s.Launches {
		if r.Error != "" {
			fmt.Fprintf(&b, "| %d | %s | FAILED: %s | | | %.1f | `%s` |\n", r.Round, r.Mode, strings.ReplaceAll(firstLine(r.Error), "|", "\\|"), r.Seconds, r.Path)
			continue
		}
		busy := "–"
		if r.SamplerBusyPct != nil {
			busy = fmt.Sprintf("%.1f", *r.SamplerBusyPct)
		}
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.3f | %s | %.1f | `%s` |\n", r.Round, r.Mode, median(values(r, adapter.MetricDecode)),
			median(values(r, adapter.MetricTTFT)), busy, r.Seconds, r.Path)
	}
	b.WriteString("\nHow: each launch's figure is the median of its timed iterations. With 3 or more complete rounds the ratio and its " +
		"95% CI come from the rounds' paired log ratios (Student t, `stats.PairedRatio`), so a drift of the card or host over " +
		"the check cancels; with fewer, from a hierarchical bootstrap over launches, then iterations (`stats.Compare`). " +
		"\"within ±x%\" says the ratio is; the CI says whether the rounds were enough to tell.\n")
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
