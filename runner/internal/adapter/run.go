package adapter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// Schema is the version of adapter.json.
const Schema = 1

// Files of an adapter directory.
const (
	SummaryFile = "adapter.json"
	ReportFile  = "report.md"
	RequestFile = "native-request.json"
)

// Launcher runs one runner launch of the engine (round counts from 1) with
// its results under dir, and returns the launch's timed iterations.
type Launcher func(ctx context.Context, round int, dir string) ([]Iteration, error)

// Options of Run.
type Options struct {
	Params
	Rounds    int
	Tolerance float64
	// Spin adds, each round, a native run next to a goroutine that keeps one
	// more CPU busy (the runner's own process tree keeps a second CPU out of
	// idle; this tells whether that alone moves the native figure).
	Spin bool
	// Metrics to judge (MetricDecode, MetricTTFT); TTFT only where the tool
	// gives it.
	Metrics []string
	// Dir is the check's directory (it exists); Env is the native tools'
	// environment; Progress gets a line per run (nil: none).
	Dir      string
	Env      []string
	Progress io.Writer
	// NativeTimeout bounds one native run (0: none).
	NativeTimeout time.Duration
	// Prime runs one runner launch before round 1, recorded as side "prime" (round 0) and judged nowhere: a
	// machine's first process reads the model from disk and warms the driver's caches (on the H200, 2026-12-03, a
	// first launch ran 22 s against ~5 s and decoded 14% slower), which would fall on round 1's first side alone.
	Prime bool
}

// RunResult is one run of a side: a native process or a runner launch.
type RunResult struct {
	Round int    `json:"round"`
	Side  string `json:"side"` // native, native+spin, runner
	// Path is the run's output, relative to the check's directory.
	Path string `json:"path"`
	// Iterations are the timed iterations (warm-ups left out).
	Iterations []Iteration `json:"iterations"`
	Seconds    float64     `json:"seconds"`
	Error      string      `json:"error,omitempty"`
}

// Summary is adapter.json.
type Summary struct {
	Schema    int         `json:"schema"`
	Engine    string      `json:"engine"`
	Tool      string      `json:"tool"`
	Command   string      `json:"native_command"`
	Params    Params      `json:"params"`
	Rounds    int         `json:"rounds"`
	Tolerance float64     `json:"tolerance"`
	StartedAt time.Time   `json:"started_at"`
	Runs      []RunResult `json:"runs"`
	// Verdicts are native vs runner per metric; SpinVerdicts native+spin vs
	// runner (diagnostic, not gating).
	Verdicts     []Verdict `json:"verdicts"`
	SpinVerdicts []Verdict `json:"spin_verdicts,omitempty"`
	// Within is true when every verdict is within tolerance.
	Within bool `json:"within"`
	// Card is the GPU of the runner's launches ("name uuid", from their
	// environment.json; "" without NVML), Library the engine's library and
	// version as its info reports them, Commit the runner's git commit.
	Card    string `json:"card,omitempty"`
	Library string `json:"library,omitempty"`
	Commit  string `json:"git_commit,omitempty"`
	// Tokens compares the first output ids of every timed iteration that
	// printed them with the runner's first one (not gating).
	Tokens string   `json:"tokens,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// SidePrime is the priming launch's side (Options.Prime): in the record, in no verdict.
const SidePrime = "prime"

// ErrNoRuns is returned when a side has no successful run.
var ErrNoRuns = errors.New("no successful run")

// Run alternates, for each round, the native tool and one runner launch
// (native first in odd rounds, the runner first in even ones), writes each run's raw output, adapter.json and report.md into o.Dir, and
// returns the summary. A failed run is recorded and the rounds go on; the
// error is ErrNoRuns (wrapped) when a side has none.
func Run(ctx context.Context, n *Native, o Options, launch Launcher) (*Summary, error) {
	s := &Summary{Schema: Schema, Engine: n.Engine, Tool: n.Tool, Params: o.Params, Rounds: o.Rounds, Tolerance: o.Tolerance,
		StartedAt: time.Now().UTC()}
	s.Params.Getenv = nil
	if n.Note != "" {
		s.Notes = append(s.Notes, n.Note)
	}
	cmd, err := n.Command(ctx, o.Params)
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", n.Engine, err)
	}
	s.Command = cmd.String()
	if len(cmd.Stdin) > 0 {
		if err := os.WriteFile(filepath.Join(o.Dir, RequestFile), cmd.Stdin, 0o644); err != nil {
			return nil, err
		}
	}
	sides := []string{"native"}
	if o.Spin {
		sides = append(sides, "native+spin")
	}
	runNatives := func(r int) {
		for _, side := range sides {
			if ctx.Err() != nil {
				return
			}
			res := runNative(ctx, n, cmd, o, r, side)
			s.Runs = append(s.Runs, res)
			progress(o.Progress, res)
		}
	}
	runRunner := func(r int) {
		if ctx.Err() != nil {
			return
		}
		res := RunResult{Round: r, Side: "runner", Path: fmt.Sprintf("runner-r%d", r)}
		start := time.Now()
		its, err := launch(ctx, r, filepath.Join(o.Dir, res.Path))
		res.Seconds = time.Since(start).Seconds()
		res.Iterations = timed(its)
		if err != nil {
			res.Error = err.Error()
		} else if len(res.Iterations) == 0 {
			res.Error = "no timed iteration"
		}
		s.Runs = append(s.Runs, res)
		progress(o.Progress, res)
	}
	if o.Prime && ctx.Err() == nil {
		res := RunResult{Round: 0, Side: SidePrime, Path: "prime"}
		start := time.Now()
		its, err := launch(ctx, 0, filepath.Join(o.Dir, res.Path))
		res.Seconds, res.Iterations = time.Since(start).Seconds(), timed(its)
		if err != nil {
			res.Error = err.Error()
		}
		s.Runs = append(s.Runs, res)
		progress(o.Progress, res)
	}
	for r := 1; r <= o.Rounds; r++ {
		// ABBA: odd rounds run the native tool first, even rounds the runner first, so a drift over the check (a
		// card or host warming up: the H200's candle check of 2026-12-02 rose 30% from round 1 to round 4 on both
		// sides) falls on both sides alike instead of favouring the side that always runs second.
		if r%2 == 1 {
			runNatives(r)
			runRunner(r)
		} else {
			runRunner(r)
			runNatives(r)
		}
		if err := ctx.Err(); err != nil {
			return s, finish(s, n, o, err)
		}
	}
	return s, finish(s, n, o, nil)
}

func progress(w io.Writer, r RunResult) {
	if w == nil {
		return
	}
	if r.Error != "" {
		fmt.Fprintf(w, "adapter: round %d %s FAILED after %.1f s: %s\n", r.Round, r.Side, r.Seconds, firstLine(r.Error))
		return
	}
	var d []float64
	for _, it := range r.Iterations {
		d = append(d, it.DecodeTokS)
	}
	fmt.Fprintf(w, "adapter: round %d %s: median decode %.2f tok/s over %d iterations (%.1f s)\n",
		r.Round, r.Side, median(d), len(d), r.Seconds)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// finish computes the verdicts and writes adapter.json and report.md; cause
// (an interruption) wins over the verdicts' own error.
func finish(s *Summary, n *Native, o Options, cause error) error {
	metrics := o.Metrics
	if len(metrics) == 0 {
		metrics = []string{MetricDecode, MetricTTFT}
	}
	if !n.TTFT {
		metrics = slices.DeleteFunc(slices.Clone(metrics), func(m string) bool { return m == MetricTTFT })
	}
	s.Within = true
	for _, m := range metrics {
		v := Compare(m, groups(s.Runs, "native", m), groups(s.Runs, "runner", m), rounds(s.Runs, "native", m), o.Tolerance)
		s.Verdicts = append(s.Verdicts, v)
		s.Within = s.Within && v.Within
		if o.Spin {
			s.SpinVerdicts = append(s.SpinVerdicts, Compare(m, groups(s.Runs, "native+spin", m), groups(s.Runs, "runner", m),
				rounds(s.Runs, "native+spin", m), o.Tolerance))
		}
	}
	s.Tokens = tokens(s.Runs)
	environment(s, o.Dir)
	err := cause
	for _, side := range []string{"native", "runner"} {
		if len(groups(s.Runs, side, MetricDecode)) == 0 && err == nil {
			err = fmt.Errorf("adapter %s: %w on the %s side (see %s)", n.Engine, ErrNoRuns, side, o.Dir)
		}
	}
	if err != nil {
		s.Within = false
	}
	if werr := writeJSON(filepath.Join(o.Dir, SummaryFile), s); werr != nil && err == nil {
		err = werr
	}
	if werr := os.WriteFile(filepath.Join(o.Dir, ReportFile), []byte(Report(s)), 0o644); werr != nil && err == nil {
		err = werr
	}
	return err
}

// MetricValues are the iterations' values of a metric (MetricDecode, MetricTTFT), positive ones only.
func MetricValues(its []Iteration, metric string) []float64 {
	var out []float64
	for _, it := range its {
		x := it.DecodeTokS
		if metric == MetricTTFT {
			x = it.TTFTMs
		}
		if x > 0 {
			out = append(out, x)
		}
	}
	return out
}

// groups returns, per successful run of a side, its timed values of a metric.
func groups(runs []RunResult, side, metric string) [][]float64 {
	var out [][]float64
	for _, r := range runs {
		if r.Side != side || r.Error != "" {
			continue
		}
		if g := MetricValues(r.Iterations, metric); len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// rounds pairs, per round where both ran, the run median of a native side
// with the runner launch's (the order of the rounds).
func rounds(runs []RunResult, side, metric string) []Pair {
	med := func(r RunResult) float64 {
		g := groups([]RunResult{r}, r.Side, metric)
		if len(g) == 0 {
			return 0
		}
		return stats.Summarize(g[0]).Median
	}
	byRound := map[int][2]float64{}
	var order []int
	for _, r := range runs {
		if r.Side != side && r.Side != "runner" {
			continue
		}
		m := med(r)
		if m <= 0 {
			continue
		}
		v, seen := byRound[r.Round]
		if !seen {
			order = append(order, r.Round)
		}
		if r.Side == "runner" {
			v[1] = m
		} else {
			v[0] = m
		}
		byRound[r.Round] = v
	}
	var out []Pair
	for _, k := range order {
		if v := byRound[k]; v[0] > 0 && v[1] > 0 {
			out = append(out, Pair{Round: k, Native: v[0], Runner: v[1]})
		}
	}
	return out
}

// environment fills the card, library and commit from the first runner
// launch's environment.json.
func environment(s *Summary, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "runner-r*", "*", results.EnvFile))
	s.Card, s.Library, s.Commit = LaunchEnvironment(files)
}

// LaunchEnvironment reads runner launches' environment.json files: the card ("name uuid") of the first that names a
// GPU ("" without NVML), and the engine library and runner commit of the first readable one.
func LaunchEnvironment(files []string) (card, library, commit string) {
	read := false
	for _, f := range files {
		var env envinfo.Env
		b, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(b, &env) != nil {
			continue
		}
		if !read {
			read, commit = true, env.GitCommit
			for _, info := range env.Engines {
				library = strings.TrimSpace(info.Library + " " + info.LibraryVersion)
			}
		}
		var gpu struct {
			Name string `json:"name"`
			UUID string `json:"uuid"`
		}
		if len(env.GPU) > 0 && json.Unmarshal(env.GPU, &gpu) == nil && gpu.Name != "" {
			return strings.TrimSpace(gpu.Name + " " + gpu.UUID), library, commit
		}
	}
	return "", library, commit
}

// tokens says whether the native and runner sides produced the same first
// output ids ("" when a side printed none).
func tokens(runs []RunResult) string {
	var ref []int
	for _, r := range runs {
		if r.Side == "runner" && len(r.Iterations) > 0 && len(r.Iterations[0].FirstIDs) > 0 {
			ref = r.Iterations[0].FirstIDs
			break
		}
	}
	if ref == nil {
		return ""
	}
	n, checked := 0, 0
	for _, r := range runs {
		if r.Side == SidePrime {
			continue
		}
		for _, it := range r.Iterations {
			if len(it.FirstIDs) == 0 {
				continue
			}
			checked++
			k := min(len(ref), len(it.FirstIDs))
			if !slices.Equal(ref[:k], it.FirstIDs[:k]) {
				return fmt.Sprintf("first output ids differ: runner %v, %s round %d %v", ref, r.Side, r.Round, it.FirstIDs)
			}
			if r.Side != "runner" {
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("first output ids %v agree in all %d timed iterations that print them (%d native)", ref, checked, n)
}

func timed(its []Iteration) []Iteration {
	var out []Iteration
	for _, it := range its {
		if !it.Warmup {
			out = append(out, it)
		}
	}
	return out
}

// runNative runs the native tool once, its stdout and stderr into
// native-rN.{out,err} (native-spin-rN.* with spin).
func runNative(ctx context.Context, n *Native, cmd Cmd, o Options, round int, side string) RunResult {
	base := fmt.Sprintf("native-r%d", round)
	if side == "native+spin" {
		base = fmt.Sprintf("native-spin-r%d", round)
	}
	res := RunResult{Round: round, Side: side, Path: base + ".out"}
	if o.NativeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.NativeTimeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args...)
	c.Dir = o.WorkDir
	c.Env = o.Env
	if len(cmd.Env) > 0 {
		if c.Env == nil {
			c.Env = os.Environ()
		}
		c.Env = append(slices.Clip(c.Env), cmd.Env...)
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	if len(cmd.Stdin) > 0 {
		c.Stdin = bytes.NewReader(cmd.Stdin)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	var stop func()
	if side == "native+spin" {
		stop = spin()
	}
	start := time.Now()
	err := c.Run()
	res.Seconds = time.Since(start).Seconds()
	if stop != nil {
		stop()
	}
	_ = os.WriteFile(filepath.Join(o.Dir, base+".out"), stdout.Bytes(), 0o644)
	_ = os.WriteFile(filepath.Join(o.Dir, base+".err"), stderr.Bytes(), 0o644)
	its, perr := n.Parse(stdout.Bytes())
	res.Iterations = timed(its)
	switch {
	case err != nil && len(res.Iterations) == 0:
		res.Error = fmt.Sprintf("%s: %v: %s", n.Tool, err, tail(stderr.Bytes(), 600))
	case perr != nil:
		res.Error = fmt.Sprintf("%s output: %v", n.Tool, perr)
	case len(res.Iterations) == 0:
		res.Error = fmt.Sprintf("%s printed no timed iteration (see %s)", n.Tool, base+".out")
	}
	// A non-zero exit with iterations printed (mistralrs native exits 1
	// when its own check fails) keeps the iterations.
	return res
}

// spin keeps one goroutine busy on its own thread until stop is called.
func spin() (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(exited)
		for i := 0; ; i++ {
			if i%(1<<16) == 0 {
				select {
				case <-done:
					return
				default:
				}
			}
		}
	}()
	return func() { close(done); <-exited }
}

func tail(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
