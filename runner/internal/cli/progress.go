package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// liveProgress is the terminal progress of a benchmark: one bar over the
// launches (done/total, elapsed, ETA from the launches already finished) whose
// description is the running launch's engine and phase, with each finished
// launch's line printed above it. Off a terminal the run prints only the
// plain lines (bench.Options.Progress), so CI logs stay readable.
type liveProgress struct {
	w     io.Writer
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	label string
	begin time.Time
	done  int
}

func newLiveProgress(w io.Writer, planned int) *liveProgress {
	p := &liveProgress{w: w, begin: time.Now()}
	p.bar = progressbar.NewOptions(planned,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("launches"),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
	return p
}

// LaunchStarted implements bench.Observer.
func (p *liveProgress) LaunchStarted(label string, launch, order, planned int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if planned > p.bar.GetMax() {
		p.bar.ChangeMax(planned)
	}
	p.label = fmt.Sprintf("%s #%d", label, launch+1)
	p.bar.Describe(p.label + ": starting")
}

// Phase implements bench.Observer.
func (p *liveProgress) Phase(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.label == "" { // before the first launch (an engine's preparation)
		p.bar.Describe(phase)
		return
	}
	p.bar.Describe(p.label + ": " + phase)
}

// Note implements bench.Noter: a line printed above the bar.
func (p *liveProgress) Note(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
	fmt.Fprint(p.w, line)
	_ = p.bar.RenderBlank()
}

// LaunchDone implements bench.Observer.
func (p *liveProgress) LaunchDone(rec *results.Record, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
	fmt.Fprint(p.w, line)
	p.done++
	_ = p.bar.Add(1)
}

// Close removes the bar.
func (p *liveProgress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.bar.Clear()
}
