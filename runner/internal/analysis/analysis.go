// Package analysis turns launch records into the versioned summary: per
// engine and case, every metric's raw samples with their statistics, launch
// vs iteration variance, engine-vs-baseline comparisons with Holm correction,
// output parity, and the warnings that travel with them.
package analysis

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/tokenizer"
)

// Metric names one derived metric.
type Metric struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Unit string `json:"unit"`
	// HigherIsBetter is true for throughputs.
	HigherIsBetter bool `json:"higher_is_better"`
	f              func(m metrics.Iteration) (float64, bool)
}

// Metrics are reported for every engine and case, in this order.
var Metrics = []Metric{
	{Key: "ttft_ms", Name: "TTFT", Unit: "ms", f: func(m metrics.Iteration) (float64, bool) { return float64(m.TTFTNs) / 1e6, true }},
	{Key: "tpot_ms", Name: "TPOT", Unit: "ms", f: func(m metrics.Iteration) (float64, bool) { return m.TPOTNs / 1e6, m.Outputs > 1 }},
	{Key: "decode_tps", Name: "decode", Unit: "tok/s", HigherIsBetter: true, f: func(m metrics.Iteration) (float64, bool) { return m.DecodeTPS, m.Outputs > 1 }},
	{Key: "prefill_tps", Name: "prefill", Unit: "tok/s", HigherIsBetter: true, f: func(m metrics.Iteration) (float64, bool) { return m.PrefillTPS, m.TTFTNs > 0 }},
	{Key: "e2e_ms", Name: "E2E", Unit: "ms", f: func(m metrics.Iteration) (float64, bool) { return float64(m.E2ENs) / 1e6, true }},
}

// DesignTarget is the precision the recommended design aims at: a 95%
// launch-level CI of TPOT within ±2% of its value.
const DesignTarget = 0.02

// Schema is the version of summary.json. 2: comparisons are launch-level
// (Welch on launch medians, hierarchical bootstrap), samples carry their
// launch.
const Schema = 2

// Compared are the metric keys compared between engines.
var Compared = []string{"tpot_ms", "ttft_ms", "decode_tps", "e2e_ms"}

// Summary is summary.json.
type Summary struct {
	Schema    int         `json:"schema"`
	Name      string      `json:"name"`
	CreatedAt time.Time   `json:"created_at"`
	Env       envinfo.Env `json:"environment"`
	Request   RequestInfo `json:"request"`
	Baseline  string      `json:"baseline"`
	// Equivalence is the relative margin of the equivalence tests (Options.Equivalence), 0 for none.
	Equivalence float64         `json:"equivalence_margin,omitempty"`
	Engines     []Engine        `json:"engines"`
	Cases       []Case          `json:"cases"`
	Metrics     []Metric        `json:"metrics"`
	Warnings    []string        `json:"warnings,omitempty"`
	Failures    []Failure       `json:"failures,omitempty"`
	Defs        []string        `json:"definitions"`
	Config      json.RawMessage `json:"config,omitempty"`
	// Profile is the kernel profile, when the run had profiled twins.
	Profile *Profile `json:"profile,omitempty"`
	// Prepared are the engines' `ENGINE prepare` runs (PreparedOf).
	Prepared []Prepared `json:"prepared,omitempty"`
	// Prices are the user's prices for the cost section (inputs, not
	// measurements), kept so that `runner report` keeps them.
	Prices *Prices `json:"prices,omitempty"`
	// Sections are report sections from the built-in analyses (cost) and
	// plugins, in order.
	Sections []plugin.Section `json:"sections,omitempty"`
	// PluginFailures are the plugins that failed; the result stands without
	// their sections.
	PluginFailures []plugin.Failure `json:"plugin_failures,omitempty"`
}

// Prices are what the user pays: a GPU's price per hour and electricity per
// kWh (0: not given), in Currency (a symbol such as "$", default "$").
type Prices struct {
	GPUPerHour   float64 `json:"gpu_per_hour,omitempty"`
	EnergyPerKWh float64 `json:"energy_per_kwh,omitempty"`
	Currency     string  `json:"currency,omitempty"`
}

// RequestInfo records the workload every engine received.
type RequestInfo struct {
	Device     string          `json:"device"`
	DType      string          `json:"dtype"`
	Warmup     int             `json:"warmup"`
	Iterations int             `json:"iterations"`
	Cases      []protocol.Case `json:"cases"`
}

// Engine summarises one variant over its launches.
type Engine struct {
	Label    string `json:"label"`
	Name     string `json:"name"`
	Launches int    `json:"launches"`
	Failed   int    `json:"failed"`
	// ColdStart is spawn → loaded in s, over successful launches.
	ColdStart Stat `json:"cold_start_s"`
	// Breakdown is the median of the engine's own cold-start parts, in s.
	Breakdown map[string]float64 `json:"cold_start_breakdown_s,omitempty"`
	// HostCores is, over successful launches, how many host CPU cores the
	// engine's process tree kept busy from loaded to done (results.HostCPU):
	// about 1 for a host-bound launch loop, more with CPU threads.
	HostCores Stat `json:"host_cpu_cores"`
	// HostCPUPerStep is, over successful launches, the host CPU time in ms the
	// engine's process tree spent per generation step (one token per sequence)
	// from loaded to done, warm-up iterations and prefill included: what the
	// engine's host side (an interpreter, a launch loop) costs per token.
	HostCPUPerStep Stat     `json:"host_cpu_ms_per_step"`
	Warnings       []string `json:"warnings,omitempty"`
	// GPU is the median over successful launches of their NVML summaries.
	GPU *GPU `json:"gpu,omitempty"`
	// FirstLaunch sets the engine's first successful launch against its
	// later ones; nil with fewer than 2 (FirstLaunchOf).
	FirstLaunch *FirstLaunch `json:"first_launch,omitempty"`
	// SharedTuning is what the engine said its launches reuse from one
	// tuning pass (loaded.settings.shared_tuning, protocol/README.md): its
	// launch-level CI then covers launch-to-launch variation under that one
	// tuning, not the spread between tunings. "" when it said nothing.
	SharedTuning string `json:"shared_tuning,omitempty"`
}

// CIExcludesOne says whether a ratio's CI [lo, hi] (hi > 0: there is one) lies
// wholly on one side of 1. A comparison whose CI excludes 1 but whose
// launch-level test does not reject is undecided — too few launches, not "the
// same" — which the verdicts and the cost section both say.
func CIExcludesOne(lo, hi float64) bool { return hi > 0 && (lo > 1 || hi < 1) }

// SettingSharedTuning is the loaded.settings key in which an engine says that
// its launches replay one tuning made by an earlier process (an autotune
// store, a compile cache, an ahead-of-time export) and what it is.
const SettingSharedTuning = "shared_tuning"

// FirstLaunch is what an engine's first launch paid that later ones did not:
// the first launch meets cold caches that persist between launches (a
// compile cache, an autotune store, the driver's kernel JIT cache, the page
// cache), so its cold start, compile time and first warm-up iteration show
// the one-time cost a user pays on a fresh machine; the medians over the
// later launches show the warm figure. The launch-level statistics pool all
// launches. Seconds throughout.
type FirstLaunch struct {
	// Launch is the first launch's index (0 unless it failed).
	Launch int `json:"launch"`
	// ColdStartS is its spawn → loaded; CompileS the compile time the engine
	// reported inside that (loaded.compile_ns); LaunchS spawn → exit;
	// FirstWarmupS the E2E of the first warm-up iteration it ran (0 without
	// warm-up).
	ColdStartS   float64 `json:"cold_start_s"`
	CompileS     float64 `json:"compile_s,omitempty"`
	LaunchS      float64 `json:"launch_s"`
	FirstWarmupS float64 `json:"first_warmup_s,omitempty"`
	// Later counts the later launches; the Later* fields are their medians
	// (0 when Later is 0).
	Later             int     `json:"later"`
	LaterColdStartS   float64 `json:"later_cold_start_s"`
	LaterCompileS     float64 `json:"later_compile_s,omitempty"`
	LaterLaunchS      float64 `json:"later_launch_s"`
	LaterFirstWarmupS float64 `json:"later_first_warmup_s,omitempty"`
}

// FirstLaunchOf sets the first of recs' successful, unprofiled launches (by
// launch index, then record order) against the others; recs are one
// engine's. nil when there is none.
func FirstLaunchOf(recs []results.Record) *FirstLaunch {
	type launch struct {
		idx                     int
		cold, comp, total, warm float64
	}
	var ls []launch
	for _, r := range recs {
		if r.Status != results.StatusOK || r.Profiled {
			continue
		}
		l := launch{idx: r.Launch, cold: float64(r.ColdStartNs) / 1e9, total: float64(r.DurationNs) / 1e9}
		if r.Loaded != nil {
			l.comp = float64(r.Loaded.CompileNs) / 1e9
		}
		for _, it := range r.Iterations {
			if it.Raw.Warmup {
				l.warm = float64(it.Metrics.E2ENs) / 1e9
				break
			}
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil
	}
	slices.SortStableFunc(ls, func(a, b launch) int { return a.idx - b.idx })
	f := &FirstLaunch{Launch: ls[0].idx, ColdStartS: ls[0].cold, CompileS: ls[0].comp, LaunchS: ls[0].total, FirstWarmupS: ls[0].warm, Later: len(ls) - 1}
	if f.Later == 0 {
		return f
	}
	var cold, comp, total, warm []float64
	for _, l := range ls[1:] {
		cold, comp, total = append(cold, l.cold), append(comp, l.comp), append(total, l.total)
		if l.warm > 0 {
			warm = append(warm, l.warm)
		}
	}
	med := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		return stats.Summarize(xs).Median
	}
	f.LaterColdStartS, f.LaterCompileS, f.LaterLaunchS, f.LaterFirstWarmupS = med(cold), med(comp), med(total), med(warm)
	return f
}

// GPU is an engine's NVML figures: medians over its launches.
type GPU struct {
	Launches        int      `json:"launches"`
	ProcMemPeakMiB  float64  `json:"proc_mem_peak_mib"`
	DevMemPeakMiB   float64  `json:"dev_mem_peak_mib"`
	EnergyPerTokenJ float64  `json:"energy_per_token_j"`
	PowerMeanW      float64  `json:"power_mean_w"`
	PrefillPowerW   float64  `json:"prefill_power_w"`
	DecodePowerW    float64  `json:"decode_power_w"`
	SMUtilPct       float64  `json:"sm_util_mean_pct"`
	SMClockMHz      float64  `json:"sm_clock_mean_mhz"`
	TempMaxC        float64  `json:"temperature_max_c"`
	SamplerBusyPct  float64  `json:"sampler_busy_pct"`
	Throttled       int      `json:"throttled_launches"`
	Reasons         []string `json:"reasons,omitempty"`
}

// Stat is a statistics summary with its raw samples. The Summary fields
// describe the pooled iterations; Launch is the launch-level estimate (the
// mean of launch medians with its t-interval), the figure verdicts use.
type Stat struct {
	stats.Summary
	Launch  stats.LaunchEstimate `json:"launch"`
	Samples []float64            `json:"samples"`
	// SampleLaunch is the launch (0-based index among the engine's
	// successful launches) of each sample, parallel to Samples.
	SampleLaunch []int `json:"sample_launch"`
}

// Groups returns the samples grouped by launch, in launch order.
func (s Stat) Groups() [][]float64 {
	if len(s.SampleLaunch) != len(s.Samples) {
		return [][]float64{s.Samples} // not recorded: one group
	}
	var gs [][]float64
	for i, x := range s.Samples {
		l := s.SampleLaunch[i]
		for len(gs) <= l {
			gs = append(gs, nil)
		}
		gs[l] = append(gs[l], x)
	}
	return gs
}

// Case holds the results for one workload case.
type Case struct {
	Name        string       `json:"name"`
	Prompt      int          `json:"prompt_tokens"`
	MaxNew      int          `json:"max_new_tokens"`
	Batch       int          `json:"batch_size"`
	Results     []Result     `json:"results"`
	Comparisons []Comparison `json:"comparisons,omitempty"`
	Parity      []Parity     `json:"parity,omitempty"`
	// NotRun are the engines whose launches were not asked this case (their max batch is below its batch: they ran
	// the benchmark's other cases), in the engines' order. They have no row and no comparison here.
	NotRun []string `json:"not_run,omitempty"`
}

// Result is one engine on one case.
type Result struct {
	Engine  string          `json:"engine"`
	Metrics map[string]Stat `json:"metrics"`
	// Launch is launch-level vs iteration-level variance of TPOT (or E2E).
	Launch stats.Variance `json:"launch_variance"`
	// Design is the repetition plan for the next run, from Launch and the
	// measured cost of a launch and of an iteration; nil when not available
	// (fewer than 2 launches).
	Design *stats.LaunchDesign `json:"design,omitempty"`
	// PeakAllocMiB is the largest engine-reported allocator peak.
	PeakAllocMiB float64 `json:"peak_alloc_mib,omitempty"`
	// Tokens is the first timed iteration's first output row.
	Tokens []int `json:"tokens,omitempty"`
	// Text is the first non-empty line of Tokens decoded by the model's
	// tokenizer (at most FirstLineRunes runes); empty when the model
	// directory has no tokenizer the runner decodes (byte-level BPE).
	Text string `json:"text,omitempty"`
	// Deterministic is false when any comparison of Determinism differs
	// (greedy outputs differed between iterations, launches or batch rows);
	// kept for readers of older summaries, Determinism says which.
	Deterministic bool `json:"deterministic"`
	// Determinism compares the greedy output tokens within launches, between
	// launches and between the rows of a batch; nil when there were none.
	Determinism *Determinism `json:"determinism,omitempty"`
	// ITL pools every inter-token gap of the timed iterations, in ms: a
	// descriptive tail-latency view (gaps within an iteration are not
	// independent, so comparisons use iteration-level metrics).
	ITL stats.Summary `json:"itl_ms"`
	// FirstWarmupE2EMs is the median over launches of the first warm-up
	// iteration's E2E, in ms: it shows JIT compilation, autotuning or graph
	// capture that warm-up absorbed (0 without warm-up).
	FirstWarmupE2EMs float64 `json:"first_warmup_e2e_ms,omitempty"`
	// Roofline compares the median decode rate with the weight-bandwidth bound.
	Roofline *roofline.Row `json:"roofline,omitempty"`
}

// Comparison is one engine against the baseline on one metric.
type Comparison struct {
	Engine   string `json:"engine"`
	Baseline string `json:"baseline"`
	Metric   string `json:"metric"`
	stats.Comparison
	// Cards, in a multi-GPU run, are the comparisons made within each card
	// (descriptive: not Holm-corrected). The embedded Comparison is then the
	// combination over cards (Blocked): its T, DF, P and ratio CI come from
	// Blocked, its pooled-iteration figures from every card together. When
	// the cards disagree (Blocked.Disagree) there is no combined verdict:
	// Verdict says "cards disagree".
	Cards   []CardComparison  `json:"cards,omitempty"`
	Blocked *stats.Stratified `json:"blocked,omitempty"`
}

// CardComparison is a comparison made on the launches of one card.
type CardComparison struct {
	Card int    `json:"card"`
	UUID string `json:"uuid,omitempty"`
	stats.Comparison
}

// CardsDisagree is the verdict of a multi-GPU comparison whose cards do not
// agree on the effect (Cochran's Q): no combined verdict is given.
const CardsDisagree = "cards disagree"

// Parity compares an engine's greedy tokens with the baseline's.
type Parity struct {
	Engine   string `json:"engine"`
	Baseline string `json:"baseline"`
	// Matched is the length of the common prefix; Total the compared length.
	Matched int `json:"matched_prefix"`
	Total   int `json:"total"`
	// Agree is the fraction of positions with the same token.
	Agree float64 `json:"agreement"`
}

// Failure is one failed launch.
type Failure struct {
	Engine string `json:"engine"`
	Launch int    `json:"launch"`
	Error  string `json:"error"`
	Stderr string `json:"stderr_tail,omitempty"`
}

// Options are the analysis settings a report is made with.
type Options struct {
	// Equivalence, when > 0, adds to every comparison an equivalence test within ±Equivalence (relative, e.g. 0.02):
	// TOST on the log launch medians, Holm-corrected as a family of its own (stats.Equivalence).
	Equivalence float64
}

// Build analyses the records. labels fixes the engine order (first = baseline
// unless baseline is set).
func Build(name string, env envinfo.Env, req RequestInfo, labels []string, baseline string, recs []results.Record, opts Options) (*Summary, error) {
	if len(labels) == 0 {
		labels = labelsOf(recs)
	}
	if len(labels) == 0 {
		return nil, results.ErrNoRuns
	}
	if baseline == "" {
		baseline = labels[0]
	}
	if !slices.Contains(labels, baseline) {
		return nil, fmt.Errorf("baseline %q is not one of the engines %v", baseline, labels)
	}
	s := &Summary{
		Schema: Schema, Name: name, CreatedAt: env.CreatedAt, Env: env, Request: req,
		Baseline: baseline, Metrics: Metrics, Defs: metrics.Definitions, Equivalence: opts.Equivalence,
	}
	for _, l := range labels {
		s.Engines = append(s.Engines, engineSummary(l, req.DType, recs))
	}
	for _, r := range recs {
		if r.Status != results.StatusOK {
			s.Failures = append(s.Failures, Failure{Engine: r.Engine, Launch: r.Launch, Error: r.Error, Stderr: r.StderrTail})
		}
	}
	var tok *tokenizer.Tokenizer
	if env.Model.Dir != "" {
		tok, _ = tokenizer.Load(env.Model.Dir) // nil: no text, ids only
	}
	var family []Keyed
	for ci, c := range req.Cases {
		cs := Case{Name: c.Name, Prompt: len(c.PromptTokens), MaxNew: c.MaxNewTokens, Batch: c.BatchSize}
		for _, l := range labels {
			if notAsked(l, ci, recs) {
				cs.NotRun = append(cs.NotRun, l)
				continue
			}
			r := caseResult(l, ci, recs)
			theo, meas := theoreticalBandwidth(env), 0.0
			if env.Bandwidth != nil {
				meas = env.Bandwidth.BytesPerSec
			}
			if dec := r.Metrics["decode_tps"]; dec.N > 0 && (theo > 0 || meas > 0) {
				wb := engineWeightBytes(env.Model.WeightBytesPerToken, env.Model.DType, l, recs)
				row := roofline.Compute(wb, c.BatchSize, dec.Median, theo, meas)
				r.Roofline = &row
			}
			if tok != nil && len(r.Tokens) > 0 {
				r.Text = firstLine(tok, r.Tokens)
			}
			cs.Results = append(cs.Results, r)
		}
		base := cs.Result(baseline)
		for _, r := range cs.Results {
			if r.Engine == baseline || base == nil {
				continue
			}
			for _, key := range Compared {
				a, b := base.Metrics[key], r.Metrics[key]
				if len(a.Samples) == 0 || len(b.Samples) == 0 {
					continue
				}
				cmp := stats.Compare(a.Groups(), b.Groups(), stats.CompareOptions{Alpha: 0.05, Resamples: 2000, Seed: 1, Margin: opts.Equivalence})
				c := Comparison{Engine: r.Engine, Baseline: baseline, Metric: key, Comparison: cmp}
				if cards := cardsOf(recs); len(cards) > 0 {
					blockByCard(&c, cards, ci, recs, opts.Equivalence)
				}
				cs.Comparisons = append(cs.Comparisons, c)
			}
			if len(base.Tokens) > 0 && len(r.Tokens) > 0 {
				cs.Parity = append(cs.Parity, parity(r.Engine, baseline, base.Tokens, r.Tokens))
			}
		}
		s.Cases = append(s.Cases, cs)
	}
	for ci := range s.Cases {
		for k := range s.Cases[ci].Comparisons {
			c := &s.Cases[ci].Comparisons[k]
			family = append(family, Keyed{Case: s.Cases[ci].Name, Engine: c.Engine, Metric: c.Metric, C: &c.Comparison})
		}
	}
	hypotheses := AdjustHolm(family)
	for ci := range s.Cases {
		for k := range s.Cases[ci].Comparisons {
			if c := &s.Cases[ci].Comparisons[k]; c.Blocked != nil && c.Blocked.Disagree {
				c.Significant, c.Verdict = false, CardsDisagree
			}
		}
	}
	s.Profile = buildProfile(s, recs)
	if len(family) > 0 {
		k := -1
		for _, e := range s.Engines {
			if ok := e.Launches - e.Failed; ok > 0 && (k < 0 || ok < k) {
				k = ok
			}
		}
		if a := stats.DesignAdvice(max(k, 0), hypotheses, stats.DefaultAlpha); a != "" {
			s.Warnings = append(s.Warnings, a)
		}
	}
	for _, e := range s.Engines {
		if e.Launches-e.Failed == 0 {
			s.Warnings = append(s.Warnings, fmt.Sprintf("%s: no successful launch", e.Label))
		}
	}
	return s, nil
}

// notAsked says whether label's launches all ran a subset of the benchmark's cases without case ci (an engine whose
// max batch is below ci's batch); false when it has no launch or any launch was asked every case.
func notAsked(label string, ci int, recs []results.Record) bool {
	seen := false
	for _, r := range recs {
		if r.Engine != label {
			continue
		}
		if r.Cases == nil || slices.Contains(r.Cases, ci) {
			return false
		}
		seen = true
	}
	return seen
}

func labelsOf(recs []results.Record) []string {
	var out []string
	for _, r := range recs {
		if !slices.Contains(out, r.Engine) {
			out = append(out, r.Engine)
		}
	}
	return out
}

// Case returns the case named name, or nil.
func (s *Summary) Case(name string) *Case {
	for i := range s.Cases {
		if s.Cases[i].Name == name {
			return &s.Cases[i]
		}
	}
	return nil
}

// Result returns the result of the engine labelled label, or nil.
func (c *Case) Result(label string) *Result {
	for i := range c.Results {
		if c.Results[i].Engine == label {
			return &c.Results[i]
		}
	}
	return nil
}

func newStat(xs []float64) Stat {
	if xs == nil {
		xs = []float64{}
	}
	return Stat{Summary: stats.Summarize(xs), Samples: xs}
}

// newLaunchStat summarises samples grouped by launch.
func newLaunchStat(groups [][]float64) Stat {
	xs, of := []float64{}, []int{}
	for l, g := range groups {
		for _, x := range g {
			xs = append(xs, x)
			of = append(of, l)
		}
	}
	st := newStat(xs)
	st.SampleLaunch = of
	st.Launch = stats.EstimateLaunches(groups)
	return st
}

func engineSummary(label, dtype string, recs []results.Record) Engine {
	e := Engine{Label: label}
	var cold, cores, perStep []float64
	var tels []telemetry.Summary
	parts := map[string][]float64{}
	var mine []results.Record
	for _, r := range recs {
		if r.Engine != label {
			continue
		}
		mine = append(mine, r)
		e.Name = r.Spec.Name
		e.Launches++
		for _, w := range r.Warnings {
			e.Warnings = append(e.Warnings, fmt.Sprintf("launch %d: %s", r.Launch+1, w))
		}
		if r.Status != results.StatusOK {
			e.Failed++
			continue
		}
		if len(r.Telemetry) > 0 {
			var t telemetry.Summary
			if err := json.Unmarshal(r.Telemetry, &t); err == nil {
				tels = append(tels, t)
			}
		}
		if r.ColdStartNs > 0 {
			cold = append(cold, float64(r.ColdStartNs)/1e9)
		}
		if h := r.HostCPU; h != nil && h.WallSeconds > 0 {
			cores = append(cores, h.Cores())
			steps := 0
			for _, it := range r.Iterations {
				steps += len(it.Raw.TokenNs)
			}
			if steps > 0 {
				perStep = append(perStep, h.CPUSeconds*1e3/float64(steps))
			}
		}
		if l := r.Loaded; l != nil && l.DType != "" && l.DType != dtype {
			w := fmt.Sprintf("computes in %s although %s was requested (fairness rule 2: compare with care)", l.DType, dtype)
			if !slices.Contains(e.Warnings, w) {
				e.Warnings = append(e.Warnings, w)
			}
		}
		if l := r.Loaded; l != nil && e.SharedTuning == "" {
			e.SharedTuning = l.Settings[SettingSharedTuning]
		}
		if l := r.Loaded; l != nil {
			parts["context_init"] = append(parts["context_init"], float64(l.ContextInitNs)/1e9)
			parts["weights_to_host"] = append(parts["weights_to_host"], float64(l.WeightsToHostNs)/1e9)
			parts["weights_to_device"] = append(parts["weights_to_device"], float64(l.WeightsToDeviceNs)/1e9)
			parts["compile"] = append(parts["compile"], float64(l.CompileNs)/1e9)
			parts["engine_total"] = append(parts["engine_total"], float64(l.TotalNs)/1e9)
		}
	}
	e.ColdStart = newStat(cold)
	if f := FirstLaunchOf(mine); f != nil && f.Later > 0 {
		e.FirstLaunch = f
	}
	e.HostCores = newStat(cores)
	e.HostCPUPerStep = newStat(perStep)
	e.GPU = gpuStats(tels)
	if w := samplerWarning(e.GPU); w != "" {
		e.Warnings = append(e.Warnings, w)
	}
	if len(parts) > 0 {
		e.Breakdown = map[string]float64{}
		for k, xs := range parts {
			e.Breakdown[k] = stats.Summarize(xs).Median
		}
	}
	return e
}

func caseResult(label string, ci int, recs []results.Record) Result {
	res := Result{Engine: label, Metrics: map[string]Stat{}, Deterministic: true}
	if d := determinism(label, ci, recs); d != nil {
		res.Determinism, res.Deterministic = d, d.Consistent()
	}
	for _, m := range Metrics {
		var groups [][]float64
		for _, r := range recs {
			if r.Engine != label || r.Status != results.StatusOK {
				continue
			}
			var g []float64
			for _, it := range r.Iterations {
				if it.Raw.Warmup || it.Raw.Case != ci {
					continue
				}
				if v, ok := m.f(it.Metrics); ok {
					g = append(g, v)
				}
			}
			if len(g) > 0 {
				groups = append(groups, g)
			}
		}
		res.Metrics[m.Key] = newLaunchStat(groups)
	}
	var groups [][]float64
	var peak int64
	var itl, firstWarm, launchCost []float64
	for _, r := range recs {
		if r.Engine != label || r.Status != results.StatusOK {
			continue
		}
		var g []float64
		cost := float64(r.ColdStartNs) / 1e9
		for _, it := range r.Iterations {
			if it.Raw.Case != ci {
				continue
			}
			if it.Raw.Warmup {
				cost += float64(it.Metrics.E2ENs) / 1e9
			}
			peak = max(peak, it.Raw.PeakAllocBytes)
			if len(it.Raw.OutputTokens) > 0 && res.Tokens == nil && !it.Raw.Warmup {
				res.Tokens = it.Raw.OutputTokens[0]
			}
			if it.Raw.Warmup {
				if it.Raw.Index == 0 {
					firstWarm = append(firstWarm, float64(it.Metrics.E2ENs)/1e6)
				}
				continue
			}
			for _, gap := range it.Metrics.ITLNs {
				itl = append(itl, float64(gap)/1e6)
			}
			if it.Metrics.Outputs > 1 {
				g = append(g, it.Metrics.TPOTNs/1e6)
			} else {
				g = append(g, float64(it.Metrics.E2ENs)/1e6)
			}
		}
		if len(g) > 0 {
			groups = append(groups, g)
			launchCost = append(launchCost, cost)
		}
	}
	res.Launch = stats.LaunchVariance(groups)
	if len(groups) > 1 {
		key := "tpot_ms"
		if res.Metrics[key].N == 0 {
			key = "e2e_ms"
		}
		iterS := res.Metrics["e2e_ms"].Median / 1e3
		if d, ok := stats.PlanLaunches(res.Launch, res.Metrics[key].Launch.Mean, stats.Summarize(launchCost).Median, iterS, DesignTarget); ok {
			res.Design = &d
		}
	}
	res.ITL = stats.Summarize(itl)
	if len(firstWarm) > 0 {
		res.FirstWarmupE2EMs = stats.Summarize(firstWarm).Median
	}
	res.PeakAllocMiB = float64(peak) / (1 << 20)
	return res
}

// FirstLineRunes bounds Result.Text.
const FirstLineRunes = 160

// firstLine is the first non-empty line of ids' text, trimmed, cut to
// FirstLineRunes runes; "" when the ids do not decode.
func firstLine(tok *tokenizer.Tokenizer, ids []int) string {
	text, err := tok.Decode(ids)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if r := []rune(l); len(r) > FirstLineRunes {
				l = string(r[:FirstLineRunes]) + "…"
			}
			return l
		}
	}
	return ""
}

func parity(engine, baseline string, a, b []int) Parity {
	p := Parity{Engine: engine, Baseline: baseline, Total: min(len(a), len(b))}
	prefix := true
	same := 0
	for i := 0; i < p.Total; i++ {
		if a[i] == b[i] {
			same++
			if prefix {
				p.Matched++
			}
		} else {
			prefix = false
		}
	}
	if p.Total > 0 {
		p.Agree = float64(same) / float64(p.Total)
	}
	return p
}

func gpuStats(ts []telemetry.Summary) *GPU {
	if len(ts) == 0 {
		return nil
	}
	med := func(f func(t telemetry.Summary) float64) float64 {
		xs := make([]float64, 0, len(ts))
		for _, t := range ts {
			xs = append(xs, f(t))
		}
		return stats.Summarize(xs).Median
	}
	g := &GPU{Launches: len(ts)}
	g.ProcMemPeakMiB = med(func(t telemetry.Summary) float64 { return float64(t.ProcMemPeak) / (1 << 20) })
	g.DevMemPeakMiB = med(func(t telemetry.Summary) float64 { return float64(t.DevMemPeak) / (1 << 20) })
	g.EnergyPerTokenJ = med(func(t telemetry.Summary) float64 { return t.EnergyPerTokenJ })
	g.PowerMeanW = med(func(t telemetry.Summary) float64 { return t.PowerMeanW })
	// A phase too short for any power sample (a ~10 ms prefill between 100 ms samples) has no power (0), not 0 W:
	// the median is over the launches that sampled it, and 0 stays "not measured" (the report prints –).
	medSampled := func(f func(t telemetry.Summary) float64) float64 {
		var xs []float64
		for _, t := range ts {
			if v := f(t); v > 0 {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return 0
		}
		return stats.Summarize(xs).Median
	}
	g.PrefillPowerW = medSampled(func(t telemetry.Summary) float64 { return t.PrefillPowerW })
	g.DecodePowerW = medSampled(func(t telemetry.Summary) float64 { return t.DecodePowerW })
	g.SMUtilPct = med(func(t telemetry.Summary) float64 { return t.SMUtilMean })
	g.SMClockMHz = med(func(t telemetry.Summary) float64 { return t.SMClockMeanMHz })
	g.TempMaxC = med(func(t telemetry.Summary) float64 { return float64(t.TempMaxC) })
	g.SamplerBusyPct = med(func(t telemetry.Summary) float64 { return t.SamplerBusyPct })
	for _, t := range ts {
		if t.Throttled {
			g.Throttled++
		}
		for _, n := range t.ReasonNames {
			if !slices.Contains(g.Reasons, n) {
				g.Reasons = append(g.Reasons, n)
			}
		}
	}
	return g
}

// SamplerBusyWarn is the share of a run the NVML sampler may spend inside
// NVML before the report warns (%). Each energy-counter read takes ~3.5 ms on
// the H200, and an engine's own driver calls wait meanwhile: at 38–45% the
// sampler raised mistral.rs's TTFT 1.85×, at 3–6% nothing was measurable
// (results/h200-2026-12-03).
const SamplerBusyWarn = 10.0

// samplerWarning warns when the sampler's share of the run (median over
// launches) may have slowed the engine.
func samplerWarning(g *GPU) string {
	if g == nil || g.SamplerBusyPct <= SamplerBusyWarn {
		return ""
	}
	return fmt.Sprintf("the NVML sampler spent %.0f%% of each launch inside NVML (median): above %.0f%% it can delay the engine's own "+
		"calls into the driver and inflate TTFT (at 38–45%% it raised mistral.rs's TTFT 1.85×, results/h200-2026-12-03); "+
		"sample less often (--telemetry-interval, default 100ms) or not at all (--no-telemetry)", g.SamplerBusyPct, SamplerBusyWarn)
}

// theoreticalBandwidth reads the datasheet bandwidth from the GPU record.
func theoreticalBandwidth(env envinfo.Env) float64 {
	var d telemetry.Device
	if len(env.GPU) == 0 || json.Unmarshal(env.GPU, &d) != nil {
		return 0
	}
	return d.TheoreticalBandwidth
}
