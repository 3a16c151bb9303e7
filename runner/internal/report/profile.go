package report

import (
	"fmt"
	"html"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// profileNote says what the kernel profile's figures mean.
const profileNote = "Decode phase, per token (one decode step). Busy = union of kernel intervals on the GPU " +
	"(CUPTI activity on CLOCK_MONOTONIC, aligned with the engine's token timestamps); idle = wall − busy: the GPU waiting " +
	"for the host (launch overhead, Python, synchronisation). Weight bandwidth = weight bytes per token / busy time. " +
	"Profiled launches run as their own variants (LABEL+profile) and are never pooled with unprofiled ones."

// profileMarkdown writes the kernel profile section of report.md.
func profileMarkdown(p *printer, s *analysis.Summary) {
	pr := s.Profile
	if pr == nil {
		return
	}
	p.f("## Kernel profile (CUPTI)\n\n%s\n\n", profileNote)
	p.f("| engine | case | launches | wall µs | busy µs | idle µs | idle %% | kernels | graph launches | memcpys | memcpy bytes | weight GB/s | %% of measured |\n")
	p.f("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range pr.Rows {
		p.f("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Engine, r.Case, r.Launches,
			sig4(r.WallUs), sig4(r.BusyUs), sig4(r.IdleUs), pct(r.IdleUs, r.WallUs), sig4(r.Kernels), sig4(r.GraphLaunches), sig4(r.Memcpys),
			sig4(r.MemcpyBytes), dash(r.WeightGBs), dash(r.Pct))
	}
	p.f("\n")
	for _, r := range pr.Rows {
		p.f("Top kernels, %s / %s (share of kernel time, µs and launches per token, µs per launch):\n\n", r.Engine, r.Case)
		for _, k := range r.Top {
			each := ""
			if k.PerStep > 0 {
				each = fmt.Sprintf(" (%s µs each)", sig4(k.Us/k.PerStep))
			}
			p.f("- `%s` %.1f%%, %s µs, %s×%s\n", k.Name, 100*k.Share, sig4(k.Us), sig4(k.PerStep), each)
		}
		p.f("\n")
	}
	if len(pr.Overhead) > 0 {
		p.f("Profiler overhead (decode tok/s, profiled twin vs the same engine unprofiled, same card, launch-level):\n\n")
		for _, o := range pr.Overhead {
			p.f("- %s / %s: %s\n", o.Engine, o.Case, overheadText(o))
		}
		p.f("\n")
	}
	for _, w := range pr.Warnings {
		p.f("- warning: %s\n", w)
	}
	if len(pr.Warnings) > 0 {
		p.f("\n")
	}
}

func overheadText(o analysis.ProfileOverhead) string {
	if !o.HasRatio {
		return "no ratio (a side has no launch)"
	}
	t := fmt.Sprintf("%s → %s tok/s, ratio %.3f [%.3f, %.3f] (%+.1f%%), %d vs %d launches",
		sig4(o.EstimateA), sig4(o.EstimateB), o.Ratio, o.RatioLo, o.RatioHi, 100*(o.Ratio-1), o.LaunchesA, o.LaunchesB)
	if o.HasTest {
		t += ", p " + pval(o.P)
	}
	return t
}

func pct(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

// sig4 prints a profile figure to four significant digits without trailing
// zeros (11800 µs, 972.8 kernels, 0.9921 graph launches, 8 bytes per token).
func sig4(v float64) string {
	s := num(v, 4)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

func dash(v float64) string {
	if v <= 0 {
		return "–"
	}
	return sig4(v)
}

// profileHTML writes the kernel profile section of report.html: per engine
// and case a stacked bar of one decode token's wall time, top kernels
// (scaled to busy time where kernels overlap) then idle.
func profileHTML(p *printer, s *analysis.Summary) {
	pr := s.Profile
	if pr == nil {
		return
	}
	esc := html.EscapeString
	p.f("<h2>Kernel profile (CUPTI)</h2>\n<p class=\"note\">%s</p>\n", esc(profileNote))
	maxWall := 0.0
	for _, r := range pr.Rows {
		maxWall = max(maxWall, r.WallUs)
	}
	const w, barH, left = 880.0, 22.0, 200.0
	colours := map[string]string{"idle": "#ddd"}
	next := 0
	colour := func(name string) string {
		if c, ok := colours[name]; ok {
			return c
		}
		c := palette[next%len(palette)]
		next++
		colours[name] = c
		return c
	}
	var b strings.Builder
	h := float64(len(pr.Rows))*(barH+8) + 24
	fmt.Fprintf(&b, "<svg width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"decode time per token by kernel\">\n", w+left+20, h)
	for i, r := range pr.Rows {
		y := 4 + float64(i)*(barH+8)
		fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%s / %s</text>\n", left-6, y+barH*0.7, esc(r.Engine), esc(r.Case))
		if maxWall <= 0 {
			continue
		}
		scale := (w - 10) / maxWall
		var kernelUs float64
		for _, k := range r.Top {
			kernelUs += k.Us
		}
		fit := 1.0 // overlapping kernels: shrink their sum to the busy time
		if kernelUs > r.BusyUs && kernelUs > 0 {
			fit = r.BusyUs / kernelUs
		}
		x := left
		seg := func(name string, us float64) {
			if us <= 0 {
				return
			}
			fmt.Fprintf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\"><title>%s: %s µs</title></rect>\n",
				x, y, us*scale, barH, colour(name), esc(name), sig4(us))
			x += us * scale
		}
		for _, k := range r.Top {
			seg(k.Name, k.Us*fit)
		}
		seg("idle", r.IdleUs)
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">%s µs</text>\n", x+4, y+barH*0.7, sig4(r.WallUs))
	}
	fmt.Fprintf(&b, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"#555\">µs per decode token: top kernels, then idle (grey)</text>\n</svg>\n", left, h-6)
	p.f("%s", b.String())
	p.f("<table>\n<tr><th>engine</th><th>case</th><th>wall µs</th><th>busy µs</th><th>idle µs</th><th>kernels</th><th>graph launches</th><th>memcpys</th><th>weight GB/s</th><th>%% of measured</th></tr>\n")
	for _, r := range pr.Rows {
		p.f("%s", htmlRow([]string{r.Engine, r.Case, sig4(r.WallUs), sig4(r.BusyUs), sig4(r.IdleUs), sig4(r.Kernels), sig4(r.GraphLaunches), sig4(r.Memcpys), dash(r.WeightGBs), dash(r.Pct)}))
	}
	p.f("</table>\n<ul>\n")
	for _, r := range pr.Rows {
		var ks []string
		for _, k := range r.Top {
			ks = append(ks, fmt.Sprintf("<span style=\"color:%s\">■</span> <code>%s</code> %.1f%%", colour(k.Name), esc(k.Name), 100*k.Share))
		}
		p.f("<li>%s / %s: %s</li>\n", esc(r.Engine), esc(r.Case), strings.Join(ks, ", "))
	}
	for _, o := range pr.Overhead {
		p.f("<li>profiler overhead, %s / %s: %s</li>\n", esc(o.Engine), esc(o.Case), esc(overheadText(o)))
	}
	for _, w := range pr.Warnings {
		p.f("<li>warning: %s</li>\n", esc(w))
	}
	p.f("</ul>\n")
}
