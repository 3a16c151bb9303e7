// Package observer checks whether the runner's own GPU sampling changes what it measures (the observer effect):
// the same engine, model and workload launched with the NVML sampler off and at each sampling setting to test, in
// rounds that rotate the order (a Latin square, so drift over the check falls on every setting alike), and each
// setting's decode tok/s and TTFT compared with "off" paired by round — the adapter check's verdict
// (adapter.Compare), with the sampler off as the reference side.
//
// Why it exists: on the H200 an energy-counter read takes ~3.5 ms, and sampling every 10 ms raised mistral.rs's TTFT
// 1.85× (results/h200-2026-12-03). A sampling setting is only as good as this check says on the card in question.
package observer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// Schema is the version of observer.json.
const Schema = 1

// Files of an observer directory.
const (
	SummaryFile = "observer.json"
	ReportFile  = "report.md"
)

// Off is the reference mode: no sampler at all.
const Off = "off"

// Mode is one sampling setting: its name as given and the `runner bench` flags it stands for.
type Mode struct {
	Name  string   `json:"name"`
	Flags []string `json:"flags"`
}

// ParseModes reads a comma-separated list of modes: off (--no-telemetry), default (the runner's defaults),
// DURATION (--telemetry-interval DURATION, e.g. 10ms) and pDURATION (the default sampler plus --power-interval
// DURATION, e.g. p10ms). off must be among them (it is what the others are compared with), and at least one other.
func ParseModes(s string) ([]Mode, error) {
	var modes []Mode
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		name := strings.TrimSpace(f)
		if name == "" {
			continue
		}
		if seen[name] {
			return nil, fmt.Errorf("mode %q given twice", name)
		}
		seen[name] = true
		m := Mode{Name: name}
		switch {
		case name == Off:
			m.Flags = []string{"--no-telemetry"}
		case name == "default":
			m.Flags = []string{}
		case strings.HasPrefix(name, "p"):
			d, err := time.ParseDuration(name[1:])
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("mode %q: want pDURATION with a positive duration, e.g. p10ms", name)
			}
			m.Flags = []string{"--power-interval", d.String()}
		default:
			d, err := time.ParseDuration(name)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("mode %q: want off, default, a sampling interval (e.g. 100ms) or pDURATION (e.g. p10ms)", name)
			}
			m.Flags = []string{"--telemetry-interval", d.String()}
		}
		modes = append(modes, m)
	}
	if !seen[Off] {
		return nil, errors.New("modes: off must be one of them (the reference the others are compared with)")
	}
	if len(modes) < 2 {
		return nil, errors.New("modes: want off and at least one sampling setting, e.g. off,100ms")
	}
	return modes, nil
}

// PrimeMode names the priming launch in the record (Options.Prime): the sampler off, judged nowhere.
const PrimeMode = "prime"

func offMode(modes []Mode) Mode {
	for _, m := range modes {
		if m.Name == Off {
			return m
		}
	}
	return Mode{Name: Off, Flags: []string{"--no-telemetry"}}
}

// Order is the launch order of round r (from 1): the modes rotated by r−1, so over len(modes) rounds each mode
// runs once in each position.
func Order(modes []Mode, round int) []Mode {
	k := (round - 1) % len(modes)
	return append(append([]Mode{}, modes[k:]...), modes[:k]...)
}

// Launch is what one launch gave: its timed iterations (warm-ups left out by the caller or here) and the share of
// its sampled span the sampler spent in NVML (nil without a sampler).
type Launch struct {
	Iterations     []adapter.Iteration
	SamplerBusyPct *float64
}

// Launcher runs one launch of the engine in a mode, its results under dir.
type Launcher func(ctx context.Context, round int, mode Mode, dir string) (Launch, error)

// Options of Run.
type Options struct {
	Modes     []Mode
	Rounds    int
	Tolerance float64
	// Prime runs one launch before round 1 (sampler off), recorded as round 0 and judged nowhere: the first
	// process on a machine reads the model from disk and fills the driver's caches (on the H200, 2026-12-03:
	// mistral.rs's first launch 22 s and 14% slower decode, the others ~5 s), which would fall on round 1's first
	// mode alone.
	Prime bool
	// Dir is the check's directory (it exists); Progress gets a line per launch (nil: none).
	Dir      string
	Progress io.Writer
	// Params describe the workload, for the record (observer.json, report.md).
	Params Params
}

// Params is the workload of the check.
type Params struct {
	Engine     string            `json:"engine"`
	Options    map[string]string `json:"options,omitempty"`
	Model      string            `json:"model"`
	Device     string            `json:"device"`
	DType      string            `json:"dtype"`
	Case       string            `json:"case"`
	Warmup     int               `json:"warmup"`
	Iterations int               `json:"iterations"`
}

// Result is one launch in the record.
type Result struct {
	Round int    `json:"round"`
	Mode  string `json:"mode"`
	// Path is the launch's results directory, relative to the check's.
	Path           string              `json:"path"`
	Iterations     []adapter.Iteration `json:"iterations"`
	SamplerBusyPct *float64            `json:"sampler_busy_pct,omitempty"`
	Seconds        float64             `json:"seconds"`
	Error          string              `json:"error,omitempty"`
}

// ModeVerdicts are one mode's verdicts against off.
type ModeVerdicts struct {
	Mode string `json:"mode"`
	// SamplerBusyPct is the median over the mode's launches (nil: none sampled).
	SamplerBusyPct *float64          `json:"sampler_busy_pct,omitempty"`
	Verdicts       []adapter.Verdict `json:"verdicts"`
}

// Summary is observer.json.
type Summary struct {
	Schema    int            `json:"schema"`
	Params    Params         `json:"params"`
	Modes     []Mode         `json:"modes"`
	Rounds    int            `json:"rounds"`
	Tolerance float64        `json:"tolerance"`
	StartedAt time.Time      `json:"started_at"`
	Card      string         `json:"card,omitempty"`
	Commit    string         `json:"git_commit,omitempty"`
	Launches  []Result       `json:"launches"`
	Results   []ModeVerdicts `json:"results"`
	// Within is true when every verdict of every mode is within tolerance: no effect of that size.
	Within bool `json:"within"`
}

// ErrNoLaunches is returned when off, or every other mode, has no successful launch.
var ErrNoLaunches = errors.New("no successful launch")

// Run launches every mode once per round in Order, writes observer.json and report.md into o.Dir and returns the
// summary. A failed launch is recorded and the rounds go on. An interruption (ctx) ends the rounds and still writes
// what finished.
func Run(ctx context.Context, o Options, launch Launcher) (*Summary, error) {
	s := &Summary{Schema: Schema, Params: o.Params, Modes: o.Modes, Rounds: o.Rounds, Tolerance: o.Tolerance, StartedAt: time.Now().UTC()}
	first := 1
	if o.Prime {
		first = 0
	}
	for r := first; r <= o.Rounds && ctx.Err() == nil; r++ {
		order := []Mode{offMode(o.Modes)} // round 0: the priming launch
		if r > 0 {
			order = Order(o.Modes, r)
		}
		for _, m := range order {
			if ctx.Err() != nil {
				break
			}
			res := Result{Round: r, Mode: m.Name, Path: fmt.Sprintf("r%d-%s", r, m.Name)}
			if r == 0 {
				res.Mode, res.Path = PrimeMode, "r0-prime"
			}
			start := time.Now()
			l, err := launch(ctx, r, m, filepath.Join(o.Dir, res.Path))
			res.Seconds = time.Since(start).Seconds()
			for _, it := range l.Iterations {
				if !it.Warmup {
					res.Iterations = append(res.Iterations, it)
				}
			}
			res.SamplerBusyPct = l.SamplerBusyPct
			if err != nil {
				res.Error = err.Error()
			} else if len(res.Iterations) == 0 {
				res.Error = "no timed iteration"
			}
			s.Launches = append(s.Launches, res)
			progress(o.Progress, res)
		}
	}
	return s, finish(s, o, ctx.Err())
}

func progress(w io.Writer, r Result) {
	if w == nil {
		return
	}
	if r.Error != "" {
		fmt.Fprintf(w, "observer: round %d %s FAILED after %.1f s: %s\n", r.Round, r.Mode, r.Seconds, r.Error)
		return
	}
	busy := ""
	if r.SamplerBusyPct != nil {
		busy = fmt.Sprintf(", sampler busy %.1f%%", *r.SamplerBusyPct)
	}
	fmt.Fprintf(w, "observer: round %d %s: median decode %.2f tok/s, TTFT %.3f ms over %d iterations%s (%.1f s)\n", r.Round, r.Mode,
		median(values(r, adapter.MetricDecode)), median(values(r, adapter.MetricTTFT)), len(r.Iterations), busy, r.Seconds)
}

// finish computes every mode's verdicts against off and writes the record; cause (an interruption) wins over the
// verdicts' own error.
func finish(s *Summary, o Options, cause error) error {
	s.Within = true
	offOK := len(groups(s.Launches, Off, adapter.MetricDecode)) > 0
	othersOK := false
	for _, m := range o.Modes {
		if m.Name == Off {
			continue
		}
		mv := ModeVerdicts{Mode: m.Name, SamplerBusyPct: busyMedian(s.Launches, m.Name)}
		for _, metric := range []string{adapter.MetricDecode, adapter.MetricTTFT} {
			v := adapter.Compare(metric, groups(s.Launches, Off, metric), groups(s.Launches, m.Name, metric), pairs(s.Launches, m.Name, metric), o.Tolerance)
			mv.Verdicts = append(mv.Verdicts, v)
			s.Within = s.Within && v.Within
		}
		othersOK = othersOK || len(groups(s.Launches, m.Name, adapter.MetricDecode)) > 0
		s.Results = append(s.Results, mv)
	}
	environment(s, o.Dir)
	err := cause
	if err == nil && (!offOK || !othersOK) {
		err = fmt.Errorf("observer %s: %w with the sampler off or in every other mode (see %s)", o.Params.Engine, ErrNoLaunches, o.Dir)
	}
	if err != nil {
		s.Within = false
	}
	b, jerr := json.MarshalIndent(s, "", "  ")
	if jerr == nil {
		jerr = os.WriteFile(filepath.Join(o.Dir, SummaryFile), append(b, '\n'), 0o644)
	}
	if jerr != nil && err == nil {
		err = jerr
	}
	if werr := os.WriteFile(filepath.Join(o.Dir, ReportFile), []byte(Report(s)), 0o644); werr != nil && err == nil {
		err = werr
	}
	return err
}

// values are a launch's timed values of a metric (positive ones only).
func values(r Result, metric string) []float64 { return adapter.MetricValues(r.Iterations, metric) }

// groups are, per successful launch of a mode, its timed values of a metric.
func groups(launches []Result, mode, metric string) [][]float64 {
	var out [][]float64
	for _, r := range launches {
		if r.Mode != mode || r.Error != "" {
			continue
		}
		if g := values(r, metric); len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// pairs are, per round where both ran, off's launch median (the adapter's native side) and the mode's.
func pairs(launches []Result, mode, metric string) []adapter.Pair {
	byRound := map[int][2]float64{}
	var order []int
	for _, r := range launches {
		if (r.Mode != mode && r.Mode != Off) || r.Error != "" {
			continue
		}
		g := values(r, metric)
		if len(g) == 0 {
			continue
		}
		v, seen := byRound[r.Round]
		if !seen {
			order = append(order, r.Round)
		}
		if r.Mode == Off {
			v[0] = median(g)
		} else {
			v[1] = median(g)
		}
		byRound[r.Round] = v
	}
	var out []adapter.Pair
	for _, k := range order {
		if v := byRound[k]; v[0] > 0 && v[1] > 0 {
			out = append(out, adapter.Pair{Round: k, Native: v[0], Runner: v[1]})
		}
	}
	return out
}

func busyMedian(launches []Result, mode string) *float64 {
	var xs []float64
	for _, r := range launches {
		if r.Mode == mode && r.Error == "" && r.SamplerBusyPct != nil {
			xs = append(xs, *r.SamplerBusyPct)
		}
	}
	if len(xs) == 0 {
		return nil
	}
	m := median(xs)
	return &m
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return stats.Summarize(xs).Median
}
