// Package cost is the built-in cost analysis: what a million output tokens
// cost per engine and case, from the user's GPU price per hour and the
// measured time, and from the measured energy per token and the user's
// electricity price; tokens per currency unit; and the cheapest engine of
// each case in words. It is a plugin.Analyzer that runs in-process on
// summary.json like any plugin.
package cost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// Name is the built-in plugin's name.
const Name = "cost"

// JoulesPerKWh converts an electricity price per kWh to one per J.
const JoulesPerKWh = 3.6e6

// ErrNoPrice means the summary carries no price to compute a cost from.
var ErrNoPrice = errors.New("no price given: --gpu-price 3.50/h and/or --energy-price 0.12/kWh")

// Analyzer computes the cost section from a summary's Prices.
type Analyzer struct{}

// Name is "cost".
func (Analyzer) Name() string { return Name }

// Post decodes summary.json and returns the cost section.
func (Analyzer) Post(_ context.Context, summary json.RawMessage) ([]plugin.Section, error) {
	var s analysis.Summary
	if err := json.Unmarshal(summary, &s); err != nil {
		return nil, fmt.Errorf("decode summary: %w", err)
	}
	sec, err := Section(&s)
	if err != nil {
		return nil, err
	}
	return []plugin.Section{sec}, nil
}

// Interval is an estimate with its 95% CI (Lo = Hi = Value without one).
type Interval struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	HasCI bool    `json:"has_ci"`
}

// scale multiplies an interval by k > 0.
func (iv Interval) scale(k float64) Interval {
	return Interval{Value: iv.Value * k, Lo: iv.Lo * k, Hi: iv.Hi * k, HasCI: iv.HasCI}
}

// inverse is k / iv: the bounds swap.
func (iv Interval) inverse(k float64) Interval {
	return Interval{Value: k / iv.Value, Lo: k / iv.Hi, Hi: k / iv.Lo, HasCI: iv.HasCI}
}

// Row is one engine on one case.
type Row struct {
	Case   string `json:"case"`
	Engine string `json:"engine"`
	// TokensPerIteration is max_new_tokens × batch size: the output tokens
	// an iteration is paid for.
	TokensPerIteration int `json:"output_tokens_per_iteration"`
	// SecondsPerMTok is the GPU time of a million output tokens, E2E /
	// (new tokens × batch) × 10⁶, in s; its CI is E2E's launch-level CI.
	SecondsPerMTok *Interval `json:"gpu_seconds_per_mtok,omitempty"`
	// GPUPerMTok is SecondsPerMTok × the GPU price per second.
	GPUPerMTok *Interval `json:"gpu_cost_per_mtok,omitempty"`
	// TokensPerUnit is output tokens per currency unit of GPU time.
	TokensPerUnit *Interval `json:"tokens_per_currency_unit,omitempty"`
	// EnergyJPerToken is NVML's energy per output token, the engine's median
	// over launches (no CI), in J.
	EnergyJPerToken float64 `json:"energy_j_per_token,omitempty"`
	// EnergyPerMTok is EnergyJPerToken × 10⁶ × the price per J.
	EnergyPerMTok float64 `json:"energy_cost_per_mtok,omitempty"`
}

// Versus is another engine against the cheapest of a case.
type Versus struct {
	Engine string `json:"engine"`
	// Ratio is its cost over the cheapest's, with the CI of the launch-level
	// comparison of E2E (GPU time only).
	Ratio   float64 `json:"ratio"`
	RatioLo float64 `json:"ratio_lo,omitempty"`
	RatioHi float64 `json:"ratio_hi,omitempty"`
	// P is the launch-level p of that comparison, Holm-adjusted over the
	// section (GPU time only).
	P           float64 `json:"p_holm,omitempty"`
	HasTest     bool    `json:"has_test,omitempty"`
	Significant bool    `json:"significant,omitempty"`
}

// Cheapest is the cheapest engine of a case by one cost.
type Cheapest struct {
	Case string `json:"case"`
	// By is "gpu_time" or "energy".
	By      string   `json:"by"`
	Engine  string   `json:"engine"`
	PerMTok Interval `json:"cost_per_mtok"`
	Others  []Versus `json:"others,omitempty"`
}

// Fields are the section's machine-readable figures.
type Fields struct {
	Prices   analysis.Prices `json:"prices"`
	Rows     []Row           `json:"rows"`
	Cheapest []Cheapest      `json:"cheapest"`
}

// Compute derives the cost figures of every engine and case.
func Compute(s *analysis.Summary) (Fields, error) {
	if s.Prices == nil || (s.Prices.GPUPerHour <= 0 && s.Prices.EnergyPerKWh <= 0) {
		return Fields{}, ErrNoPrice
	}
	p := *s.Prices
	if p.Currency == "" {
		p.Currency = "$"
	}
	f := Fields{Prices: p, Rows: []Row{}, Cheapest: []Cheapest{}}
	energy := map[string]float64{}
	for _, e := range s.Engines {
		if e.GPU != nil && e.GPU.EnergyPerTokenJ > 0 {
			energy[e.Label] = e.GPU.EnergyPerTokenJ
		}
	}
	var family []*stats.Comparison
	var famVs []*Versus // into the Others of f.Cheapest (shared backing arrays)
	for _, c := range s.Cases {
		tokens := c.MaxNew * max(c.Batch, 1)
		var rows []Row
		for _, r := range c.Results {
			row := Row{Case: c.Name, Engine: r.Engine, TokensPerIteration: tokens}
			if e2e, ok := e2eSeconds(r.Metrics["e2e_ms"]); ok && tokens > 0 {
				spm := e2e.scale(1e6 / float64(tokens))
				row.SecondsPerMTok = &spm
				if p.GPUPerHour > 0 {
					gpu := spm.scale(p.GPUPerHour / 3600)
					row.GPUPerMTok = &gpu
					tpu := gpu.inverse(1e6)
					row.TokensPerUnit = &tpu
				}
			}
			if j, ok := energy[r.Engine]; ok {
				row.EnergyJPerToken = j
				if p.EnergyPerKWh > 0 {
					row.EnergyPerMTok = j * 1e6 * p.EnergyPerKWh / JoulesPerKWh
				}
			}
			rows = append(rows, row)
		}
		f.Rows = append(f.Rows, rows...)
		if p.GPUPerHour > 0 {
			if ch, ok := cheapestByTime(c, rows); ok {
				for i := range ch.Others {
					o := &ch.Others[i]
					cmp := stats.Compare(c.Result(ch.Engine).Metrics["e2e_ms"].Groups(), c.Result(o.Engine).Metrics["e2e_ms"].Groups(),
						stats.CompareOptions{Alpha: stats.DefaultAlpha, Resamples: 2000, Seed: 1})
					if cmp.HasRatio {
						o.RatioLo, o.RatioHi = cmp.RatioLo, cmp.RatioHi
					}
					family = append(family, &cmp)
					famVs = append(famVs, o)
				}
				f.Cheapest = append(f.Cheapest, ch)
			}
		}
		if p.EnergyPerKWh > 0 {
			if ch, ok := cheapestByEnergy(c.Name, rows); ok {
				f.Cheapest = append(f.Cheapest, ch)
			}
		}
	}
	stats.AdjustHolm(family)
	for i, cmp := range family {
		v := famVs[i]
		v.HasTest, v.P, v.Significant = cmp.HasTest, cmp.PAdj, cmp.Significant
	}
	return f, nil
}

// e2eSeconds is the launch-level E2E estimate in s with its CI: the
// geometric mean of launch medians and its t-interval over launches, or
// with one launch the median of its iterations (no CI).
func e2eSeconds(st analysis.Stat) (Interval, bool) {
	if st.N == 0 {
		return Interval{}, false
	}
	if l := st.Launch; l.Launches > 0 && l.Mean > 0 {
		iv := Interval{Value: l.Mean, Lo: l.Mean, Hi: l.Mean}
		if l.HasCI && l.Lo > 0 {
			iv.Lo, iv.Hi, iv.HasCI = l.Lo, l.Hi, true
		}
		return iv.scale(1e-3), true
	}
	if st.Median <= 0 {
		return Interval{}, false
	}
	return Interval{Value: st.Median, Lo: st.Median, Hi: st.Median}.scale(1e-3), true
}

func cheapestByTime(c analysis.Case, rows []Row) (Cheapest, bool) {
	best := -1
	for i, r := range rows {
		if r.GPUPerMTok != nil && (best < 0 || r.GPUPerMTok.Value < rows[best].GPUPerMTok.Value) {
			best = i
		}
	}
	if best < 0 {
		return Cheapest{}, false
	}
	ch := Cheapest{Case: c.Name, By: "gpu_time", Engine: rows[best].Engine, PerMTok: *rows[best].GPUPerMTok}
	for i, r := range rows {
		if i != best && r.GPUPerMTok != nil {
			ch.Others = append(ch.Others, Versus{Engine: r.Engine, Ratio: r.GPUPerMTok.Value / ch.PerMTok.Value})
		}
	}
	return ch, true
}

func cheapestByEnergy(caseName string, rows []Row) (Cheapest, bool) {
	best := -1
	for i, r := range rows {
		if r.EnergyPerMTok > 0 && (best < 0 || r.EnergyPerMTok < rows[best].EnergyPerMTok) {
			best = i
		}
	}
	if best < 0 {
		return Cheapest{}, false
	}
	v := rows[best].EnergyPerMTok
	ch := Cheapest{Case: caseName, By: "energy", Engine: rows[best].Engine, PerMTok: Interval{Value: v, Lo: v, Hi: v}}
	for i, r := range rows {
		if i != best && r.EnergyPerMTok > 0 {
			ch.Others = append(ch.Others, Versus{Engine: r.Engine, Ratio: r.EnergyPerMTok / v})
		}
	}
	return ch, true
}

// Section computes the cost figures and lays them out as a report section.
func Section(s *analysis.Summary) (plugin.Section, error) {
	f, err := Compute(s)
	if err != nil {
		return plugin.Section{}, err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return plugin.Section{}, fmt.Errorf("encode cost fields: %w", err)
	}
	return plugin.Section{Plugin: Name, Title: "Cost per million output tokens", Markdown: prose(s, f), Table: table(f), Fields: b}, nil
}

func table(f Fields) *plugin.Table {
	cur := f.Prices.Currency
	gpu, en := f.Prices.GPUPerHour > 0, f.Prices.EnergyPerKWh > 0
	t := &plugin.Table{Columns: []string{"case", "engine", "GPU time s / 1M out tok [95% CI]"}}
	if gpu {
		t.Columns = append(t.Columns, cur+" GPU time / 1M out tok [95% CI]", "out tok per "+cur+" [95% CI]")
	}
	t.Columns = append(t.Columns, "energy J / out tok")
	if en {
		t.Columns = append(t.Columns, cur+" energy / 1M out tok")
	}
	for _, r := range f.Rows {
		row := []string{r.Case, r.Engine, interval(r.SecondsPerMTok)}
		if gpu {
			row = append(row, interval(r.GPUPerMTok), interval(r.TokensPerUnit))
		}
		row = append(row, orDash(r.EnergyJPerToken))
		if en {
			row = append(row, orDash(r.EnergyPerMTok))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func prose(s *analysis.Summary, f Fields) string {
	var b strings.Builder
	cur := f.Prices.Currency
	var in []string
	if f.Prices.GPUPerHour > 0 {
		in = append(in, fmt.Sprintf("GPU %s%s per hour", cur, strconv.FormatFloat(f.Prices.GPUPerHour, 'f', -1, 64)))
	}
	if f.Prices.EnergyPerKWh > 0 {
		in = append(in, fmt.Sprintf("electricity %s%s per kWh", cur, strconv.FormatFloat(f.Prices.EnergyPerKWh, 'f', -1, 64)))
	}
	fmt.Fprintf(&b, "Prices are the user's inputs, not measurements: %s.\n\n", strings.Join(in, ", "))
	for _, ch := range f.Cheapest {
		fmt.Fprintf(&b, "- %s\n", Words(ch, cur))
	}
	if len(f.Cheapest) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("GPU time per output token = E2E / (new tokens × batch): the GPU is paid for every second of an iteration, " +
		"prefill included, so E2E per output token (not TPOT) is what a user pays for; idle time between requests is not counted. " +
		"Its 95% CI is the launch-level CI of E2E (geometric mean of launch medians, t-interval over launches) carried through: " +
		"cost is proportional to E2E. \"Costs k× as much\" is the launch-level comparison of E2E, Holm-adjusted over this section.")
	if f.Prices.EnergyPerKWh > 0 {
		b.WriteString(" Energy cost = NVML energy per output token (timed iterations, prefill included, every sequence of a batch counted) × " +
			"price per kWh / 3.6 MJ: the median over launches, without a CI. A GPU's hourly price usually includes its power, " +
			"so the two costs are alternatives, not to be added.")
		if len(s.Cases) > 1 {
			b.WriteString(" NVML summarises a launch, not a case: energy per token is each engine's over all its cases.")
		}
		if !hasEnergy(f) {
			b.WriteString(" No engine has NVML energy figures (no GPU telemetry), so there is no energy cost.")
		}
	}
	return b.String()
}

func hasEnergy(f Fields) bool {
	for _, r := range f.Rows {
		if r.EnergyJPerToken > 0 {
			return true
		}
	}
	return false
}

// Words says one case's cheapest engine, e.g. "p128-n128: **b is the
// cheapest by GPU time**, $0.32 [0.31, 0.33] per 1M output tokens; a costs
// 1.05× as much [95% CI 0.98–1.13×], no significant difference (launch-level
// p = 0.787, Holm)".
func Words(ch Cheapest, cur string) string {
	if ch.By == "energy" {
		w := fmt.Sprintf("%s: **%s is the cheapest by energy**, %s%s per 1M output tokens", ch.Case, ch.Engine, cur, num(ch.PerMTok.Value, 3))
		var parts []string
		for _, o := range ch.Others {
			parts = append(parts, fmt.Sprintf("%s %s× as much", o.Engine, num(o.Ratio, 3)))
		}
		if len(parts) > 0 {
			w += "; " + strings.Join(parts, ", ")
		}
		return w + " (medians over launches, no CI)"
	}
	w := fmt.Sprintf("%s: **%s is the cheapest by GPU time**, %s%s per 1M output tokens", ch.Case, ch.Engine, cur, interval(&ch.PerMTok))
	if len(ch.Others) == 0 {
		return w + " (the only engine with timings)"
	}
	var parts []string
	for _, o := range ch.Others {
		ci := ""
		if o.RatioHi > 0 {
			ci = fmt.Sprintf(" [95%% CI %s–%s×]", num(o.RatioLo, 3), num(o.RatioHi, 3))
		}
		switch {
		case !o.HasTest:
			parts = append(parts, fmt.Sprintf("%s costs %s× as much%s, untested (a launch-level test needs at least 2 launches per engine)", o.Engine, num(o.Ratio, 3), ci))
		case o.Significant:
			parts = append(parts, fmt.Sprintf("%s costs %s× as much%s, launch-level p %s (Holm)", o.Engine, num(o.Ratio, 3), ci, pval(o.P)))
		case analysis.CIExcludesOne(o.RatioLo, o.RatioHi):
			// The CI excludes 1 but the test does not reject: too few launches, not "the same" (as the verdicts say it).
			parts = append(parts, fmt.Sprintf("%s costs %s× as much%s, not significant: too few launches to decide (launch-level p %s, Holm)", o.Engine, num(o.Ratio, 3), ci, pval(o.P)))
		default:
			parts = append(parts, fmt.Sprintf("%s costs %s× as much%s, no significant difference (launch-level p %s, Holm)", o.Engine, num(o.Ratio, 3), ci, pval(o.P)))
		}
	}
	return w + "; " + strings.Join(parts, "; ")
}

func interval(iv *Interval) string {
	if iv == nil {
		return "—"
	}
	if !iv.HasCI {
		return num(iv.Value, 4)
	}
	return fmt.Sprintf("%s [%s, %s]", num(iv.Value, 4), num(iv.Lo, 4), num(iv.Hi, 4))
}

func orDash(v float64) string {
	if v <= 0 {
		return "—"
	}
	return num(v, 4)
}

func pval(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return "= " + strconv.FormatFloat(p, 'f', 3, 64)
}

// num prints v with sig significant digits, no exponent.
func num(v float64, sig int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	if v == 0 {
		return "0"
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	return strconv.FormatFloat(v, 'f', max(sig-1-mag, 0), 64)
}

// ParsePrice reads a price such as "3.50", "3.50/h", "$3.50/h" or
// "€0.12/kWh". unit is the per-unit suffix allowed ("h" or "kWh", with
// aliases), optional in s; a leading currency symbol is returned (default
// "").
func ParsePrice(s, unit string) (value float64, currency string, err error) {
	orig := s
	s = strings.TrimSpace(s)
	for _, sym := range []string{"$", "€", "£", "¥"} {
		if strings.HasPrefix(s, sym) {
			currency, s = sym, strings.TrimSpace(strings.TrimPrefix(s, sym))
			break
		}
	}
	if num, per, ok := strings.Cut(s, "/"); ok {
		per = strings.ToLower(strings.TrimSpace(per))
		var units []string
		switch unit {
		case "h":
			units = []string{"h", "hr", "hour"}
		case "kWh":
			units = []string{"kwh"}
		}
		found := false
		for _, u := range units {
			found = found || per == u
		}
		if !found {
			return 0, "", fmt.Errorf("price %q: per %q, want per %s", orig, per, unit)
		}
		s = strings.TrimSpace(num)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, "", fmt.Errorf("price %q: want a positive number per %s, e.g. 3.50/%s", orig, unit, unit)
	}
	return v, currency, nil
}
