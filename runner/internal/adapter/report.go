package adapter

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Report is report.md: the workload, the runs per round, the verdicts and
// how they were computed.
func Report(s *Summary) string {
	var b strings.Builder
	p := s.Params
	fmt.Fprintf(&b, "# Adapter overhead: %s\n\n", s.Engine)
	fmt.Fprintf(&b, "%s's own decode loop (%s, no Go, no protocol) against `runner bench` launches of the same engine, "+
		"weights and prompt, in rounds of one native run and one runner launch (native first in odd rounds, the runner first in even ones) on one device (%s, %s). Case %s: prompt %d, "+
		"%d new tokens, %d warm-up + %d timed iterations per run, rounds: %d; started %s.\n\n",
		s.Engine, s.Tool, p.Device, p.DType, p.Case, p.PromptLen, p.NewTokens, p.Warmup, p.Iterations, s.Rounds,
		s.StartedAt.Format("2006-01-02 15:04:05 UTC"))
	card := s.Card
	if card == "" {
		card = "no GPU record (NVML absent: a CPU run)"
	}
	fmt.Fprintf(&b, "Card: %s. Engine library: %s. Runner commit: %s.\n\n", card, orDash(s.Library), orDash(s.Commit))
	fmt.Fprintf(&b, "Model: `%s`. Native command: `%s`.\n\n", p.Model, s.Command)
	b.WriteString("## Verdicts\n\n")
	for _, v := range s.Verdicts {
		fmt.Fprintf(&b, "- %s\n", v.Line())
		for _, w := range v.Warnings {
			fmt.Fprintf(&b, "  - warning: %s\n", w)
		}
	}
	if len(s.SpinVerdicts) > 0 {
		b.WriteString("\nDiagnostic, not gating: the native loop with one more CPU kept busy (native+spin) against the runner:\n\n")
		for _, v := range s.SpinVerdicts {
			fmt.Fprintf(&b, "- %s\n", v.Line())
		}
	}
	word := "every metric within"
	if !s.Within {
		word = "NOT within"
	}
	fmt.Fprintf(&b, "\nResult: %s ±%s.\n\n", word, pct(s.Tolerance))
	if s.Tokens != "" {
		fmt.Fprintf(&b, "Tokens: %s.\n\n", s.Tokens)
	}
	b.WriteString("## Runs\n\n| round | side | median decode tok/s | median TTFT ms | timed iterations | seconds | output |\n|---|---|---|---|---|---|---|\n")
	for _, r := range s.Runs {
		var d, t []float64
		for _, it := range r.Iterations {
			d = append(d, it.DecodeTokS)
			if it.TTFTMs > 0 {
				t = append(t, it.TTFTMs)
			}
		}
		dec, ttft := fmt.Sprintf("%.2f", median(d)), "–"
		if len(t) > 0 {
			ttft = fmt.Sprintf("%.2f", median(t))
		}
		if r.Error != "" {
			dec = "FAILED: " + strings.ReplaceAll(firstLine(r.Error), "|", "\\|")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %.1f | `%s` |\n", r.Round, r.Side, dec, ttft, len(r.Iterations), r.Seconds, r.Path)
	}
	b.WriteString("\n## Method\n\n")
	b.WriteString("- Ratio = runner / native. Each run (a native process or a runner launch, both fresh processes) is summarised by the " +
		"median of its timed iterations; a side's figure is the geometric mean of its run medians.\n" +
		"- From 3 complete rounds the verdict is paired by round: the ratio is the geometric mean of each round's runner/native " +
		"ratio of run medians, its 95% CI the Student t interval of their logs. The two runs of a round sit next to each other and " +
		"the order flips each round, so a drift over the check (a card or host warming up) cancels instead of widening the CI.\n" +
		"- With fewer rounds, and as a second figure, the unpaired 95% CI is a hierarchical bootstrap (resample runs, then " +
		"iterations within each): iterations inside one process are not independent and run-to-run variance dominates on a GPU, " +
		"so a CI over pooled iterations would be too narrow. With 2 rounds it is wide; raise --rounds to resolve a ratio near the " +
		"edge. The pooled-iteration ratio is descriptive.\n" +
		"- Within = |ratio − 1| ≤ tolerance (the exit code rests on it); a CI that crosses the band's edge is flagged.\n" +
		"- Decode tok/s = (N − 1) / (last token − first token); TTFT = first token − iteration start, on both sides.\n")
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return b.String()
}
