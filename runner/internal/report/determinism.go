package report

import (
	"fmt"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// determinismHeading introduces a case's determinism lines.
const determinismHeading = "Greedy output determinism (token ids: each iteration against its launch's first timed iteration, " +
	"launches against each other, each batch row against row 0):"

// determinismNote says what the token ids cannot show, and what would.
// bench.finishProfile keeps each profiled launch's profile.Launch (the top
// kernels of each phase by time, short names, no launch configurations) in
// runs.jsonl; --profile-keep keeps the activity files with every name.
const determinismNote = "Token ids show where outputs part, not which kernels make them part: a `--profile kernels` run keeps each " +
	"profiled launch's top 8 kernels by time, by name, in runs.jsonl (every kernel name with `--profile-keep`), but not their " +
	"launch configurations — enough to see a different kernel between launches, not a different tuning of one kernel. Engines that " +
	"report the configurations their tuned kernels settled on (loaded.settings.kernel_configs: pytorch compiled on cuda) show that too, " +
	"in the lines above."

// determinismLines are a case's determinism findings in plain words, one per
// engine whose greedy outputs differ somewhere; none when all agree.
func determinismLines(c analysis.Case) []string {
	var out []string
	for _, r := range c.Results {
		switch d := r.Determinism; {
		case d != nil:
			if l := determinismLine(r.Engine, d); l != "" {
				out = append(out, l)
			}
		case !r.Deterministic: // a summary from before the breakdown
			out = append(out, fmt.Sprintf("%s: greedy outputs differ between iterations or launches (this summary does not say which; `runner report` re-analyses it)", r.Engine))
		}
	}
	return out
}

// determinismLine says what d proves and what it suggests; "" when nothing
// differs.
func determinismLine(engine string, d *analysis.Determinism) string {
	if d.Consistent() {
		return ""
	}
	fd := d.FirstDivergence
	distinct := fmt.Sprintf("%d distinct outputs of %d", d.Distinct, d.Outputs)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: greedy outputs ", engine)
	switch d.WithinLaunch {
	case analysis.Identical:
		fmt.Fprintf(&b, "identical within every launch (%s in %s", plural(d.Iterations, "iteration"), plural(d.Launches, "launch"))
		if d.Warmups > 0 {
			b.WriteString(", warm-ups included")
		}
		if d.BatchRows == analysis.Identical {
			fmt.Fprintf(&b, ", all %d rows of each batch alike", d.Rows)
		}
		b.WriteString(")")
		if d.BetweenLaunches == analysis.Differ {
			fmt.Fprintf(&b, " but differ between launches (%s; %s)", distinct, agreeOn(fd.BetweenLaunches, d.Tokens))
		}
	case analysis.Differ:
		w := fd.WithinLaunch
		fmt.Fprintf(&b, "differ between iterations of one launch (%d of %d against their launch's first timed iteration; %s; %s)",
			w.Differ, w.Compared, distinct, agreeOn(w, d.Tokens))
	default: // one iteration per launch
		if d.BetweenLaunches == analysis.Differ {
			fmt.Fprintf(&b, "differ between launches (one iteration each; %s; %s)", distinct, agreeOn(fd.BetweenLaunches, d.Tokens))
		}
	}
	if r := fd.BatchRows; r != nil {
		if d.WithinLaunch == analysis.Identical {
			b.WriteString(", and rows of one batch differ")
		} else {
			b.WriteString(" and between rows of one batch")
		}
		fmt.Fprintf(&b, ", every row the same prompt (%d of %d rows against row 0; %s)", r.Differ, r.Compared, agreeOn(r, d.Tokens))
	} else if d.BatchRows == analysis.Identical && d.WithinLaunch != analysis.Identical {
		fmt.Fprintf(&b, ", all %d rows of each batch alike", d.Rows)
	}
	b.WriteString(" — " + determinismMeaning(d))
	if k := kernelConfigText(d.KernelConfigs); k != "" {
		b.WriteString("; " + k)
	}
	return b.String()
}

// kernelConfigText says what the engine-reported kernel configurations show,
// "" when the engine reports none.
func kernelConfigText(k *analysis.KernelConfigs) string {
	switch {
	case k == nil:
		return ""
	case k.Launches < 2:
		return fmt.Sprintf("kernel configurations reported by %s only", plural(k.Launches, "launch"))
	case len(k.Differ) == 0:
		return fmt.Sprintf("every launch settled on the same configuration for all %d tuned kernels, so their tuning does not explain a difference between launches", k.Kernels)
	}
	names := k.Differ
	more := ""
	if len(names) > 4 {
		names, more = names[:4], fmt.Sprintf(" and %d more", len(k.Differ)-4)
	}
	return fmt.Sprintf("the launches settled on different configurations for %d of %d tuned kernels (`%s`%s): kernels tuned per process, shown",
		len(k.Differ), k.Kernels, strings.Join(names, "`, `"), more)
}

// determinismMeaning is what the comparisons prove about the cause, and what
// they suggest.
func determinismMeaning(d *analysis.Determinism) string {
	rows := d.BatchRows == analysis.Differ
	switch d.WithinLaunch {
	case analysis.Differ:
		if rows {
			return "rows of one batch run one prompt in one step, so state carried between iterations does not explain this; " +
				"it suggests run-to-run nondeterministic kernels"
		}
		s := "state carried between iterations or run-to-run nondeterministic kernels; the token ids cannot tell which"
		if d.Rows < 2 {
			s += " (the rows of a batched case, one prompt each, can show nondeterminism inside one step)"
		}
		return s
	case analysis.Identical:
		var s []string
		if d.BetweenLaunches == analysis.Differ {
			s = append(s, "so no state carried between iterations changes the output; it suggests kernels chosen per process "+
				"(compilation, autotuning or library heuristics), not nondeterminism inside a process")
		}
		if rows {
			s = append(s, "rows of one batch run one prompt in one step while every iteration repeats row 0: this suggests "+
				"batch-position-dependent numerics (arithmetic that depends on a row's place in the batch)")
		}
		return strings.Join(s, "; ")
	}
	s := "with one iteration per launch the token ids cannot tell kernels chosen per process from state or nondeterministic kernels"
	if rows {
		s += "; rows of one batch (one prompt, one step) differ, which state carried between iterations does not explain"
	}
	return s
}

// agreeOn says how many leading tokens the differing pairs agree on.
func agreeOn(v *analysis.Divergence, tokens int) string {
	span := fmt.Sprint(v.Min)
	if v.Max != v.Min {
		span = fmt.Sprintf("%d–%d", v.Min, v.Max)
	}
	return fmt.Sprintf("the first %s of %d tokens agree", span, tokens)
}

// plural is "1 launch", "3 launches", "2 iterations".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "ch") {
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// codeMarkdown turns `…` pairs of already escaped text into <code> elements.
func codeMarkdown(s string) string {
	parts := strings.Split(s, "`")
	if len(parts)%2 == 0 { // an unpaired backtick: leave the text alone
		return s
	}
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 {
			p = "<code>" + p + "</code>"
		}
		b.WriteString(p)
	}
	return b.String()
}
