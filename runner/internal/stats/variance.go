package stats

import (
	"fmt"
	"math"
)

// Variance splits the variance of samples grouped by launch (one engine
// process each) into a between-launch and a within-launch component with a
// one-way random-effects ANOVA (method of moments, unbalanced groups allowed).
// Variances are in the squared unit of the samples.
type Variance struct {
	// Launches is the number of non-empty groups, Samples the number of
	// finite values in them.
	Launches int `json:"launches"`
	Samples  int `json:"samples"`
	// BetweenLaunch is σ²_between = max(0, (MSB-MSW)/n0), where n0 is the
	// ANOVA's effective group size (N - Σn_i²/N)/(k-1).
	BetweenLaunch float64 `json:"between_launch"`
	// WithinLaunch is σ²_within = MSW, the pooled within-launch variance.
	WithinLaunch float64 `json:"within_launch"`
	// ICC is BetweenLaunch/(BetweenLaunch+WithinLaunch): the share of the
	// variance that comes from launching again rather than iterating again.
	ICC float64 `json:"icc"`
	// F and P are the one-way ANOVA F statistic MSB/MSW and its p-value
	// (as scipy.stats.f_oneway): a small P means launches really differ.
	// Both are 0 when not available (fewer than 2 launches or no
	// within-launch degrees of freedom); P is 1 when MSW is 0.
	F        float64  `json:"f"`
	P        float64  `json:"p"`
	Warnings []string `json:"warnings,omitempty"`
}

// LaunchVariance estimates the variance components of groups, one group per
// launch. NaN and ±Inf values and empty groups are skipped with a warning.
func LaunchVariance(groups [][]float64) Variance {
	var v Variance
	var gs [][]float64
	dropped, empty := 0, 0
	for _, g := range groups {
		f, d := finite(g)
		dropped += d
		if len(f) == 0 {
			empty++
			continue
		}
		gs = append(gs, f)
		v.Samples += len(f)
	}
	if dropped > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d non-finite values (NaN/Inf) excluded", dropped))
	}
	if empty > 0 {
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d empty launch(es) skipped", empty))
	}
	k, n := len(gs), v.Samples
	v.Launches = k
	if k == 0 {
		v.Warnings = append(v.Warnings, "no samples")
		return v
	}

	// Shift by the first value so large offsets do not cost precision.
	shift := gs[0][0]
	means := make([]float64, k)
	grand := 0.0
	for i, g := range gs {
		s := 0.0
		for _, x := range g {
			s += x - shift
		}
		grand += s
		means[i] = s / float64(len(g))
	}
	grand /= float64(n)
	var ssb, ssw, sumN2 float64
	for i, g := range gs {
		ni := float64(len(g))
		d := means[i] - grand
		ssb += ni * d * d
		sumN2 += ni * ni
		for _, x := range g {
			e := x - shift - means[i]
			ssw += e * e
		}
	}
	dfb, dfw := float64(k-1), float64(n-k)

	if dfw > 0 {
		v.WithinLaunch = ssw / dfw
	} else {
		v.Warnings = append(v.Warnings, "every launch has 1 sample: within-launch variance not available (between-launch includes it)")
	}
	if k < 2 {
		v.Warnings = append(v.Warnings, "1 launch: between-launch variance not available")
	} else {
		msb := ssb / dfb
		n0 := (float64(n) - sumN2/float64(n)) / dfb
		if dfw > 0 {
			b := (msb - v.WithinLaunch) / n0
			if b < 0 {
				b = 0
				v.Warnings = append(v.Warnings, "between-launch variance estimate negative (MSB < MSW): set to 0")
			}
			v.BetweenLaunch = b
			if v.WithinLaunch > 0 {
				v.F = msb / v.WithinLaunch
				v.P = fSF(v.F, dfb, dfw)
			} else {
				v.P = 1
				if msb > 0 {
					v.P = 0
				}
			}
		} else {
			v.BetweenLaunch = msb / n0
		}
		if k < 5 {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%d launches: between-launch variance is a rough estimate", k))
		}
	}
	if t := v.BetweenLaunch + v.WithinLaunch; t > 0 {
		v.ICC = v.BetweenLaunch / t
	}
	for _, p := range []*float64{&v.BetweenLaunch, &v.WithinLaunch, &v.ICC, &v.F, &v.P} {
		if math.IsInf(*p, 0) || math.IsNaN(*p) {
			*p = 0
		}
	}
	return v
}

// fSF returns P(F > f) for an F(d1, d2) distribution.
func fSF(f, d1, d2 float64) float64 {
	if !(f > 0) {
		return 1
	}
	if math.IsInf(f, 1) {
		return 0
	}
	return regIncBeta(d2/2, d1/2, d2/(d2+d1*f))
}

// regIncBeta returns the regularised incomplete beta function I_x(a, b),
// by the continued fraction of Numerical Recipes (§6.4) with Lentz's method.
func regIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

func betaCF(a, b, x float64) float64 {
	const (
		maxIter = 1000
		eps     = 1e-15
		tiny    = 1e-300
	)
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIter; m++ {
		mf := float64(m)
		m2 := 2 * mf
		aa := mf * (b - mf) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + mf) * (qab + mf) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}
