// Package report renders a summary as Markdown, CSV and Go benchmark format
// (readable by benchstat). Output is deterministic so golden files pin it.
package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
)

// Markdown writes report.md.
func Markdown(w io.Writer, s *analysis.Summary) error {
	p := &printer{w: w}
	p.f("# %s\n\n", s.Name)
	e := s.Env
	p.f("%s · %s · %s · model `%s` (%s, %s) · %s\n\n", e.CreatedAt.Format("2006-01-02 15:04 UTC"), gpuLine(s), e.CPU,
		e.Model.Dir, short(e.Model.Hash), s.Request.DType, s.Request.Device)
	p.f("Each engine: %d launch(es) × (%d warm-up + %d timed iterations) per case, launches interleaved; baseline **%s**. "+
		"The launch is the unit: figures are the geometric mean of launch medians [95%% CI over launches], verdicts a launch-level test.\n\n",
		launchesOf(s), s.Request.Warmup, s.Request.Iterations, s.Baseline)
	if hs := Headlines(s); len(hs) > 0 {
		p.f("## Verdicts\n\n")
		for _, h := range hs {
			p.f("- %s\n", h.Text)
		}
		p.f("\n")
	}
	for _, c := range s.Cases {
		p.f("## %s — prompt %d, %d new tokens, batch %d\n\n", c.Name, c.Prompt, c.MaxNew, c.Batch)
		p.f("| engine | TTFT ms | TPOT ms | decode tok/s | prefill tok/s | E2E ms | n | outliers | peak alloc MiB |\n")
		p.f("|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range c.Results {
			p.f("| %s | %s |\n", strings.Join(resultCells(r), " | "), mib(r.PeakAllocMiB))
		}
		p.f("\n")
		if l := notRunLine(c); l != "" {
			p.f("%s\n\n", l)
		}
		if len(c.Comparisons) > 0 {
			p.f("| vs %s | metric | ratio [95%% CI] | launches | launch-level p (Holm) | Cliff's δ (iterations) | verdict |\n", s.Baseline)
			p.f("|---|---|---|---|---|---|---|\n")
			for _, cm := range c.Comparisons {
				p.f("| %s |\n", strings.Join(comparisonCells(cm), " | "))
			}
			p.f("\n")
			for _, v := range Verdicts(c) {
				p.f("- %s\n", v)
			}
			p.f("\n")
			if cl := cardLines(c); len(cl) > 0 {
				p.f("Per card (comparisons within each GPU, not Holm-corrected; the verdict above combines them):\n\n")
				for _, l := range cl {
					p.f("- %s\n", l)
				}
				p.f("\n")
			}
		}
		for _, n := range caseNotes(s, c) {
			p.f("%s\n\n", n)
		}
		if lv := varianceLines(c); len(lv) > 0 {
			p.f("Variance components of TPOT (between launches vs within a launch) and the design they recommend:\n\n")
			for _, l := range lv {
				p.f("- %s\n", l)
			}
			p.f("\n")
		}
		if dl := determinismLines(c); len(dl) > 0 {
			p.f("%s\n\n", determinismHeading)
			for _, l := range dl {
				p.f("- %s\n", l)
			}
			p.f("\n%s\n\n", determinismNote)
		}
		if ws := caseWarnings(c); len(ws) > 0 {
			p.f("Warnings:\n")
			for _, w := range ws {
				p.f("- %s\n", w)
			}
			p.f("\n")
		}
	}
	p.f("## Engines\n\n| %s |\n|%s\n", strings.Join(engineHeader, " | "), strings.Repeat("---|", len(engineHeader)))
	for _, row := range engineRows(s) {
		p.f("| %s |\n", strings.Join(row, " | "))
	}
	p.f("\n")
	if l := preparedLine(s); l != "" {
		p.f("%s\n\n", l)
	}
	if l := sharedTuningLine(s); l != "" {
		p.f("%s\n\n", l)
	}
	if l := firstLaunchLine(s); l != "" {
		p.f("%s\n\n", l)
	}
	if hasGPU(s) {
		p.f("## GPU (NVML, median over launches; energy and power over timed iterations)\n\n")
		p.f("| %s |\n|%s\n", strings.Join(gpuHeader, " | "), strings.Repeat("---|", len(gpuHeader)))
		for _, row := range gpuRows(s) {
			p.f("| %s |\n", strings.Join(row, " | "))
		}
		p.f("\n")
	}
	markdownSections(p, s)
	if len(s.Failures) > 0 {
		p.f("## Failed launches\n\n")
		for _, f := range s.Failures {
			p.f("- %s launch %d: %s\n", f.Engine, f.Launch+1, oneLine(f.Error))
		}
		p.f("\n")
	}
	ws := globalWarnings(s)
	if len(ws) > 0 {
		p.f("## Warnings\n\n")
		for _, w := range ws {
			p.f("- %s\n", w)
		}
		p.f("\n")
	}
	profileMarkdown(p, s)
	p.f("## Environment\n\n")
	p.f("- %s\n", hostLine(e))
	if pw := e.CPUPower.String(); pw != "" {
		p.f("- CPU power: %s\n", pw)
	}
	p.f("- GPU: %s\n", gpuLine(s))
	p.f("- runner %s, git %s%s\n", e.GoVersion, short(e.GitCommit), dirty(e.GitDirty))
	p.f("- model %s: %s params, %s weight bytes read per token, hash %s\n", e.Model.Dir, count(e.Model.Params), bytesStr(e.Model.WeightBytesPerToken), e.Model.Hash)
	p.f("- command: `%s`\n\n", strings.Join(e.Command, " "))
	p.f("## Definitions\n\n")
	if s.Equivalence > 0 {
		p.f("- Equivalence (within %s): two one-sided Welch t-tests (TOST) on the log launch medians against ±ln(1+%g), Holm-corrected as a family of their own; \"the same within %s\" = adjusted p < 0.05.\n",
			marginWord(s.Equivalence), s.Equivalence, marginWord(s.Equivalence))
	}
	for _, d := range s.Defs {
		p.f("- %s\n", d)
	}
	return p.err
}

// resultCells are one engine's row of a case table (report.md, report.html):
// engine, TTFT, TPOT, decode, prefill, E2E, n, outliers.
func resultCells(r analysis.Result) []string {
	m := r.Metrics
	return []string{r.Engine, medCI(m["ttft_ms"]), medCI(m["tpot_ms"]), medCI(m["decode_tps"]),
		medCI(m["prefill_tps"]), medCI(m["e2e_ms"]), strconv.Itoa(m["e2e_ms"].N), outliers(m["e2e_ms"])}
}

// comparisonCells are one row of a comparison table: engine, metric, ratio of
// launch-level estimates [hierarchical bootstrap CI], launches, launch-level
// Holm p, Cliff's delta over iterations (magnitude), verdict.
func comparisonCells(cm analysis.Comparison) []string {
	p := pval(cm.PAdj)
	if !cm.HasTest {
		p = "— (needs ≥2 launches)"
	}
	return []string{cm.Engine, MetricName(cm.Metric),
		fmt.Sprintf("%s [%s, %s]", num(cm.Ratio, 3), num(cm.RatioLo, 3), num(cm.RatioHi, 3)),
		fmt.Sprintf("%d vs %d", cm.LaunchesB, cm.LaunchesA), p,
		fmt.Sprintf("%+.2f (%s)", cm.CliffsDelta, cm.Magnitude), string(cm.Verdict)}
}

// Verdicts says each comparison of a case in plain words, e.g. "candle is
// 2.29× slower than pytorch in TPOT [95% CI 1.92–2.31×], launch-level
// p = 0.003 (Holm)" or "candle vs pytorch in TTFT: no significant
// difference (…)".
func Verdicts(c analysis.Case) []string {
	var out []string
	for _, cm := range c.Comparisons {
		out = append(out, Verdict(cm))
	}
	return out
}

// factor turns a significant ratio into words: the factor (≥ 1), "faster" or
// "slower" for the engine against the baseline, and the factor's CI.
func factor(cm analysis.Comparison) (f float64, word string, lo, hi float64) {
	f, lo, hi = cm.Ratio, cm.RatioLo, cm.RatioHi
	if f < 1 {
		f, lo, hi = 1/cm.Ratio, 1/cm.RatioHi, 1/cm.RatioLo
	}
	word = "slower"
	if (cm.Ratio > 1) == higherIsBetter(cm.Metric) {
		word = "faster"
	}
	return f, word, lo, hi
}

// Headline is one line of the verdict summary: one engine against the
// baseline on one case, every metric said once.
type Headline struct {
	// Text is Markdown (significant findings in bold).
	Text string
	// Better counts significant findings in the engine's favour and Worse
	// those against it (colour on a terminal).
	Better, Worse int
}

// Headlines summarise every comparison of the summary, one line per case and
// engine: the significant differences in words, then the metrics with none.
func Headlines(s *analysis.Summary) []Headline {
	var out []Headline
	multi := len(s.Cases) > 1
	for _, c := range s.Cases {
		var engines []string
		for _, cm := range c.Comparisons {
			if !slices.Contains(engines, cm.Engine) {
				engines = append(engines, cm.Engine)
			}
		}
		for _, en := range engines {
			var h Headline
			var sig, none, undecided, same, unshown []string
			margin := ""
			var nA, nB int
			untestable := ""
			for _, cm := range c.Comparisons {
				if cm.Engine != en {
					continue
				}
				if !cm.HasTest {
					untestable = fmt.Sprintf("%s vs %s: no verdict — %d vs %d launches; a launch-level test needs at least 2 per engine", en, s.Baseline, cm.LaunchesB, cm.LaunchesA)
					continue
				}
				if eq := cm.Equivalence; eq != nil && eq.Equivalent && !cm.Significant {
					same, margin = append(same, metricWord(cm.Metric)), marginWord(eq.Margin)
					continue
				}
				if cm.Significant {
					f, word, lo, hi := factor(cm)
					if len(sig) == 0 {
						sig = append(sig, fmt.Sprintf("**%s is %s× %s than %s in %s** [%s–%s×]", en, num(f, 3), word, s.Baseline, metricWord(cm.Metric), num(lo, 3), num(hi, 3)))
					} else {
						sig = append(sig, fmt.Sprintf("**%s× %s in %s** [%s–%s×]", num(f, 3), word, metricWord(cm.Metric), num(lo, 3), num(hi, 3)))
					}
					if (cm.Ratio > 1) == higherIsBetter(cm.Metric) {
						h.Better++
					} else {
						h.Worse++
					}
				} else if undecidedRatio(cm) {
					undecided = append(undecided, fmt.Sprintf("%s %s× [%s–%s×] (p = %s)", metricWord(cm.Metric), num(cm.Ratio, 3), num(cm.RatioLo, 3), num(cm.RatioHi, 3), strings.TrimPrefix(pval(cm.PAdj), "<")))
					nA, nB = cm.LaunchesA, cm.LaunchesB
				} else if eq := cm.Equivalence; eq != nil {
					unshown, margin = append(unshown, metricWord(cm.Metric)), marginWord(eq.Margin)
				} else {
					none = append(none, metricWord(cm.Metric))
				}
			}
			parts := sig
			if len(undecided) > 0 {
				lead := fmt.Sprintf("%s vs %s: ", en, s.Baseline)
				if len(sig) > 0 {
					lead = ""
				}
				parts = append(parts, fmt.Sprintf("%snot significant with %d vs %d launches, too few to decide: %s", lead, nB, nA, strings.Join(undecided, ", ")))
			}
			if len(same) > 0 {
				lead := fmt.Sprintf("%s vs %s: ", en, s.Baseline)
				if len(parts) > 0 {
					lead = ""
				}
				parts = append(parts, fmt.Sprintf("%sthe same within %s in %s (equivalence test)", lead, margin, strings.Join(same, ", ")))
			}
			if len(unshown) > 0 { // "no significant difference" alone would read as "the same"
				lead := fmt.Sprintf("%s vs %s: ", en, s.Baseline)
				if len(parts) > 0 {
					lead = ""
				}
				parts = append(parts, fmt.Sprintf("%sno significant difference, nor shown to be within %s, in %s", lead, margin, strings.Join(unshown, ", ")))
			}
			if len(none) > 0 {
				lead := fmt.Sprintf("%s vs %s: no significant difference in ", en, s.Baseline)
				if len(parts) > 0 {
					lead = "no significant difference in "
				}
				parts = append(parts, lead+strings.Join(none, ", "))
			}
			if len(parts) == 0 {
				parts = []string{untestable}
			}
			h.Text = strings.Join(parts, "; ")
			if multi {
				h.Text = c.Name + ": " + h.Text
			}
			out = append(out, h)
		}
	}
	return out
}

// metricWord names a metric in a sentence: "TPOT", "decode tok/s".
func metricWord(key string) string {
	for _, m := range analysis.Metrics {
		if m.Key == key {
			if m.HigherIsBetter {
				return m.Name + " " + m.Unit
			}
			return m.Name
		}
	}
	return key
}

// Verdict says one comparison in plain words.
func Verdict(cm analysis.Comparison) string {
	name := metricWord(cm.Metric)
	p := "launch-level p " + pvalEq(cm.PAdj) + " (Holm)"
	if cm.Verdict == analysis.CardsDisagree && cm.Blocked != nil {
		return fmt.Sprintf("%s vs %s in %s: the GPUs disagree (Cochran's Q p = %s): no combined verdict, see each card", cm.Engine, cm.Baseline, name, pval(cm.Blocked.QP))
	}
	if !cm.HasTest {
		return fmt.Sprintf("%s vs %s in %s: no verdict possible — %d vs %d launches; a launch-level test needs at least 2 per engine", cm.Engine, cm.Baseline, name, cm.LaunchesB, cm.LaunchesA)
	}
	if !cm.HasRatio {
		return fmt.Sprintf("%s vs %s in %s: no verdict (ratio undefined)", cm.Engine, cm.Baseline, name)
	}
	eq, eqText := cm.Equivalence, ""
	if eq != nil {
		eqText = fmt.Sprintf("; not shown to be within %s (equivalence test p %s, Holm)", marginWord(eq.Margin), pvalEq(eq.PAdj))
		if eq.Equivalent {
			eqText = fmt.Sprintf("; within %s all the same (equivalence test p %s, Holm)", marginWord(eq.Margin), pvalEq(eq.PAdj))
		}
	}
	if !cm.Significant && eq != nil && eq.Equivalent {
		return fmt.Sprintf("%s vs %s in %s: the same within %s (ratio %s [95%% CI %s–%s], equivalence test p %s, Holm; difference %s)", cm.Engine, cm.Baseline, name,
			marginWord(eq.Margin), num(cm.Ratio, 3), num(cm.RatioLo, 3), num(cm.RatioHi, 3), pvalEq(eq.PAdj), p)
	}
	if !cm.Significant && undecidedRatio(cm) {
		return fmt.Sprintf("%s vs %s in %s: not significant with %d vs %d launches, too few to decide (ratio %s [95%% CI %s–%s], %s)%s", cm.Engine, cm.Baseline, name,
			cm.LaunchesB, cm.LaunchesA, num(cm.Ratio, 3), num(cm.RatioLo, 3), num(cm.RatioHi, 3), p, eqText)
	}
	if !cm.Significant {
		return fmt.Sprintf("%s vs %s in %s: no significant difference (ratio %s [95%% CI %s–%s], %s)%s", cm.Engine, cm.Baseline, name,
			num(cm.Ratio, 3), num(cm.RatioLo, 3), num(cm.RatioHi, 3), p, eqText)
	}
	f, word, lo, hi := factor(cm)
	if eq == nil || !eq.Equivalent {
		eqText = "" // a significant difference needs no "not shown to be the same"
	}
	return fmt.Sprintf("**%s is %s× %s than %s in %s** [95%% CI %s–%s×], %s%s", cm.Engine, num(f, 3), word, cm.Baseline, name, num(lo, 3), num(hi, 3), p, eqText)
}

// marginWord is an equivalence margin in words: "±2%".
func marginWord(m float64) string {
	return "±" + strconv.FormatFloat(100*m, 'g', 3, 64) + "%"
}

// pvalEq is a p-value after "p": "= 0.012" or "< 0.001".
func pvalEq(p float64) string {
	if v := pval(p); strings.HasPrefix(v, "<") {
		return "< " + strings.TrimSpace(strings.TrimPrefix(v, "<"))
	}
	return "= " + pval(p)
}

// undecidedRatio is a tested comparison that is not significant although its
// ratio CI excludes 1: the launch-level test, not the data's direction, held
// it back (few launches that vary, Holm over many comparisons). Saying "no
// significant difference" there reads as "the same"; the report says the
// launches were too few instead, with the ratio.
func undecidedRatio(cm analysis.Comparison) bool {
	return cm.HasTest && cm.HasRatio && !cm.Significant && cm.Verdict != analysis.CardsDisagree && analysis.CIExcludesOne(cm.RatioLo, cm.RatioHi)
}

func higherIsBetter(key string) bool {
	for _, m := range analysis.Metrics {
		if m.Key == key {
			return m.HigherIsBetter
		}
	}
	return false
}

// varianceLines are the per-engine variance components of a case with the
// recommended design.
func varianceLines(c analysis.Case) []string {
	var out []string
	for _, r := range c.Results {
		v := r.Launch
		if v.Launches > 1 {
			l := fmt.Sprintf("%s: ICC %.2f — launch-to-launch SD %s ms, within-launch SD %s ms (%d launches)", r.Engine, v.ICC,
				num(math.Sqrt(v.BetweenLaunch), 3), num(math.Sqrt(v.WithinLaunch), 3), v.Launches)
			if d := r.Design; d != nil {
				l += fmt.Sprintf("; for ±%.0f%% (95%%) next time: %d launches × %d timed iterations (a launch costs %s s, an iteration %s s; ~%s)",
					100*d.TargetRel, d.Launches, d.Iterations, num(d.LaunchCostS, 3), num(d.IterationCostS, 3), duration(d.EstimatedS))
				if d.Capped {
					l += ", capped"
				}
				if d.Note != "" {
					l += "; " + d.Note
				}
			}
			out = append(out, l)
		}
	}
	return out
}

// duration prints seconds as "45 s", "12 min" or "3.2 h".
func duration(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.0f s", s)
	case s < 7200:
		return fmt.Sprintf("%.0f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}

// hostLine is the host item of the environment list.
func hostLine(e envinfo.Env) string {
	return fmt.Sprintf("host %s, %s, kernel %s, %d CPUs (%s)", e.Host, e.OS, e.Kernel, e.CPUs, e.CPU)
}

func caseWarnings(c analysis.Case) []string {
	var out []string
	for _, r := range c.Results {
		keys := make([]string, 0, len(r.Metrics))
		for k := range r.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen := map[string]bool{}
		for _, k := range keys {
			for _, w := range r.Metrics[k].Warnings {
				msg := r.Engine + ": " + w
				if !seen[msg] {
					seen[msg] = true
					out = append(out, fmt.Sprintf("%s (%s)", msg, k))
				}
			}
		}
		for _, w := range r.Launch.Warnings {
			out = append(out, r.Engine+": "+w)
		}
	}
	// A caveat shared by several metrics of one pair is said once.
	type key struct{ pair, w string }
	var order []key
	metrics := map[key][]string{}
	for _, cm := range c.Comparisons {
		for _, w := range cm.Warnings {
			k := key{cm.Engine + " vs " + cm.Baseline, w}
			if _, ok := metrics[k]; !ok {
				order = append(order, k)
			}
			metrics[k] = append(metrics[k], cm.Metric)
		}
	}
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s (%s): %s", k.pair, strings.Join(metrics[k], ", "), k.w))
	}
	return out
}

// CSV writes report.csv: one row per engine, case and metric.
func CSV(w io.Writer, s *analysis.Summary) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"case", "engine", "metric", "unit", "n", "median", "median_lo", "median_hi", "mean", "stddev", "p90", "p99", "min", "max", "outliers", "launches", "launch_mean", "launch_lo", "launch_hi", "ratio_vs_baseline", "ratio_lo", "ratio_hi", "p_launch_holm", "cliffs_delta", "verdict"})
	for _, c := range s.Cases {
		for _, r := range c.Results {
			for _, m := range analysis.Metrics {
				st := r.Metrics[m.Key]
				row := []string{c.Name, r.Engine, m.Key, m.Unit, strconv.Itoa(st.N), g(st.Median), g(st.MedianLo), g(st.MedianHi),
					g(st.Mean), g(st.Stddev), g(st.P90), g(st.P99), g(st.Min), g(st.Max), strconv.Itoa(outlierCount(st)),
					strconv.Itoa(st.Launch.Launches), g(st.Launch.Mean), g(st.Launch.Lo), g(st.Launch.Hi)}
				cmpRow := []string{"", "", "", "", "", ""}
				for _, cm := range c.Comparisons {
					if cm.Engine == r.Engine && cm.Metric == m.Key {
						cmpRow = []string{g(cm.Ratio), g(cm.RatioLo), g(cm.RatioHi), g(cm.PAdj), g(cm.CliffsDelta), cm.Verdict}
					}
				}
				_ = cw.Write(append(row, cmpRow...))
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// Bench writes Go benchmark format: one line per timed iteration, so
// `benchstat -col /engine bench.txt` compares engines and
// `benchstat old/bench.txt new/bench.txt` compares runs.
func Bench(w io.Writer, s *analysis.Summary, samples func(engine, caseName string) []BenchSample) error {
	p := &printer{w: w}
	p.f("goos: linux\ngoarch: amd64\ncpu: %s\n", s.Env.CPU)
	if gpu := gpuName(s); gpu != "" {
		p.f("gpu: %s\n", gpu)
	}
	p.f("model: %s\ndtype: %s\n", s.Env.Model.Dir, s.Request.DType)
	for _, c := range s.Cases {
		for _, r := range c.Results {
			for _, b := range samples(r.Engine, c.Name) {
				p.f("Benchmark%s/engine=%s 1 %d ns/op %d ttft-ns %.0f tpot-ns %.2f decode-tok/s\n",
					benchName(c.Name), benchName(r.Engine), b.E2ENs, b.TTFTNs, b.TPOTNs, b.DecodeTPS)
			}
		}
	}
	return p.err
}

// BenchSample is one timed iteration for Bench.
type BenchSample struct {
	E2ENs, TTFTNs int64
	TPOTNs        float64
	DecodeTPS     float64
}

// benchName makes a label a benchmark name part that benchstat keeps whole:
// no spaces, slashes or '=' (they delimit keys), and no trailing "-N", which
// benchstat reads as a GOMAXPROCS suffix ("reference:threads=1" would become
// engine "reference_threads" with -1 and merge with threads=2).
func benchName(s string) string {
	r := strings.NewReplacer(" ", "_", "/", "_", ":", "_", "=", "_")
	s = r.Replace(s)
	if i := strings.LastIndexByte(s, '-'); i >= 0 && i < len(s)-1 && strings.Trim(s[i+1:], "0123456789") == "" {
		s = s[:i] + "_" + s[i+1:]
	}
	return s
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

// medCI prints a metric's figure: the mean of launch medians with its 95%
// CI over launches when there are at least 2 launches, else the median of the
// one launch's iterations with its CI (within that launch only).
func medCI(s analysis.Stat) string {
	if s.N == 0 {
		return "—"
	}
	if l := s.Launch; l.HasCI {
		return fmt.Sprintf("%s [%s, %s]", num(l.Mean, 4), num(l.Lo, 4), num(l.Hi, 4))
	}
	if s.MedianHi > s.MedianLo {
		return fmt.Sprintf("%s [%s, %s]", num(s.Median, 4), num(s.MedianLo, 4), num(s.MedianHi, 4))
	}
	return num(s.Median, 4)
}

// num prints v with sig significant digits, no exponent for everyday values.
// phaseWatts is a phase's mean power; – when no sample fell inside the phase (a prefill shorter than the sampling
// interval: --power-interval resolves it).
func phaseWatts(v float64) string {
	if v <= 0 {
		return "–"
	}
	return num(v, 4)
}

func num(v float64, sig int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	if v == 0 {
		return "0"
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	dec := max(sig-1-mag, 0)
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func g(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func pval(p float64) string {
	switch {
	case math.IsNaN(p):
		return "—"
	case p < 0.001:
		return "<0.001"
	default:
		return strconv.FormatFloat(p, 'f', 3, 64)
	}
}

func outlierCount(s analysis.Stat) int {
	o := s.Outliers
	return o.LowMild + o.HighMild + o.LowExtreme + o.HighExtreme
}

func outliers(s analysis.Stat) string {
	n := outlierCount(s)
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%d extreme)", n, s.Outliers.LowExtreme+s.Outliers.HighExtreme)
}

// hostCores prints the median busy cores over launches (and the range when
// launches differ).
func hostCores(s analysis.Stat) string {
	if s.N == 0 {
		return "—"
	}
	if s.N > 1 && s.Max-s.Min >= 0.05 {
		return fmt.Sprintf("%.2f (%.2f–%.2f)", s.Median, s.Min, s.Max)
	}
	return fmt.Sprintf("%.2f", s.Median)
}

// cpuPerStep prints host CPU ms per generation step: three significant
// digits, the launches' range when they differ by 5% or more.
func cpuPerStep(s analysis.Stat) string {
	if s.N == 0 {
		return "—"
	}
	if s.N > 1 && s.Max-s.Min >= 0.05*s.Median {
		return fmt.Sprintf("%s (%s–%s)", num(s.Median, 3), num(s.Min, 3), num(s.Max, 3))
	}
	return num(s.Median, 3)
}

func mib(v float64) string {
	if v <= 0 {
		return "—"
	}
	return num(v, 4)
}

// MetricName is a metric's name with its unit as the reports print it
// ("TPOT ms"); unknown keys are returned as they are.
func MetricName(key string) string {
	for _, m := range analysis.Metrics {
		if m.Key == key {
			return m.Name + " " + m.Unit
		}
	}
	return key
}

func breakdown(m map[string]float64) string {
	if len(m) == 0 {
		return "—"
	}
	var parts []string
	for _, k := range []string{"context_init", "weights_to_host", "weights_to_device", "compile", "engine_total"} {
		if v, ok := m[k]; ok && v > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", strings.ReplaceAll(k, "_", " "), num(v, 3)))
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

func launchesOf(s *analysis.Summary) int {
	n := 0
	for _, e := range s.Engines {
		n = max(n, e.Launches)
	}
	return n
}

func gpuName(s *analysis.Summary) string { return gpuField(s, "name") }

func gpuLine(s *analysis.Summary) string {
	if len(s.Env.GPU) == 0 {
		if s.Env.Telemetry != "" {
			return "no GPU telemetry: " + s.Env.Telemetry
		}
		return "no GPU"
	}
	parts := []string{gpuField(s, "name")}
	if d := gpuField(s, "driver_version"); d != "" {
		parts = append(parts, "driver "+d)
	}
	if u := gpuField(s, "uuid"); u != "" {
		parts = append(parts, u)
	}
	return strings.Join(parts, ", ")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "?"
	}
	return h
}

func dirty(d bool) string {
	if d {
		return " (uncommitted changes)"
	}
	return ""
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return strconv.FormatInt(n, 10)
}

func bytesStr(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

func hasGPU(s *analysis.Summary) bool {
	for _, e := range s.Engines {
		if e.GPU != nil {
			return true
		}
	}
	return false
}

// caseNotes are a case's sentences under its tables: output parity with the
// baseline, inter-token latency tails with the first warm-up's cost, and the
// roofline.
func caseNotes(s *analysis.Summary, c analysis.Case) []string {
	var out []string
	if len(c.Parity) > 0 {
		var parts []string
		for _, pa := range c.Parity {
			parts = append(parts, fmt.Sprintf("%s %d/%d identical prefix, %.0f%% positions agree", pa.Engine, pa.Matched, pa.Total, 100*pa.Agree))
		}
		out = append(out, fmt.Sprintf("Output parity vs %s (greedy, first timed iteration): %s.", s.Baseline, strings.Join(parts, "; ")))
	}
	var texts []string
	for _, r := range c.Results {
		if r.Text != "" {
			texts = append(texts, fmt.Sprintf("%s %q", r.Engine, r.Text))
		}
	}
	if len(texts) > 0 {
		out = append(out, fmt.Sprintf("Greedy output, first line as the model's tokenizer decodes it: %s.", strings.Join(texts, "; ")))
	}
	var tails []string
	for _, r := range c.Results {
		if r.ITL.N > 0 {
			t := fmt.Sprintf("%s ITL p50 %s / p90 %s / p99 %s / max %s ms", r.Engine, num(r.ITL.P50, 4), num(r.ITL.P90, 4), num(r.ITL.P99, 4), num(r.ITL.Max, 4))
			if r.FirstWarmupE2EMs > 0 {
				if e2e := r.Metrics["e2e_ms"]; e2e.Median > 0 {
					t += fmt.Sprintf(", first warm-up iteration %.1f× the timed E2E", r.FirstWarmupE2EMs/e2e.Median)
				}
			}
			tails = append(tails, t)
		}
	}
	if len(tails) > 0 {
		out = append(out, fmt.Sprintf("Inter-token latency over all timed tokens (descriptive): %s.", strings.Join(tails, "; ")))
	}
	var roof []string
	var head int64 // the first engine's weight bytes head the line; engines reading another amount say so
	for _, r := range c.Results {
		if rf := r.Roofline; rf != nil && head == 0 {
			head = rf.WeightBytesPerToken
		}
	}
	for _, r := range c.Results {
		if rf := r.Roofline; rf != nil {
			var parts []string
			if rf.Measured.LimitTokPerSec > 0 {
				parts = append(parts, fmt.Sprintf("%.1f%% of %s tok/s at the measured %s GB/s", rf.Measured.PercentOfLimit, num(rf.Measured.LimitTokPerSec, 4), num(rf.Measured.BytesPerSec/1e9, 4)))
			}
			if rf.Theoretical.LimitTokPerSec > 0 {
				parts = append(parts, fmt.Sprintf("%.1f%% of %s tok/s at the datasheet %s GB/s", rf.Theoretical.PercentOfLimit, num(rf.Theoretical.LimitTokPerSec, 4), num(rf.Theoretical.BytesPerSec/1e9, 4)))
			}
			reads := ""
			if rf.WeightBytesPerToken != head {
				reads = fmt.Sprintf(" (reads %s per step in its format)", bytesStr(rf.WeightBytesPerToken))
			}
			roof = append(roof, fmt.Sprintf("%s%s %s tok/s = %s", r.Engine, reads, num(rf.DecodeTokPerSec, 4), strings.Join(parts, ", ")))
		}
	}
	if len(roof) > 0 {
		out = append(out, fmt.Sprintf("Roofline (decode reads %s of weights per step): %s.", bytesStr(head), strings.Join(roof, "; ")))
	}
	return out
}

var engineHeader = []string{"engine", "library", "launches (failed)", "cold start s", "breakdown (engine-reported, median s)", "host CPU cores while generating", "host CPU ms per step"}

// engineRows are the rows of the engines table.
func engineRows(s *analysis.Summary) [][]string {
	var out [][]string
	for _, en := range s.Engines {
		info := s.Env.Engines[en.Label]
		lib := strings.TrimSpace(info.Library + " " + info.LibraryVersion)
		out = append(out, []string{en.Label, lib, fmt.Sprintf("%d (%d)", en.Launches, en.Failed), medCI(en.ColdStart), breakdown(en.Breakdown), hostCores(en.HostCores), cpuPerStep(en.HostCPUPerStep)})
	}
	return out
}

var gpuHeader = []string{"engine", "process mem peak MiB", "device mem peak MiB", "energy/token J", "mean W", "prefill W", "decode W", "SM util %", "SM MHz", "max °C", "throttled launches", "sampler busy %"}

// gpuRows are the rows of the NVML table (Markdown bold marks throttling).
func gpuRows(s *analysis.Summary) [][]string {
	var out [][]string
	for _, en := range s.Engines {
		g := en.GPU
		if g == nil {
			continue
		}
		throttled := fmt.Sprintf("%d of %d", g.Throttled, g.Launches)
		if g.Throttled > 0 {
			throttled = fmt.Sprintf("**%d of %d** (%s)", g.Throttled, g.Launches, strings.Join(g.Reasons, ", "))
		}
		out = append(out, []string{en.Label, num(g.ProcMemPeakMiB, 5), num(g.DevMemPeakMiB, 5), num(g.EnergyPerTokenJ, 3), num(g.PowerMeanW, 4),
			phaseWatts(g.PrefillPowerW), phaseWatts(g.DecodePowerW), num(g.SMUtilPct, 3), num(g.SMClockMHz, 4), num(g.TempMaxC, 3), throttled, num(g.SamplerBusyPct, 2)})
	}
	return out
}

// firstLaunchLine sets each engine's first launch against its later ones
// (one-time costs of cold caches); "" when no engine has two launches.
func firstLaunchLine(s *analysis.Summary) string {
	var parts []string
	for _, en := range s.Engines {
		f := en.FirstLaunch
		if f == nil {
			continue
		}
		t := fmt.Sprintf("%s cold start %s vs %s s", en.Label, num(f.ColdStartS, 3), num(f.LaterColdStartS, 3))
		if f.FirstWarmupS > 0 && f.LaterFirstWarmupS > 0 {
			t += fmt.Sprintf(", first warm-up iteration %s vs %s s", num(f.FirstWarmupS, 3), num(f.LaterFirstWarmupS, 3))
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return ""
	}
	return "First launch against the median of the later ones (what a fresh machine pays once: compile and autotune caches, " +
		"the kernel JIT cache, the page cache; the statistics above pool every launch): " + strings.Join(parts, "; ") + "."
}

// sharedTuningLine names the engines whose launches replay one tuning made by an earlier process: their CIs over
// launches do not include the spread between tunings, which a user on another machine or an empty cache meets.
// "" when no engine said so.
func sharedTuningLine(s *analysis.Summary) string {
	var parts []string
	for _, en := range s.Engines {
		if en.SharedTuning != "" {
			part := fmt.Sprintf("%s (%s)", en.Label, en.SharedTuning)
			if k := tuningNotShared(s, en.Label); k != nil {
				// The engine's claim, checked against what its launches reported (H200 8B, 2026-12-02: a few kernels
				// were tuned again in later processes and settled differently).
				part += fmt.Sprintf(" — yet its launches settled on different configurations for %d of %d tuned kernels, "+
					"so that tuning was not replayed whole", len(k.Differ), k.Kernels)
			}
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "Launches that replay one tuning: " + strings.Join(parts, "; ") + ". Their figures and CIs are for that tuning: " +
		"the CI covers launch-to-launch variation, not the spread between tunings, which another machine or an empty cache " +
		"draws again (autotuners time kernels of microseconds, and pick differently from run to run); a difference between " +
		"engines smaller than that spread may not hold on another tuning."
}

// tuningNotShared is the kernel-configuration comparison of label's launches, in the first case where they differ;
// nil when they agree everywhere or were not reported.
func tuningNotShared(s *analysis.Summary, label string) *analysis.KernelConfigs {
	for _, c := range s.Cases {
		for _, r := range c.Results {
			if r.Engine == label && r.Determinism != nil && r.Determinism.KernelConfigs != nil && len(r.Determinism.KernelConfigs.Differ) > 0 {
				return r.Determinism.KernelConfigs
			}
		}
	}
	return nil
}

// preparedLine says what each engine's `ENGINE prepare` did before its first
// launch; "" when none ran.
func preparedLine(s *analysis.Summary) string {
	var parts []string
	for _, p := range s.Prepared {
		var t string
		switch {
		case p.Error != "":
			t = fmt.Sprintf("%s failed after %.1f s (%s)", p.Engine, p.WallS, p.Error)
		case p.Ran:
			t = fmt.Sprintf("%s made it in %.1f s", p.Engine, p.WallS)
		case p.Nothing() != "":
			parts = append(parts, fmt.Sprintf("%s had nothing to prepare (%s)", p.Engine, p.Nothing()))
			continue
		default:
			t = fmt.Sprintf("%s found it cached (%.1f s)", p.Engine, p.WallS)
		}
		keys := make([]string, 0, len(p.Steps))
		for k := range p.Steps {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var steps []string
		for _, k := range keys {
			steps = append(steps, k+": "+p.Steps[k])
		}
		if len(steps) > 0 {
			t += " — " + strings.Join(steps, "; ")
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return ""
	}
	return "Prepared before the first launch (`ENGINE prepare`: the model-derived work an engine's launches reuse from its cache, " +
		"a conversion or an ahead-of-time export; in no launch's cold start): " + strings.Join(parts, "; ") + "."
}

// globalWarnings are the run's and the engines' warnings.
func globalWarnings(s *analysis.Summary) []string {
	ws := append([]string{}, s.Warnings...)
	for _, en := range s.Engines {
		for _, w := range en.Warnings {
			ws = append(ws, en.Label+": "+w)
		}
	}
	return ws
}

// notRunLine names the engines a case was not asked of (their max batch is below its batch), "" when none.
func notRunLine(c analysis.Case) string {
	if len(c.NotRun) == 0 {
		return ""
	}
	return fmt.Sprintf("Not run in this case: %s — each serves smaller batches than %d, so its launches ran the benchmark's other cases only.",
		strings.Join(c.NotRun, ", "), c.Batch)
}
