package report

import (
	"fmt"
	"html"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// markdownSections writes the plugin sections of report.md (the built-in
// cost section among them), then the plugins that failed: a failed plugin is
// said, never silent, and never costs the result.
func markdownSections(p *printer, s *analysis.Summary) {
	for _, sec := range s.Sections {
		p.f("## %s\n\n", oneLine(sec.Title))
		if sec.Plugin != "" && sec.Plugin != "cost" {
			p.f("*From plugin %s.*\n\n", sec.Plugin)
		}
		if md := strings.TrimSpace(sec.Markdown); md != "" {
			p.f("%s\n\n", md)
		}
		if t := sec.Table; t != nil && len(t.Columns) > 0 {
			p.f("| %s |\n|%s\n", strings.Join(mdCells(t.Columns), " | "), strings.Repeat("---|", len(t.Columns)))
			for _, r := range t.Rows {
				p.f("| %s |\n", strings.Join(mdCells(r), " | "))
			}
			p.f("\n")
		}
	}
	if len(s.PluginFailures) > 0 {
		p.f("## Plugins that failed\n\nThe result above is complete; these plugins added nothing to it.\n\n")
		for _, f := range s.PluginFailures {
			p.f("- %s\n", failureLine(f.Plugin, f.Hook, f.Error, f.Stderr))
		}
		p.f("\n")
	}
}

// htmlSections writes the same as markdownSections into report.html, every
// plugin-provided string escaped.
func htmlSections(p *printer, s *analysis.Summary) {
	esc := html.EscapeString
	for _, sec := range s.Sections {
		p.f("<h2>%s</h2>\n", esc(oneLine(sec.Title)))
		if sec.Plugin != "" && sec.Plugin != "cost" {
			p.f("<p class=\"note\">From plugin %s.</p>\n", esc(sec.Plugin))
		}
		p.f("%s", htmlProse(sec.Markdown))
		if t := sec.Table; t != nil && len(t.Columns) > 0 {
			p.f("<table>\n<tr>")
			for _, c := range t.Columns {
				p.f("<th>%s</th>", esc(c))
			}
			p.f("</tr>\n")
			for _, r := range t.Rows {
				p.f("%s", htmlRow(r))
			}
			p.f("</table>\n")
		}
	}
	if len(s.PluginFailures) > 0 {
		p.f("<h2>Plugins that failed</h2>\n<p>The result above is complete; these plugins added nothing to it.</p>\n<ul>\n")
		for _, f := range s.PluginFailures {
			p.f("<li>%s</li>\n", esc(failureLine(f.Plugin, f.Hook, f.Error, f.Stderr)))
		}
		p.f("</ul>\n")
	}
}

// failureLine says one plugin failure in a line, with the end of its stderr.
func failureLine(plugin, hook, err, stderr string) string {
	l := fmt.Sprintf("plugin %s failed in its %s hook: %s", plugin, hook, oneLine(err))
	if st := strings.TrimSpace(stderr); st != "" {
		if len(st) > 200 {
			st = "…" + st[len(st)-200:]
		}
		l += " (stderr: " + strings.ReplaceAll(st, "\n", " ⏎ ") + ")"
	}
	return l
}

// mdCells makes text safe inside a Markdown table cell.
func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		c = strings.ReplaceAll(c, "|", `\|`)
		out[i] = strings.ReplaceAll(strings.ReplaceAll(c, "\r", ""), "\n", " ")
	}
	return out
}

// htmlProse renders the small Markdown subset of a section: paragraphs
// separated by blank lines, "- " lists and **bold**; everything else is
// escaped text.
func htmlProse(md string) string {
	var b strings.Builder
	for _, block := range strings.Split(strings.ReplaceAll(md, "\r", ""), "\n\n") {
		block = strings.TrimSpace(block)
		if block == "" {
			continue
		}
		lines := strings.Split(block, "\n")
		list := true
		for _, l := range lines {
			list = list && strings.HasPrefix(strings.TrimSpace(l), "- ")
		}
		if list {
			b.WriteString("<ul>\n")
			for _, l := range lines {
				b.WriteString("<li>" + boldMarkdown(html.EscapeString(strings.TrimPrefix(strings.TrimSpace(l), "- "))) + "</li>\n")
			}
			b.WriteString("</ul>\n")
			continue
		}
		b.WriteString("<p>" + boldMarkdown(html.EscapeString(strings.Join(lines, " "))) + "</p>\n")
	}
	return b.String()
}
