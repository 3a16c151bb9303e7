package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

func TestProfileSection(t *testing.T) {
	s := &analysis.Summary{Profile: &analysis.Profile{
		Rows: []analysis.ProfileRow{{Engine: "pytorch-eager", Case: "p128-n128", Launches: 2, Iterations: 10,
			WallUs: 30000, BusyUs: 3000, IdleUs: 27000, Kernels: 600, Memcpys: 1, MemcpyBytes: 8, WeightGBs: 733, MeasuredGBs: 4248, Pct: 17.3,
			Top: []analysis.ProfileKernel{{Name: "gemv<a&b>", Share: 0.6, Us: 1800, PerStep: 155}, {Name: "other", Share: 0.4, Us: 1200, PerStep: 445}}}},
		Overhead: []analysis.ProfileOverhead{{Engine: "pytorch-eager", Case: "p128-n128",
			Comparison: stats.Comparison{HasRatio: true, Ratio: 0.9, RatioLo: 0.85, RatioHi: 0.95, EstimateA: 33, EstimateB: 29.7, LaunchesA: 2, LaunchesB: 2}}},
	}}
	var md, h bytes.Buffer
	p := &printer{w: &md}
	profileMarkdown(p, s)
	ph := &printer{w: &h}
	profileHTML(ph, s)
	for _, want := range []string{"| pytorch-eager | p128-n128 | 2 | 30000 | 3000 | 27000 | 90% | 600 |", "`gemv<a&b>` 60.0%, 1800 µs, 155× (11.61 µs each)", "ratio 0.900 [0.850, 0.950] (-10.0%)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("profileMarkdown() lacks %q:\n%s", want, md.String())
		}
	}
	for _, want := range []string{"<svg", "gemv&lt;a&amp;b&gt;", "idle: 27000 µs", "profiler overhead"} {
		if !strings.Contains(h.String(), want) {
			t.Errorf("profileHTML() lacks %q:\n%s", want, h.String())
		}
	}
	var empty bytes.Buffer
	profileMarkdown(&printer{w: &empty}, &analysis.Summary{})
	if empty.Len() != 0 {
		t.Errorf("profileMarkdown(no profile) = %q, want nothing", empty.String())
	}
}
