package report_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cost"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
)

// TestSections pins how plugin sections and plugin failures read in
// report.md (golden report-sections.md), and that report.html escapes
// everything a plugin wrote while keeping its lists and bold text.
func TestSections(t *testing.T) {
	s := summaryWith(t, true)
	s.Prices = &analysis.Prices{GPUPerHour: 3.5, EnergyPerKWh: 0.12}
	sec, err := cost.Section(s)
	require.NoError(t, err)
	s.Sections = []plugin.Section{sec, {
		Plugin: "slo", Title: "Latency <targets>", Markdown: "Targets: **TTFT ≤ 200 ms**.\n\n- A meets\n- B <script>alert(1)</script>",
		Table: &plugin.Table{Columns: []string{"engine", "a|b"}, Rows: [][]string{{"A", "x\ny"}}}, Fields: json.RawMessage(`{"k":1}`),
	}}
	s.PluginFailures = []plugin.Failure{
		{Plugin: "hang", Hook: plugin.HookPost, Error: "post: timeout: no answer within 1m0s, killed", Stderr: "thinking\n"},
		{Plugin: "crash", Hook: plugin.HookPre, Error: "pre: exited: exit status 3"},
	}
	var md, page bytes.Buffer
	require.NoError(t, report.Markdown(&md, s))
	golden(t, "report-sections.md", md.Bytes())

	require.NoError(t, report.HTML(&page, s))
	h := page.String()
	require.NotContains(t, h, "<script>")
	for _, want := range []string{
		"<h2>Cost per million output tokens</h2>",
		"<h2>Latency &lt;targets&gt;</h2>\n<p class=\"note\">From plugin slo.</p>\n<p>Targets: <b>TTFT ≤ 200 ms</b>.</p>\n<ul>\n<li>A meets</li>\n<li>B &lt;script&gt;alert(1)&lt;/script&gt;</li>\n</ul>\n",
		"<tr><th>engine</th><th>a|b</th></tr>\n<tr><td>A</td><td>x\ny</td></tr>",
		"<li>plugin hang failed in its post hook: post: timeout: no answer within 1m0s, killed (stderr: thinking)</li>",
	} {
		require.Contains(t, h, want)
	}
	require.Equal(t, 1, strings.Count(h, "<h2>Plugins that failed</h2>"))
}
