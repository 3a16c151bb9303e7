package stats

import (
	"fmt"
	"math"
	"slices"

	ms "github.com/montanaflynn/stats"
)

// DefaultConfidence is the confidence level of every interval unless a
// caller asks for another one.
const DefaultConfidence = 0.95

// Summary describes one sample, e.g. TPOT in ms over all timed iterations.
// Percentiles use linear interpolation between closest ranks (Hyndman & Fan
// type 7, the default of NumPy and R). Fields that cannot be computed are 0
// and a Warning says why; no field is ever NaN or Inf.
type Summary struct {
	// N is the number of finite values summarised.
	N int `json:"n"`
	// NonFinite counts NaN and ±Inf inputs, which are excluded from every
	// other field.
	NonFinite int `json:"non_finite,omitempty"`

	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"` // sample standard deviation (n-1); 0 when n < 2
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Median float64 `json:"median"`
	P25    float64 `json:"p25"`
	P50    float64 `json:"p50"` // equals Median
	P75    float64 `json:"p75"`
	P90    float64 `json:"p90"`
	P99    float64 `json:"p99"`
	// MAD is the raw median absolute deviation from the median (not scaled
	// by 1.4826).
	MAD float64 `json:"mad"`

	// MedianLo and MedianHi bound a 95% confidence interval of the median
	// from order statistics (binomial method, exact and conservative for
	// every n). Both are 0 when HasCI is false.
	MedianLo float64 `json:"median_lo"`
	MedianHi float64 `json:"median_hi"`
	// HasCI is false when there are too few samples for a 95% interval
	// (n < 6).
	HasCI bool `json:"has_ci"`
	// CIHalfWidthRel is (MedianHi-MedianLo)/2/|Median|; 0 when HasCI is
	// false or the median is 0.
	CIHalfWidthRel float64 `json:"ci_half_width_rel"`

	Outliers Outliers `json:"outliers"`
	Warnings []string `json:"warnings,omitempty"`
}

// Outliers counts values outside Tukey's fences: mild ones lie between the
// inner fence (1.5 IQR beyond a quartile) and the outer fence (3 IQR), and
// extreme ones beyond the outer fence, so the four counts are disjoint.
// MAD counts values whose modified z-score 0.6745·|x-median|/MAD exceeds 3.5
// (Iglewicz & Hoaglin); it is 0 when the MAD is 0. Outliers are counted,
// never dropped.
type Outliers struct {
	LowMild     int `json:"low_mild"`
	HighMild    int `json:"high_mild"`
	LowExtreme  int `json:"low_extreme"`
	HighExtreme int `json:"high_extreme"`
	MAD         int `json:"mad"`
}

// Total is the number of values outside Tukey's inner fences.
func (o Outliers) Total() int { return o.LowMild + o.HighMild + o.LowExtreme + o.HighExtreme }

// Thresholds behind Summary's warnings.
const (
	// outlierWarnFrac is the fraction of Tukey outliers above which Summarize
	// warns; any extreme outlier (beyond 3 IQR) warns too.
	outlierWarnFrac = 0.05
	// madZ is the modified z-score beyond which a value is a MAD outlier.
	madZ = 3.5
	// bimodalMinN is the smallest sample Summarize checks for two modes.
	bimodalMinN = 20
)

// finite returns the finite values of xs in a new slice and how many were
// dropped.
func finite(xs []float64) (out []float64, dropped int) {
	out = make([]float64, 0, len(xs))
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			dropped++
			continue
		}
		out = append(out, x)
	}
	return out, dropped
}

// sortedFinite returns the finite values of xs sorted ascending.
func sortedFinite(xs []float64) ([]float64, int) {
	s, dropped := finite(xs)
	slices.Sort(s)
	return s, dropped
}

// quantile returns the type-7 quantile q in [0,1] of sorted, non-empty s.
func quantile(s []float64, q float64) float64 {
	if q <= 0 {
		return s[0]
	}
	v, err := ms.Percentile(s, q*100)
	if err != nil || math.IsNaN(v) {
		return s[len(s)-1]
	}
	return v
}

// Summarize describes xs. NaN and ±Inf values are excluded and counted in
// NonFinite. It never panics; caveats are in Warnings.
func Summarize(xs []float64) Summary {
	s, dropped := sortedFinite(xs)
	sum := Summary{N: len(s), NonFinite: dropped}
	if dropped > 0 {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("%d non-finite values (NaN/Inf) excluded", dropped))
	}
	n := len(s)
	if n == 0 {
		sum.Warnings = append(sum.Warnings, "no samples")
		return sum
	}

	sum.Min, sum.Max = s[0], s[n-1]
	sum.Mean, _ = ms.Mean(s)
	if n >= 2 {
		sum.Stddev, _ = ms.StandardDeviationSample(s)
	}
	sum.Median = quantile(s, 0.5)
	sum.P25 = quantile(s, 0.25)
	sum.P50 = sum.Median
	sum.P75 = quantile(s, 0.75)
	sum.P90 = quantile(s, 0.90)
	sum.P99 = quantile(s, 0.99)
	sum.MAD = mad(s, sum.Median)

	if lo, hi, ok := medianCISorted(s, DefaultConfidence); ok {
		sum.MedianLo, sum.MedianHi, sum.HasCI = lo, hi, true
		if rel, ok := relHalfWidth(lo, hi, sum.Median); ok {
			sum.CIHalfWidthRel = rel
		} else {
			sum.Warnings = append(sum.Warnings, "median is 0: relative CI width undefined")
		}
	} else {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("n=%d < %d: median CI not available", n, minNForMedianCI(DefaultConfidence)))
	}
	if n < 2 {
		sum.Warnings = append(sum.Warnings, "n=1: stddev not available")
	}

	sum.Outliers = countOutliers(s, sum.P25, sum.P75, sum.Median, sum.MAD)
	if t, e := sum.Outliers.Total(), sum.Outliers.LowExtreme+sum.Outliers.HighExtreme; e > 0 || float64(t) > outlierWarnFrac*float64(n) {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("%.0f%% outliers (%d of %d beyond 1.5 IQR, %d beyond 3 IQR)", 100*float64(t)/float64(n), t, n, e))
	}
	if a, b, ok := bimodal(s, sum.Stddev, sum.P75-sum.P25); ok {
		sum.Warnings = append(sum.Warnings, fmt.Sprintf("bimodal? modes near %.4g and %.4g", a, b))
	}
	sum.Warnings = zeroNonFinite(sum.Warnings, []namedFloat{
		{"mean", &sum.Mean}, {"stddev", &sum.Stddev}, {"mad", &sum.MAD},
		{"p25", &sum.P25}, {"p75", &sum.P75}, {"p90", &sum.P90}, {"p99", &sum.P99},
		{"ci_half_width_rel", &sum.CIHalfWidthRel},
	})
	return sum
}

type namedFloat struct {
	name string
	p    *float64
}

// zeroNonFinite sets each field that overflowed to NaN or ±Inf to 0 and
// says so in a warning appended to ws.
func zeroNonFinite(ws []string, fs []namedFloat) []string {
	for _, f := range fs {
		if math.IsNaN(*f.p) || math.IsInf(*f.p, 0) {
			*f.p = 0
			ws = append(ws, f.name+" overflows float64: set to 0")
		}
	}
	return ws
}

// mad returns the median absolute deviation of sorted, non-empty s around
// median m.
func mad(s []float64, m float64) float64 {
	d := make([]float64, len(s))
	for i, x := range s {
		d[i] = math.Abs(x - m)
	}
	slices.Sort(d)
	v := quantile(d, 0.5)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0
	}
	return v
}

// relHalfWidth returns (hi-lo)/2/|m| and whether it is defined and finite.
func relHalfWidth(lo, hi, m float64) (float64, bool) {
	if hi == lo {
		return 0, true
	}
	if m == 0 {
		return 0, false
	}
	r := (hi/2 - lo/2) / math.Abs(m)
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return 0, false
	}
	return r, true
}

// countOutliers classifies the values of sorted s against Tukey's fences
// built from quartiles q1, q3, and against the MAD rule.
func countOutliers(s []float64, q1, q3, median, madv float64) Outliers {
	var o Outliers
	iqr := q3 - q1
	if !math.IsInf(iqr, 0) {
		in1, in3 := q1-1.5*iqr, q3+1.5*iqr
		out1, out3 := q1-3*iqr, q3+3*iqr
		for _, x := range s {
			switch {
			case x < out1:
				o.LowExtreme++
			case x < in1:
				o.LowMild++
			case x > out3:
				o.HighExtreme++
			case x > in3:
				o.HighMild++
			}
		}
	}
	if madv > 0 {
		for _, x := range s {
			if 0.6745*math.Abs(x-median)/madv > madZ {
				o.MAD++
			}
		}
	}
	return o
}

// MedianCI returns a distribution-free confidence interval of the median of
// xs at level conf (e.g. 0.95), from order statistics: [x(l), x(n-l+1)]
// where l is the largest rank with P(Binomial(n, 1/2) < l) <= (1-conf)/2.
// Its coverage is exact and at least conf for every n and continuous
// distribution. ok is false (and lo, hi are 0) when conf is not in (0,1) or
// there are too few finite values for that level (n < 6 at 95%). NaN and
// ±Inf values are ignored.
func MedianCI(xs []float64, conf float64) (lo, hi float64, ok bool) {
	s, _ := sortedFinite(xs)
	return medianCISorted(s, conf)
}

func medianCISorted(s []float64, conf float64) (lo, hi float64, ok bool) {
	l, u, ok := MedianCIRanks(len(s), conf)
	if !ok {
		return 0, 0, false
	}
	return s[l-1], s[u-1], true
}

// MedianCIRanks returns the 1-based ranks (l, u = n-l+1) of the order
// statistics bounding MedianCI for a sample of n, and whether an interval of
// level conf exists for n.
func MedianCIRanks(n int, conf float64) (l, u int, ok bool) {
	if n < 1 || !(conf > 0 && conf < 1) {
		return 0, 0, false
	}
	alpha2 := (1 - conf) / 2
	// Walk the Binomial(n, 1/2) CDF in log space until it exceeds alpha/2.
	// P(B <= k) for k = l-1 must stay <= alpha/2, so l is the first k whose
	// CDF passes alpha/2.
	logHalfN := float64(n) * math.Log(0.5)
	logPmf := logHalfN // log P(B = 0)
	cdf := 0.0
	k := 0
	for ; k <= n/2; k++ {
		if k > 0 {
			logPmf += math.Log(float64(n-k+1)) - math.Log(float64(k))
		}
		cdf += math.Exp(logPmf)
		if cdf > alpha2*(1+1e-12) {
			break
		}
	}
	l = k // 1-based rank: P(B <= l-1) <= alpha/2 < P(B <= l)
	if l < 1 {
		return 0, 0, false
	}
	u = n - l + 1
	if l > u {
		return 0, 0, false
	}
	return l, u, true
}

// minNForMedianCI is the smallest sample with a median CI at level conf.
func minNForMedianCI(conf float64) int {
	for n := 1; n < 1000; n++ {
		if _, _, ok := MedianCIRanks(n, conf); ok {
			return n
		}
	}
	return 1000
}
