package report

import (
	"encoding/json"
	"io"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// Row is one line of JSONL output: one engine × case × metric with its
// statistics and, for a non-baseline engine, its comparison with the
// baseline.
type Row struct {
	Case   string `json:"case"`
	Engine string `json:"engine"`
	Metric string `json:"metric"`
	Unit   string `json:"unit"`
	// N counts timed iterations; Launches the launches behind Value.
	N        int `json:"n"`
	Launches int `json:"launches"`
	// Value is the launch-level figure (geometric mean of launch medians)
	// and Lo, Hi its 95% CI over launches; Median is the pooled median.
	Value  float64 `json:"value"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	Median float64 `json:"median"`
	// Comparison with the baseline, absent for the baseline itself.
	Baseline    string   `json:"baseline,omitempty"`
	Ratio       *float64 `json:"ratio,omitempty"`
	RatioLo     *float64 `json:"ratio_lo,omitempty"`
	RatioHi     *float64 `json:"ratio_hi,omitempty"`
	PHolm       *float64 `json:"p_holm,omitempty"`
	Significant *bool    `json:"significant,omitempty"`
	Verdict     string   `json:"verdict,omitempty"`
}

// JSONL writes one JSON object per engine, case and metric, for `| jq`.
func JSONL(w io.Writer, s *analysis.Summary) error {
	enc := json.NewEncoder(w)
	for _, c := range s.Cases {
		for _, r := range c.Results {
			for _, m := range analysis.Metrics {
				st := r.Metrics[m.Key]
				row := Row{Case: c.Name, Engine: r.Engine, Metric: m.Key, Unit: m.Unit, N: st.N, Launches: st.Launch.Launches,
					Value: st.Launch.Mean, Lo: st.Launch.Lo, Hi: st.Launch.Hi, Median: st.Median}
				for _, cm := range c.Comparisons {
					if cm.Engine == r.Engine && cm.Metric == m.Key {
						cm := cm
						row.Baseline, row.Ratio, row.RatioLo, row.RatioHi = cm.Baseline, &cm.Ratio, &cm.RatioLo, &cm.RatioHi
						row.PHolm, row.Significant, row.Verdict = &cm.PAdj, &cm.Significant, cm.Verdict
					}
				}
				if err := enc.Encode(row); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
