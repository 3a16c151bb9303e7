// Package bench runs a benchmark: K fresh launches of every engine variant,
// interleaved (A B A B …), each fed the same request, each launch appended
// to runs.jsonl as soon as it ends.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/profile"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

// Variant is one engine configuration being compared.
type Variant struct {
	Spec  config.EngineSpec
	Label string
	// Path is the engine binary.
	Path string
	Info *protocol.Info
	// Profile injects Options.Profiler into this variant's launches.
	Profile bool
	// Cases are the indices of the request's cases this variant runs, in the request's order; nil runs them all.
	// An engine whose max batch is below a case's batch runs the others (CasesFor), so one launch per engine can
	// serve a model's batch-1 and batched workloads alike. Its request holds only these cases; its records keep the
	// full request's case indices.
	Cases []int
}

// CasesFor is the subset of cases an engine that serves batches of up to maxBatch can run, as Variant.Cases:
// nil when it can run them all, an empty non-nil slice when none.
func CasesFor(cases []protocol.Case, maxBatch int) []int {
	mb := max(maxBatch, 1)
	out := []int{}
	for i, c := range cases {
		if c.BatchSize <= mb {
			out = append(out, i)
		}
	}
	if len(out) == len(cases) {
		return nil
	}
	return out
}

// request is the request v's launches receive: the benchmark's, with only v's cases when it runs a subset.
func (v Variant) request(all protocol.Request) protocol.Request {
	if v.Cases == nil {
		return all
	}
	req := all
	req.Cases = make([]protocol.Case, len(v.Cases))
	for i, ci := range v.Cases {
		req.Cases[i] = all.Cases[ci]
	}
	return req
}

// runs says whether v runs the request's case ci.
func (v Variant) runs(ci int) bool { return v.Cases == nil || slices.Contains(v.Cases, ci) }

// Monitor watches the GPU around launches. A nil Monitor means telemetry is off.
type Monitor interface {
	// BeforeLaunch brings the GPU back to idle and checks nobody else holds it.
	// Warnings are recorded with the launch; an error blocks the launch.
	BeforeLaunch(ctx context.Context) ([]string, error)
	// Watch starts sampling the launch's process tree rooted at pid; spawn is
	// the runner-clock origin of Iteration.ArrivedNs.
	Watch(pid int, spawn time.Time) Watch
}

// Watch is the sampling of one launch.
type Watch interface {
	// Stop ends sampling and summarises the launch over its timed iterations.
	Stop(its []results.Iteration) (json.RawMessage, []string)
}

// Observer follows a run as it happens. Phase may be called from another
// goroutine than the other methods.
type Observer interface {
	// LaunchStarted says launch (0-based, of the variant) starts; order
	// counts every launch of the run, planned is the launches planned so far
	// (all variants; adaptive stopping may add more).
	LaunchStarted(label string, launch, order, planned int)
	// Phase says what the running launch is doing: "loading", "warm-up 1/2
	// p128-n256", "timed 3/10 p128-n256".
	Phase(phase string)
	// LaunchDone reports the record of the launch that ended; its progress
	// line, when the run prints one, is line.
	LaunchDone(rec *results.Record, line string)
}

// Options configure a benchmark run.
type Options struct {
	Config   *config.Config
	Variants []Variant
	// Request is the request every launch receives (Threads/Options are set
	// per variant).
	Request protocol.Request
	Writer  *results.Writer
	Monitor Monitor
	// Progress receives one line per launch.
	Progress io.Writer
	// Observer, if set, follows the run live (a progress bar).
	Observer Observer
	// Previous are the records of an interrupted run being resumed (runner
	// bench --resume): their launches count as done, the schedule goes on
	// from where it stopped, and Run returns them with the new ones.
	Previous []results.Record
	// Env is the child environment.
	Env []string
	// Profiler, if set, profiles the launches of variants marked Profile.
	Profiler *Profiler
	// MaxConsecutiveFailures stops launching a variant after that many failed
	// launches in a row (default 2).
	MaxConsecutiveFailures int
	// Cards, when set, run the benchmark on several GPUs at once (runner
	// bench --gpus): see RunCards. Monitor and Observer are then unused.
	Cards []Card
	// Stop, if set, is asked before each launch with the variant's label and
	// every record so far; true ends the run there with ErrStopped, nothing
	// in flight (runner suite --stop-after: a time budget).
	Stop func(label string, recs []results.Record) bool
}

// InterruptedError is the Error of a launch that an interrupt (Ctrl-C) cut
// short: recorded so the report shows it, dropped by a resume, which runs the
// launch again.
const InterruptedError = "interrupted by the user"

// ErrStopped is Run's error when Options.Stop ended it before a launch.
var ErrStopped = errors.New("stopped before the next launch (time budget)")

// Run executes the benchmark and returns every record written. An interrupt
// stops it after killing the running engine; records already written stay.
func Run(ctx context.Context, o Options) ([]results.Record, error) {
	reqBytes, err := requests(o)
	if err != nil {
		return nil, err
	}
	prep := newPreparer(o, reqBytes)
	if len(o.Cards) > 0 {
		prep.all(ctx)
		return runCards(ctx, o, reqBytes)
	}
	cfg := o.Config
	maxFail := o.MaxConsecutiveFailures
	if maxFail == 0 {
		maxFail = 2
	}
	maxLaunches := cfg.Launches
	var deadline time.Time
	if a := cfg.Adaptive; a != nil {
		maxLaunches = a.MaxLaunches
		if a.MaxDuration.Duration > 0 {
			deadline = time.Now().Add(a.MaxDuration.Duration)
		}
	}
	all := append([]results.Record{}, o.Previous...)
	failStreak := make([]int, len(o.Variants))
	launched := make([]int, len(o.Variants))
	order := 0
	for _, r := range o.Previous {
		for i, v := range o.Variants {
			if r.Engine != v.Label {
				continue
			}
			launched[i]++
			if r.Status == results.StatusOK {
				failStreak[i] = 0
			} else {
				failStreak[i]++
			}
		}
		order = max(order, r.Order+1)
	}
	begin := time.Now()
	for round := 0; round < maxLaunches; round++ {
		for i, v := range o.Variants {
			if failStreak[i] >= maxFail || launched[i] > round { // given up, or done before a resume
				continue
			}
			if err := ctx.Err(); err != nil {
				return all, fmt.Errorf("benchmark interrupted: %w", err)
			}
			if o.Stop != nil && o.Stop(v.Label, all) {
				return all, ErrStopped
			}
			prep.variant(ctx, i)
			if err := ctx.Err(); err != nil {
				return all, fmt.Errorf("benchmark interrupted: %w", err)
			}
			if why := prep.gaveUp(i); why != "" {
				// Recorded as a failed launch that never started, once: the variant is given up for this run.
				rec := results.Record{Engine: v.Label, Spec: v.Spec, Launch: launched[i], Order: order, Status: results.StatusFailed,
					Exit: -1, StartedAt: time.Now().UTC(), Error: why}
				launched[i]++
				order++
				failStreak[i] = maxFail
				if err := o.Writer.Append(&rec); err != nil {
					return all, err
				}
				all = append(all, rec)
				progress(o.Progress, "  %s: %s\n", v.Label, why)
				continue
			}
			if o.Observer != nil {
				o.Observer.LaunchStarted(v.Label, launched[i], order, max(round+1, cfg.Launches)*len(o.Variants))
			}
			rec := launchOne(ctx, o, v, reqBytes[i], launched[i], order, placement{monitor: o.Monitor, env: launchEnv(o, v, launched[i])})
			finishProfile(o, v, &rec)
			launched[i]++
			order++
			if err := o.Writer.Append(&rec); err != nil {
				return all, err
			}
			all = append(all, rec)
			if rec.Status == results.StatusOK {
				failStreak[i] = 0
			} else {
				failStreak[i]++
				if failStreak[i] == maxFail {
					progress(o.Progress, "  %s: %d failed launches in a row, not launching it again\n", v.Label, maxFail)
				}
			}
			line := formatProgress(&rec, time.Since(begin))
			if o.Observer != nil {
				o.Observer.LaunchDone(&rec, line)
			} else {
				progress(o.Progress, "%s", line)
			}
		}
		if ctx.Err() != nil {
			return all, fmt.Errorf("benchmark interrupted: %w", ctx.Err())
		}
		if round+1 < cfg.Launches {
			continue
		}
		if cfg.Adaptive == nil {
			break
		}
		done, why := adaptiveDone(cfg, o, all, time.Since(begin))
		if !deadline.IsZero() && time.Now().After(deadline) {
			progress(o.Progress, "  adaptive: time cap %s reached\n", cfg.Adaptive.MaxDuration.Duration)
			break
		}
		if done {
			progress(o.Progress, "  adaptive: %s\n", why)
			break
		}
		if round+1 == maxLaunches {
			progress(o.Progress, "  adaptive: launch cap %d reached before the CI target (%s)\n", maxLaunches, why)
		}
	}
	return all, nil
}

// requests encodes the request each variant's launches receive.
func requests(o Options) ([][]byte, error) {
	reqBytes := make([][]byte, len(o.Variants))
	for i, v := range o.Variants {
		req := v.request(o.Request)
		req.Threads = v.Spec.Threads
		req.Options = v.Spec.Options
		b, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode request for %s: %w", v.Label, err)
		}
		reqBytes[i] = b
	}
	return reqBytes, nil
}

// adaptiveDone reports whether every variant × case has a launch-level
// estimate of TPOT (or E2E for single-token cases) — the geometric mean of launch
// medians — whose 95% CI over launches is narrower than the target. Launches
// are the unit, so the rule adds launches; more iterations in the same
// launches would not narrow a CI dominated by launch-to-launch variance.
func adaptiveDone(cfg *config.Config, o Options, recs []results.Record, elapsed time.Duration) (bool, string) {
	target := cfg.Adaptive.TargetRelCI
	for _, v := range o.Variants {
		for ci, c := range o.Request.Cases {
			if !v.runs(ci) {
				continue
			}
			gs := LaunchSamples(recs, v.Label, ci, func(m metrics.Iteration) float64 {
				if c.MaxNewTokens > 1 {
					return m.TPOTNs
				}
				return float64(m.E2ENs)
			})
			if len(gs) == 0 {
				continue // a variant that never succeeded cannot narrow its CI
			}
			e := stats.EstimateLaunches(gs)
			switch {
			case e.Launches < minAdaptiveLaunches:
				return false, fmt.Sprintf("%s/%s: %d of at least %d launches", v.Label, c.Name, e.Launches, minAdaptiveLaunches)
			case !(target > 0):
				return false, "no CI target: running to a cap"
			case !e.HasCI || e.RelHalfWidth > target:
				return false, fmt.Sprintf("%s/%s: launch-level CI ±%.2f%% > target ±%.2f%% (%d launches)", v.Label, c.Name, 100*e.RelHalfWidth, 100*target, e.Launches)
			}
		}
	}
	return true, fmt.Sprintf("every launch-level CI within ±%.1f%% (elapsed %s)", 100*target, elapsed.Round(time.Second))
}

// minAdaptiveLaunches is the fewest launches before a launch-level CI may
// stop an adaptive run: with 2, its t quantile (12.7) makes any CI a guess.
const minAdaptiveLaunches = 3

// LaunchSamples collects one metric over the timed iterations of a variant's
// successful launches for one case, one group per launch.
func LaunchSamples(recs []results.Record, label string, caseIdx int, f func(metrics.Iteration) float64) [][]float64 {
	var gs [][]float64
	for i := range recs {
		r := &recs[i]
		if r.Engine != label || r.Status != results.StatusOK {
			continue
		}
		var xs []float64
		for j := range r.Iterations {
			it := &r.Iterations[j]
			if it.Raw.Warmup || it.Raw.Case != caseIdx {
				continue
			}
			xs = append(xs, f(it.Metrics))
		}
		if len(xs) > 0 {
			gs = append(gs, xs)
		}
	}
	return gs
}

// placement is where one launch runs: the monitor of its GPU, the child
// environment, and, on a card of a multi-GPU run, its card and CPUs.
type placement struct {
	monitor Monitor
	env     []string
	cpus    []int
	card    *results.Card
}

func launchOne(ctx context.Context, o Options, v Variant, req []byte, launch, order int, pl placement) results.Record {
	rec := results.Record{
		Engine: v.Label, Spec: v.Spec, Launch: launch, Order: order, Cases: v.Cases,
		Status: results.StatusFailed, Exit: -1, StartedAt: time.Now().UTC(), Card: pl.card,
	}
	vreq := v.request(o.Request)
	if pl.monitor != nil {
		warnings, err := pl.monitor.BeforeLaunch(ctx)
		rec.Warnings = append(rec.Warnings, warnings...)
		if err != nil {
			rec.Error = fmt.Sprintf("GPU hygiene: %v", err)
			return rec
		}
	}
	t := o.Config.Timeouts
	var watch Watch
	var spawned time.Time
	var pid int
	var cpuAtLoad float64
	var loadedAt time.Time
	cases := vreq.Cases
	st := stream{req: &vreq}
	res := spawn.Launch(ctx, spawn.Options{
		Path: v.Path, Args: []string{"run"}, Env: pl.env, Stdin: req, CPUs: pl.cpus,
		Timeouts: spawn.Timeouts{Start: t.Start.Duration, Stall: t.Stall.Duration, Total: t.Total.Duration},
	}, func(p int) {
		phase(o, "loading")
		pid = p
		spawned = time.Now()
		rec.SpawnMonoNs = profile.MonoNs()
		st.last = spawned
		if pl.monitor != nil {
			watch = pl.monitor.Watch(p, spawned)
		}
	}, func(ev spawn.Received) error {
		if err := st.check(ev); err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
		switch ev.Event.Type {
		case protocol.EventLoaded:
			phase(o, nextPhase(&vreq, 0))
			rec.ColdStartNs = int64(ev.At.Sub(spawned))
			rec.Loaded = ev.Event.Loaded
			cpuAtLoad, loadedAt = telemetry.TreeCPUSeconds(pid), ev.At
		case protocol.EventIteration:
			it := ev.Event.Iteration
			if err := checkIteration(it, cases); err != nil {
				return fmt.Errorf("fairness: %w", err)
			}
			raw := *it
			if v.Cases != nil {
				raw.Case = v.Cases[it.Case] // the benchmark's case index, as every record keeps it
			}
			rec.Iterations = append(rec.Iterations, results.Iteration{
				CaseName:  cases[it.Case].Name,
				ArrivedNs: int64(ev.At.Sub(spawned)),
				Raw:       raw,
				Metrics:   metrics.FromIteration(it),
			})
			phase(o, nextPhase(&vreq, len(rec.Iterations)))
		case protocol.EventDone:
			if ev.Event.Done.Iterations != len(rec.Iterations) {
				return fmt.Errorf("done event counts %d iterations, %d received", ev.Event.Done.Iterations, len(rec.Iterations))
			}
			if !loadedAt.IsZero() {
				rec.HostCPU = &results.HostCPU{
					CPUSeconds:  telemetry.TreeCPUSeconds(pid) - cpuAtLoad,
					WallSeconds: ev.At.Sub(loadedAt).Seconds(),
				}
			}
		}
		return nil
	})
	rec.Warnings = append(rec.Warnings, res.Warnings...)
	if watch != nil {
		tel, warnings := watch.Stop(rec.Iterations)
		rec.Telemetry = tel
		rec.Warnings = append(rec.Warnings, warnings...)
	}
	rec.Exit = res.Exit
	if !res.Started.IsZero() {
		rec.DurationNs = int64(time.Since(res.Started))
	}
	if res.Err != nil {
		rec.Error = res.Err.Error()
		rec.StderrTail = res.StderrTail
		if errors.Is(res.Err, spawn.ErrInterrupted) {
			rec.Error = InterruptedError
		}
		if errors.Is(res.Err, spawn.ErrStartTimeout) || errors.Is(res.Err, spawn.ErrStallTimeout) || errors.Is(res.Err, spawn.ErrTotalTimeout) {
			rec.Error += " " + waitingFor(rec.Loaded != nil, len(rec.Iterations), vreq)
		}
		return rec
	}
	want := len(cases) * (vreq.Warmup + vreq.Iterations)
	if len(rec.Iterations) != want {
		rec.Error = fmt.Sprintf("fairness: %d iterations received, want %d", len(rec.Iterations), want)
		return rec
	}
	rec.Status = results.StatusOK
	return rec
}

// waitingFor says where in the request an engine was when a timeout ended its
// launch: loading, or which iteration of which case it owed next. Engines
// answer the cases in order, each with its warm-up iterations first.
func waitingFor(loaded bool, done int, req protocol.Request) string {
	if !loaded {
		return "(before the engine reported its model loaded)"
	}
	per := req.Warmup + req.Iterations
	total := per * len(req.Cases)
	if per == 0 || done >= total {
		return fmt.Sprintf("(all %d iterations received, waiting for done)", total)
	}
	c, k := done/per, done%per
	if k < req.Warmup {
		return fmt.Sprintf("(waiting for warm-up iteration %d/%d of case %s, %d of %d iterations done; "+
			"an engine that compiles or autotunes kernels in its warm-up may need a longer timeouts.stall)",
			k+1, req.Warmup, req.Cases[c].Name, done, total)
	}
	return fmt.Sprintf("(waiting for timed iteration %d/%d of case %s, %d of %d iterations done)",
		k-req.Warmup+1, req.Iterations, req.Cases[c].Name, done, total)
}

// checkIteration enforces fairness rule 1: the iteration answers a known
// case, with exactly the requested tokens for every sequence.
func checkIteration(it *protocol.Iteration, cases []protocol.Case) error {
	if it.Case < 0 || it.Case >= len(cases) {
		return fmt.Errorf("iteration names case %d, request has %d", it.Case, len(cases))
	}
	c := &cases[it.Case]
	if len(it.OutputTokens) != c.BatchSize {
		return fmt.Errorf("case %s: %d output rows, batch size is %d", c.Name, len(it.OutputTokens), c.BatchSize)
	}
	if len(it.TokenNs) != c.MaxNewTokens {
		return fmt.Errorf("case %s: %d output tokens, want exactly %d", c.Name, len(it.TokenNs), c.MaxNewTokens)
	}
	if it.PromptTokens != len(c.PromptTokens) {
		return fmt.Errorf("case %s: engine processed %d prompt tokens, request has %d", c.Name, it.PromptTokens, len(c.PromptTokens))
	}
	return nil
}

func progress(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format, a...)
	}
}

// formatProgress is the one progress line of a finished launch.
func formatProgress(r *results.Record, elapsed time.Duration) string {
	if r.Status != results.StatusOK {
		return fmt.Sprintf("[%3d %7s] %-28s launch %d FAILED: %s\n", r.Order+1, elapsed.Round(time.Second), r.Engine, r.Launch+1, r.Error)
	}
	var tpot []float64
	for _, it := range r.Iterations {
		if !it.Raw.Warmup && it.Metrics.Outputs > 1 {
			tpot = append(tpot, it.Metrics.TPOTNs/1e6)
		}
	}
	s := stats.Summarize(tpot)
	return fmt.Sprintf("[%3d %7s] %-28s launch %d ok: %d iterations, cold start %.2fs, TPOT median %.3f ms\n",
		r.Order+1, elapsed.Round(time.Second), r.Engine, r.Launch+1, len(r.Iterations), float64(r.ColdStartNs)/1e9, s.Median)
}

func phase(o Options, p string) {
	if o.Observer != nil {
		o.Observer.Phase(p)
	}
}

// nextPhase names what a launch does after receiving done iterations: the
// engine runs each case's warm-up, then its timed iterations, case by case.
func nextPhase(req *protocol.Request, done int) string {
	per := req.Warmup + req.Iterations
	if per == 0 || done >= per*len(req.Cases) {
		return "finishing"
	}
	c, k := done/per, done%per
	name := req.Cases[c].Name
	if k < req.Warmup {
		return fmt.Sprintf("warm-up %d/%d %s", k+1, req.Warmup, name)
	}
	return fmt.Sprintf("timed %d/%d %s", k-req.Warmup+1, req.Iterations, name)
}
