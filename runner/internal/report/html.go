package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// plotted are the metrics report.html draws per case, one strip chart each.
var plotted = []struct{ key, title string }{
	{"decode_tps", "decode tok/s (higher is better)"},
	{"tpot_ms", "TPOT ms (lower is better)"},
	{"ttft_ms", "TTFT ms (lower is better)"},
}

// palette colours engines in report order (colour-blind safe, Okabe-Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

// HTML writes report.html: one self-contained page (no scripts, no external
// files) with, per case, a strip chart of every timed iteration per engine
// (dots), its median (bar) and the median's 95% CI (band), next to the same
// tables as report.md. Output is deterministic.
func HTML(w io.Writer, s *analysis.Summary) error {
	p := &printer{w: w}
	esc := html.EscapeString
	p.f("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n", esc(s.Name))
	p.f("<style>\nbody{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}\n" +
		"table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}" +
		"td:first-child,th:first-child{text-align:left}\nsvg{display:block;margin:.25rem 0 1rem;width:100%%;height:auto}\n.note{color:#555}\n" +
		".better{background:#dff3dc}.worse{background:#fadcdc}\n</style>\n</head>\n<body>\n")
	e := s.Env
	p.f("<h1>%s</h1>\n<p>%s · %s · %s · model <code>%s</code> (%s, %s) · %s</p>\n", esc(s.Name),
		e.CreatedAt.Format("2006-01-02 15:04 UTC"), esc(gpuLine(s)), esc(e.CPU), esc(e.Model.Dir), esc(short(e.Model.Hash)),
		esc(s.Request.DType), esc(s.Request.Device))
	p.f("<p>Each engine: %d launch(es) × (%d warm-up + %d timed iterations) per case, launches interleaved; baseline <b>%s</b>. "+
		"Dots are timed iterations, one height per launch; bars are the launch-level figures (geometric mean of launch medians), bands their 95%% CIs over launches.</p>\n",
		launchesOf(s), s.Request.Warmup, s.Request.Iterations, esc(s.Baseline))
	if hs := Headlines(s); len(hs) > 0 {
		p.f("<h2>Verdicts</h2>\n<ul>\n")
		for _, hl := range hs {
			p.f("<li>%s</li>\n", boldMarkdown(esc(hl.Text)))
		}
		p.f("</ul>\n")
	}
	colour := map[string]string{}
	for i, en := range s.Engines {
		colour[en.Label] = palette[i%len(palette)]
	}
	for _, c := range s.Cases {
		p.f("<h2>%s — prompt %d, %d new tokens, batch %d</h2>\n", esc(c.Name), c.Prompt, c.MaxNew, c.Batch)
		for _, m := range plotted {
			p.f("%s", stripChart(c, m.key, m.title, colour))
		}
		p.f("<table>\n<tr><th>engine</th><th>TTFT ms</th><th>TPOT ms</th><th>decode tok/s</th><th>prefill tok/s</th><th>E2E ms</th><th>n</th><th>outliers</th></tr>\n")
		for _, r := range c.Results {
			p.f("%s", htmlRow(resultCells(r)))
		}
		p.f("</table>\n")
		if l := notRunLine(c); l != "" {
			p.f("<p>%s</p>\n", esc(l))
		}
		if len(c.Comparisons) > 0 {
			p.f("<table>\n<tr><th>vs %s</th><th>metric</th><th>ratio [95%% CI]</th><th>launches</th><th>launch-level p (Holm)</th><th>Cliff's δ (iterations)</th><th>verdict</th></tr>\n", esc(s.Baseline))
			for _, cm := range c.Comparisons {
				row := htmlRow(comparisonCells(cm))
				if cls := verdictClass(cm); cls != "" { // colour the verdict cell
					i := strings.LastIndex(row, "<td>")
					row = row[:i] + "<td class=\"" + cls + "\">" + row[i+len("<td>"):]
				}
				p.f("%s", row)
			}
			p.f("</table>\n<ul>\n")
			for _, cm := range c.Comparisons {
				p.f("<li>%s</li>\n", boldMarkdown(esc(Verdict(cm))))
			}
			p.f("</ul>\n")
		}
		for _, n := range caseNotes(s, c) {
			p.f("<p>%s</p>\n", esc(n))
		}
		htmlList(p, "<p>Variance components of TPOT (between launches vs within a launch) and the design they recommend:</p>", varianceLines(c))
		if dl := determinismLines(c); len(dl) > 0 {
			htmlList(p, "<p>"+esc(determinismHeading)+"</p>", dl)
			p.f("<p class=\"note\">%s</p>\n", codeMarkdown(esc(determinismNote)))
		}
		htmlList(p, "<p class=\"note\">Warnings:</p>", caseWarnings(c))
	}
	p.f("<h2>Engines</h2>\n<table>\n%s", htmlHeader(engineHeader))
	for _, row := range engineRows(s) {
		p.f("%s", htmlRow(row))
	}
	p.f("</table>\n")
	if l := preparedLine(s); l != "" {
		p.f("<p class=\"note\">%s</p>\n", esc(l))
	}
	if l := sharedTuningLine(s); l != "" {
		p.f("<p class=\"note\">%s</p>\n", esc(l))
	}
	if l := firstLaunchLine(s); l != "" {
		p.f("<p class=\"note\">%s</p>\n", esc(l))
	}
	if hasGPU(s) {
		p.f("<h2>GPU (NVML, median over launches; energy and power over timed iterations)</h2>\n<table>\n%s", htmlHeader(gpuHeader))
		for _, row := range gpuRows(s) {
			p.f("%s", boldMarkdown(htmlRow(row)))
		}
		p.f("</table>\n")
	}
	htmlList(p, "<h2>Warnings</h2>", globalWarnings(s))
	htmlSections(p, s)
	profileHTML(p, s)
	if len(s.Failures) > 0 {
		p.f("<h2>Failed launches</h2>\n<ul>\n")
		for _, f := range s.Failures {
			p.f("<li>%s launch %d: %s</li>\n", esc(f.Engine), f.Launch+1, esc(oneLine(f.Error)))
		}
		p.f("</ul>\n")
	}
	p.f("<h2>Environment</h2>\n<ul>\n<li>%s</li>\n", esc(hostLine(e)))
	if pw := e.CPUPower.String(); pw != "" {
		p.f("<li>CPU power: %s</li>\n", esc(pw))
	}
	p.f("<li>GPU: %s</li>\n<li>runner %s, git %s%s</li>\n<li>command: <code>%s</code></li>\n</ul>\n",
		esc(gpuLine(s)), esc(e.GoVersion), esc(short(e.GitCommit)), dirty(e.GitDirty), esc(strings.Join(e.Command, " ")))
	p.f("<p class=\"note\">Every figure, the engines' settings and the GPU telemetry are in report.md and summary.json next to this file.</p>\n")
	p.f("<h2>Definitions</h2>\n<ul>\n")
	if s.Equivalence > 0 {
		p.f("<li>Equivalence (within %s): two one-sided Welch t-tests (TOST) on the log launch medians against ±ln(1+%g), Holm-corrected as a family of their own; &ldquo;the same within %s&rdquo; = adjusted p &lt; 0.05.</li>\n",
			marginWord(s.Equivalence), s.Equivalence, marginWord(s.Equivalence))
	}
	for _, d := range s.Defs {
		p.f("<li>%s</li>\n", esc(d))
	}
	p.f("</ul>\n</body>\n</html>\n")
	return p.err
}

// htmlRow is one table row of escaped cells.
func htmlRow(cells []string) string {
	var b strings.Builder
	b.WriteString("<tr>")
	for _, c := range cells {
		b.WriteString("<td>" + html.EscapeString(c) + "</td>")
	}
	b.WriteString("</tr>\n")
	return b.String()
}

// stripChart draws one metric of one case: a row per engine with its samples,
// median and CI on a shared axis. Empty when no engine has samples.
func stripChart(c analysis.Case, key, title string, colour map[string]string) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range c.Results {
		st := r.Metrics[key]
		vs := st.Samples
		if st.Launch.HasCI && len(vs) > 0 { // the axis covers the CI bands too
			vs = append(append([]float64{}, vs...), st.Launch.Lo, st.Launch.Hi)
		}
		for _, v := range vs {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo > hi {
		return ""
	}
	ticks := niceTicks(lo, hi, 5)
	lo, hi = math.Min(lo, ticks[0]), math.Max(hi, ticks[len(ticks)-1])
	const left, width, right, row, top = 200.0, 520.0, 20.0, 28.0, 22.0
	height := top + row*float64(len(c.Results)) + 26
	x := func(v float64) float64 { return left + (v-lo)/(hi-lo)*width }
	var b strings.Builder
	fmt.Fprintf(&b, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"%s\">\n",
		left+width+right, height, left+width+right, height, html.EscapeString(title))
	fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"14\" font-size=\"13\" font-weight=\"bold\">%s</text>\n", left, html.EscapeString(title))
	axisY := top + row*float64(len(c.Results))
	for _, t := range ticks {
		fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#ddd\"/>\n", x(t), top, x(t), axisY)
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", x(t), axisY+14, tickLabel(t))
	}
	for i, r := range c.Results {
		st := r.Metrics[key]
		y := top + row*float64(i) + row/2
		col := colour[r.Engine]
		if col == "" {
			col = "#444"
		}
		fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%s</text>\n", left-8, y+4, html.EscapeString(r.Engine))
		centre, clo, chi, hasCI := st.Median, st.MedianLo, st.MedianHi, st.HasCI
		if l := st.Launch; l.HasCI {
			centre, clo, chi, hasCI = l.Mean, l.Lo, l.Hi, true
		}
		if hasCI {
			fmt.Fprintf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"10\" fill=\"%s\" opacity=\"0.25\"/>\n",
				x(clo), y-5, math.Max(x(chi)-x(clo), 1), col)
		}
		byLaunch := len(st.SampleLaunch) == len(st.Samples)
		for j, v := range st.Samples {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			// One height per launch, so launches show as clusters.
			k := j
			if byLaunch {
				k = st.SampleLaunch[j]
			}
			jitter := float64(k%7-3) * 2
			fmt.Fprintf(&b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" opacity=\"0.6\"/>\n", x(v), y+jitter, col)
		}
		if st.N > 0 {
			fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
				x(centre), y-11, x(centre), y+11, col)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	// A range below float64 resolution counts as one value: stepping through
	// it would never advance t.
	if hi-lo <= 1e-9*math.Max(math.Abs(lo), math.Abs(hi)) {
		pad := math.Max(math.Abs(lo)*0.05, 1e-9)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for t := math.Floor(lo/step) * step; t <= hi+step*1e-9; t += step {
		ticks = append(ticks, math.Round(t/step)*step)
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

func tickLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", v), "0"), ".")
}

// boldMarkdown turns the **bold** spans of escaped text into <b>.
func boldMarkdown(s string) string {
	for {
		i := strings.Index(s, "**")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+2:], "**")
		if j < 0 {
			return s
		}
		s = s[:i] + "<b>" + s[i+2:i+2+j] + "</b>" + s[i+2+j+2:]
	}
}

// htmlHeader is a table's header row.
func htmlHeader(cols []string) string {
	var b strings.Builder
	b.WriteString("<tr>")
	for _, c := range cols {
		b.WriteString("<th>" + html.EscapeString(c) + "</th>")
	}
	b.WriteString("</tr>\n")
	return b.String()
}

// verdictClass colours a significant verdict: "better" when the engine is
// better than the baseline on the metric, "worse" when it is worse.
func verdictClass(cm analysis.Comparison) string {
	if !cm.Significant {
		return ""
	}
	if (cm.Ratio > 1) == higherIsBetter(cm.Metric) {
		return "better"
	}
	return "worse"
}

// htmlList writes heading (HTML) and a list of items (Markdown bold kept,
// everything else escaped); nothing when there are no items.
func htmlList(p *printer, heading string, items []string) {
	if len(items) == 0 {
		return
	}
	p.f("%s\n<ul>\n", heading)
	for _, it := range items {
		p.f("<li>%s</li>\n", boldMarkdown(html.EscapeString(it)))
	}
	p.f("</ul>\n")
}
