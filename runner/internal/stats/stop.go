package stats

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// StopRule decides when to stop iterating: once the 95% CI of the median is
// narrow enough relative to the median, or a cap is hit. MaxSamples and
// MaxDuration are hard caps and win over MinSamples, so a slow engine cannot
// run forever; set at least one of them (Validate checks).
type StopRule struct {
	// TargetRelHalfWidth is the goal for (hi-lo)/2/|median| of the median's
	// CI, e.g. 0.01 for ±1%; 0 means run until a cap.
	TargetRelHalfWidth float64
	// MinSamples is the fewest samples before the CI may stop the run.
	MinSamples int
	// MaxSamples stops the run at this many samples (0: no cap).
	MaxSamples int
	// MaxDuration stops the run once elapsed reaches it (0: no cap).
	MaxDuration time.Duration
}

// Validate reports a rule that could never stop or contradicts itself.
func (r StopRule) Validate() error {
	var errs []error
	if r.MaxSamples <= 0 && r.MaxDuration <= 0 {
		errs = append(errs, errors.New("stop rule: set max samples or max duration"))
	}
	if r.TargetRelHalfWidth < 0 || math.IsNaN(r.TargetRelHalfWidth) {
		errs = append(errs, fmt.Errorf("stop rule: target relative half-width %g < 0", r.TargetRelHalfWidth))
	}
	if r.MinSamples < 0 || r.MaxSamples < 0 || r.MaxDuration < 0 {
		errs = append(errs, errors.New("stop rule: negative limit"))
	}
	if r.MaxSamples > 0 && r.MinSamples > r.MaxSamples {
		errs = append(errs, fmt.Errorf("stop rule: min samples %d > max samples %d", r.MinSamples, r.MaxSamples))
	}
	return errors.Join(errs...)
}

// Done reports whether to stop after collecting xs over elapsed, and why (a
// short phrase for logs and reports, also when not done). NaN and ±Inf
// values do not count as samples.
func (r StopRule) Done(xs []float64, elapsed time.Duration) (done bool, reason string) {
	s, _ := sortedFinite(xs)
	n := len(s)
	switch {
	case r.MaxSamples > 0 && n >= r.MaxSamples:
		return true, fmt.Sprintf("max samples reached (%d)", n)
	case r.MaxDuration > 0 && elapsed >= r.MaxDuration:
		return true, fmt.Sprintf("max duration reached (%s, %d samples)", r.MaxDuration, n)
	case n < r.MinSamples:
		return false, fmt.Sprintf("%d of min %d samples", n, r.MinSamples)
	case !(r.TargetRelHalfWidth > 0):
		return false, "no CI target: running to a cap"
	}
	lo, hi, ok := medianCISorted(s, DefaultConfidence)
	if !ok {
		return false, fmt.Sprintf("n=%d: too few samples for a median CI", n)
	}
	rel, ok := relHalfWidth(lo, hi, quantile(s, 0.5))
	if !ok {
		return false, "median is 0: relative CI width undefined"
	}
	if rel <= r.TargetRelHalfWidth {
		return true, fmt.Sprintf("median CI ±%.2f%% <= target ±%.2f%% (%d samples)", 100*rel, 100*r.TargetRelHalfWidth, n)
	}
	return false, fmt.Sprintf("median CI ±%.2f%% > target ±%.2f%% (%d samples)", 100*rel, 100*r.TargetRelHalfWidth, n)
}
