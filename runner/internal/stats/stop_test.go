package stats

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestStopRuleDone(t *testing.T) {
	// Twenty values 99.0..100.9 (median 99.95): the 95% CI ranks for n=20 are
	// 6 and 15 (see TestMedianCIRanks), so the CI is [99.5, 100.4] and the
	// relative half-width 0.45/99.95 = 0.45%.
	tight := seq(0, 19, func(i int) float64 { return 99 + 0.1*float64(i) })
	wide := seq(0, 19, func(i int) float64 { return 50 + 5*float64(i) })
	rule := StopRule{TargetRelHalfWidth: 0.005, MinSamples: 10, MaxSamples: 1000, MaxDuration: time.Minute}
	tests := []struct {
		name    string
		rule    StopRule
		xs      []float64
		elapsed time.Duration
		done    bool
		reason  string // prefix of the reason
	}{
		{name: "converged", rule: rule, xs: tight, elapsed: time.Second, done: true, reason: "median CI ±0.45% <= target ±0.50% (20 samples)"},
		{name: "not converged", rule: rule, xs: wide, elapsed: time.Second, reason: "median CI ±"},
		{name: "tighter target", rule: StopRule{TargetRelHalfWidth: 0.004, MaxSamples: 100}, xs: tight, reason: "median CI ±0.45% > target ±0.40%"},
		{name: "below min samples", rule: StopRule{TargetRelHalfWidth: 0.005, MinSamples: 30, MaxSamples: 100}, xs: tight, reason: "20 of min 30 samples"},
		{name: "max samples", rule: StopRule{TargetRelHalfWidth: 0.0001, MaxSamples: 20}, xs: wide, done: true, reason: "max samples reached (20)"},
		{name: "max duration wins over min samples", rule: StopRule{MinSamples: 100, MaxDuration: time.Second}, xs: wide, elapsed: 2 * time.Second, done: true, reason: "max duration reached"},
		{name: "no target runs to cap", rule: StopRule{MaxSamples: 100}, xs: tight, reason: "no CI target"},
		{name: "too few for CI", rule: StopRule{TargetRelHalfWidth: 0.5, MaxSamples: 100}, xs: []float64{1, 2, 3}, reason: "n=3: too few samples for a median CI"},
		{name: "NaN not counted", rule: StopRule{MaxSamples: 3}, xs: []float64{1, 2, math.NaN()}, reason: "no CI target"},
		{name: "zero median", rule: StopRule{TargetRelHalfWidth: 0.5, MaxSamples: 100}, xs: []float64{-3, -2, -1, 0, 0, 0, 1, 2, 3}, reason: "median is 0"},
		{name: "all equal converges", rule: StopRule{TargetRelHalfWidth: 0.01, MaxSamples: 100}, xs: []float64{4, 4, 4, 4, 4, 4}, done: true, reason: "median CI ±0.00%"},
		{name: "empty", rule: rule, xs: nil, reason: "0 of min 10 samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, reason := tt.rule.Done(tt.xs, tt.elapsed)
			if done != tt.done || !strings.HasPrefix(reason, tt.reason) {
				t.Errorf("%+v.Done(%s, %s) = %v, %q, want %v, %q...", tt.rule, tt.name, tt.elapsed, done, reason, tt.done, tt.reason)
			}
		})
	}
}

func TestStopRuleValidate(t *testing.T) {
	tests := []struct {
		name string
		rule StopRule
		err  string // "" for valid
	}{
		{name: "valid", rule: StopRule{TargetRelHalfWidth: 0.01, MinSamples: 10, MaxSamples: 100}},
		{name: "duration cap only", rule: StopRule{MaxDuration: time.Second}},
		{name: "no cap", rule: StopRule{TargetRelHalfWidth: 0.01}, err: "set max samples or max duration"},
		{name: "negative target", rule: StopRule{TargetRelHalfWidth: -1, MaxSamples: 10}, err: "target relative half-width -1 < 0"},
		{name: "min above max", rule: StopRule{MinSamples: 20, MaxSamples: 10}, err: "min samples 20 > max samples 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Validate()
			if tt.err == "" {
				assert.NoError(t, err, "%+v.Validate()", tt.rule)
				return
			}
			assert.ErrorContains(t, err, tt.err, "%+v.Validate()", tt.rule)
		})
	}
}
