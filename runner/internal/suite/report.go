package suite

import (
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// ColdStart compares one engine's first launch in a cell with its later
// ones: with compile caches shared by every launch (torch's inductor and
// triton caches), the first pays the compilation and the later ones show
// what a warm cache leaves. Times in seconds; Later* are medians over
// launches 2…K, 0 when there were none.
type ColdStart struct {
	Engine string
	// Launches is the successful launches counted.
	Launches                   int
	FirstLoad, LaterLoad       float64 // spawn → loaded
	FirstCompile, LaterCompile float64 // the engine's compile/capture time inside the load
	FirstTotal, LaterTotal     float64 // spawn → exit
}

// ColdStarts reads a cell's launches: one row per engine, in first-launch
// order (analysis.FirstLaunchOf: failed and profiled launches left out).
func ColdStarts(recs []results.Record) []ColdStart {
	var order []string
	by := map[string][]results.Record{}
	for _, r := range recs {
		if _, ok := by[r.Engine]; !ok {
			order = append(order, r.Engine)
		}
		by[r.Engine] = append(by[r.Engine], r)
	}
	var out []ColdStart
	for _, e := range order {
		f := analysis.FirstLaunchOf(by[e])
		if f == nil {
			continue
		}
		out = append(out, ColdStart{
			Engine: e, Launches: f.Later + 1,
			FirstLoad: f.ColdStartS, LaterLoad: f.LaterColdStartS,
			FirstCompile: f.CompileS, LaterCompile: f.LaterCompileS,
			FirstTotal: f.LaunchS, LaterTotal: f.LaterLaunchS,
		})
	}
	return out
}

// preparedIn reads a cell's preparations (`ENGINE prepare` before its first launch), by engine label, each in
// words for the cold-start table: seconds and whether it made something or found it cached.
func preparedIn(cellDir string) map[string]string {
	preps, _ := results.ReadPreparations(cellDir)
	out := map[string]string{}
	for _, p := range analysis.PreparedOf(preps) {
		switch {
		case p.Error != "":
			out[p.Engine] = fmt.Sprintf("failed (%.2f)", p.WallS)
		case p.Ran:
			out[p.Engine] = fmt.Sprintf("%.2f, made", p.WallS)
		case p.Nothing() != "":
			out[p.Engine] = "nothing to prepare"
		default:
			out[p.Engine] = fmt.Sprintf("%.2f, cached", p.WallS)
		}
	}
	return out
}

func orDash(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "—"
}

// ReportMD and ReportHTML are the suite's reports, next to StateFile.
const (
	ReportMD   = "report.md"
	ReportHTML = "report.html"
)

// cellRecords reads a cell's runs.jsonl (nil when it has none).
// machineOf is the machine a cell's launches ran on (its environment record): a suite resumed over GPU sessions
// runs its cells on several cards, each cell on one. "—" before the cell started.
func machineOf(cellDir string) string {
	var env envinfo.Env
	if err := results.ReadJSON(cellDir, results.EnvFile, &env); err != nil {
		return "—"
	}
	return env.Machine()
}

func cellRecords(dir string) []results.Record {
	recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	if err != nil {
		return nil
	}
	return recs
}

// Markdown writes the suite's report.md: the matrix with each cell's status
// and wall time, the cold-start table, then every cell's own report.md (its
// verdicts, tables and environment) as a section, headings one level down.
func Markdown(w io.Writer, dir string, st *State) error {
	p := &printer{w: w}
	p.f("# %s\n\n", st.Name)
	p.f("A suite: every engine × model × workload, each model × workload an ordinary benchmark (its own directory here, with runs.jsonl and reports); " +
		"comparisons and verdicts are within a cell, never across cells.\n\n")
	p.f("Cells: %s. Wall time %s over %d session(s).\n\n", st.Summary(), Wall(st.WallSeconds()), st.Sessions)
	for _, n := range st.Notes {
		p.f("- %s\n", n)
	}
	if len(st.Notes) > 0 {
		p.f("\n")
	}
	p.f("| cell | status | engines | launches | wall time | machine | notes |\n|---|---|---|---|---|---|---|\n")
	for _, c := range st.Cells {
		var notes []string
		notes = append(notes, c.Skipped...)
		if c.Failed > 0 {
			notes = append(notes, fmt.Sprintf("%d failed launch(es)", c.Failed))
		}
		if c.Error != "" {
			notes = append(notes, oneLine(c.Error))
		}
		p.f("| [%s](%s/report.md) | %s | %s | %d | %s | %s | %s |\n", c.Label(), c.Name, c.Status, strings.Join(c.Engines, ", "), c.Launches,
			Wall(c.WallSeconds), machineOf(filepath.Join(dir, c.Name)), strings.ReplaceAll(strings.Join(notes, "; "), "|", "/"))
	}
	p.f("\n")
	for _, m := range modelTotals(dir, st) {
		p.f("- %s: %s\n", m[0], m[1])
	}
	p.f("\n## Cold start: first launch vs later launches\n\n")
	p.f("Every launch of the suite shares one compile cache (%s); the first launch of an engine pays what later ones reuse. "+
		"Seconds; later = median of launches 2…K; prepared = `ENGINE prepare` before launch 1 (a conversion, an export, a "+
		"first compilation and tuning), in no launch's figures.\n\n", orNone(st.CompileCache))
	p.f("| cell | engine | prepared | load, launch 1 | load, later | compile, launch 1 | compile, later | launch, launch 1 | launch, later |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range st.Cells {
		prep := preparedIn(filepath.Join(dir, c.Name))
		for _, cs := range ColdStarts(cellRecords(filepath.Join(dir, c.Name))) {
			p.f("| %s | %s | %s | %.2f | %s | %s | %s | %.2f | %s |\n", c.Label(), cs.Engine, orDash(prep, cs.Engine), cs.FirstLoad, later(cs, cs.LaterLoad),
				compile(cs.FirstCompile), laterCompile(cs), cs.FirstTotal, later(cs, cs.LaterTotal))
		}
	}
	p.f("\n")
	for _, c := range st.Cells {
		p.f("## %s\n\n", c.Label())
		b, err := os.ReadFile(filepath.Join(dir, c.Name, results.ReportMD))
		if err != nil {
			p.f("No report: %s.\n\n", c.Status)
			continue
		}
		lines := strings.SplitAfter(strings.TrimRight(string(b), "\n")+"\n", "\n")
		if len(lines) > 0 && strings.HasPrefix(lines[0], "# ") { // the cell's title: this section's heading says it
			lines = lines[1:]
		}
		for _, line := range lines {
			if strings.HasPrefix(line, "#") { // the cell's headings one level down
				line = "#" + line
			}
			p.f("%s", line)
		}
		p.f("\n")
	}
	return p.err
}

func orNone(s string) string {
	if s == "" {
		return "none set"
	}
	return s
}

func later(cs ColdStart, v float64) string {
	if cs.Launches < 2 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func compile(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func laterCompile(cs ColdStart) string {
	if cs.Launches < 2 {
		return "–"
	}
	return compile(cs.LaterCompile)
}

// modelTotals is the wall time per model, in suite order, and how much of it went into the engines' preparations
// (`ENGINE prepare`: conversions, exports, first compilations) — those that failed named, since a preparation that
// runs out of time costs its whole timeout and measures nothing (burn's autotune of a long prompt on the H200).
func modelTotals(dir string, st *State) [][2]string {
	var names []string
	t, prep, failed := map[string]float64{}, map[string]float64{}, map[string]float64{}
	n := map[string]int{}
	who := map[string][]string{}
	for _, c := range st.Cells {
		if _, ok := t[c.Model]; !ok {
			names = append(names, c.Model)
		}
		t[c.Model] += c.WallSeconds
		n[c.Model]++
		preps, _ := results.ReadPreparations(filepath.Join(dir, c.Name))
		for _, p := range preps {
			s := float64(p.WallNs) / 1e9
			prep[c.Model] += s
			if p.Error != "" {
				failed[c.Model] += s
				if !slices.Contains(who[c.Model], p.Engine) {
					who[c.Model] = append(who[c.Model], p.Engine)
				}
			}
		}
	}
	var out [][2]string
	for _, m := range names {
		line := fmt.Sprintf("%s over its %d cell(s)", Wall(t[m]), n[m])
		if prep[m] > 0 {
			line += fmt.Sprintf(", of which %s in preparations", Wall(prep[m]))
			if failed[m] > 0 {
				line += fmt.Sprintf(" (%s in ones that failed: %s)", Wall(failed[m]), strings.Join(who[m], ", "))
			}
		}
		out = append(out, [2]string{m, line})
	}
	return out
}

var (
	bodyRe  = regexp.MustCompile(`(?s)<body>\n?(.*)</body>`)
	styleRe = regexp.MustCompile(`(?s)<style>.*?</style>`)
)

// HTML writes the suite's report.html: one self-contained page with the
// matrix and every cell's own report.html (strip charts, tables, verdicts)
// as a section.
func HTML(w io.Writer, dir string, st *State) error {
	p := &printer{w: w}
	esc := html.EscapeString
	var style string
	var bodies []string
	for _, c := range st.Cells {
		b, err := os.ReadFile(filepath.Join(dir, c.Name, results.ReportHTML))
		if err != nil {
			bodies = append(bodies, fmt.Sprintf("<p>No report: %s.</p>\n", esc(c.Status)))
			continue
		}
		if style == "" {
			style = styleRe.FindString(string(b))
		}
		m := bodyRe.FindStringSubmatch(string(b))
		if m == nil {
			bodies = append(bodies, "<p>Unreadable report.html.</p>\n")
			continue
		}
		body := m[1]
		for _, h := range []string{"h5", "h4", "h3", "h2", "h1"} { // one level down, deepest first
			down := fmt.Sprintf("h%d", h[1]-'0'+1)
			body = strings.ReplaceAll(body, "<"+h+">", "<"+down+">")
			body = strings.ReplaceAll(body, "<"+h+" ", "<"+down+" ")
			body = strings.ReplaceAll(body, "</"+h+">", "</"+down+">")
		}
		bodies = append(bodies, body)
	}
	if style == "" {
		style = "<style>body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}</style>"
	}
	p.f("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n%s\n</head>\n<body>\n", esc(st.Name), style)
	p.f("<h1>%s</h1>\n<p>A suite: every engine × model × workload, each model × workload an ordinary benchmark (its own directory here); "+
		"comparisons and verdicts are within a cell, never across cells. Cells: %s. Wall time %s over %d session(s).</p>\n",
		esc(st.Name), esc(st.Summary()), esc(Wall(st.WallSeconds())), st.Sessions)
	if len(st.Notes) > 0 {
		p.f("<ul>\n")
		for _, n := range st.Notes {
			p.f("<li>%s</li>\n", esc(n))
		}
		p.f("</ul>\n")
	}
	p.f("<table>\n<tr><th>cell</th><th>status</th><th>engines</th><th>launches</th><th>wall time</th><th>machine</th><th>notes</th></tr>\n")
	for i, c := range st.Cells {
		notes := append([]string{}, c.Skipped...)
		if c.Failed > 0 {
			notes = append(notes, fmt.Sprintf("%d failed launch(es)", c.Failed))
		}
		if c.Error != "" {
			notes = append(notes, oneLine(c.Error))
		}
		p.f("<tr><td><a href=\"#cell-%d\">%s</a></td><td>%s</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", i, esc(c.Label()), esc(c.Status),
			esc(strings.Join(c.Engines, ", ")), c.Launches, esc(Wall(c.WallSeconds)), esc(machineOf(filepath.Join(dir, c.Name))), esc(strings.Join(notes, "; ")))
	}
	p.f("</table>\n<ul>\n")
	for _, m := range modelTotals(dir, st) {
		p.f("<li>%s: %s</li>\n", esc(m[0]), esc(m[1]))
	}
	p.f("</ul>\n<h2>Cold start: first launch vs later launches</h2>\n<p>Every launch shares one compile cache (%s). Seconds; later = median of launches 2…K; prepared = <code>ENGINE prepare</code> before launch 1, in no launch's figures.</p>\n", esc(orNone(st.CompileCache)))
	p.f("<table>\n<tr><th>cell</th><th>engine</th><th>prepared</th><th>load, launch 1</th><th>load, later</th><th>compile, launch 1</th><th>compile, later</th><th>launch, launch 1</th><th>launch, later</th></tr>\n")
	for _, c := range st.Cells {
		prep := preparedIn(filepath.Join(dir, c.Name))
		for _, cs := range ColdStarts(cellRecords(filepath.Join(dir, c.Name))) {
			p.f("<tr><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td></tr>\n", esc(c.Label()), esc(cs.Engine),
				esc(orDash(prep, cs.Engine)), cs.FirstLoad, later(cs, cs.LaterLoad), compile(cs.FirstCompile), laterCompile(cs), cs.FirstTotal, later(cs, cs.LaterTotal))
		}
	}
	p.f("</table>\n")
	for i, c := range st.Cells {
		p.f("<section id=\"cell-%d\">\n<h1>%s</h1>\n%s</section>\n", i, esc(c.Label()), bodies[i])
	}
	p.f("</body>\n</html>\n")
	return p.err
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, a ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format, a...)
}
