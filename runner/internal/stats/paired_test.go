package stats

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPairedRatioScipy pins PairedRatio to SciPy 1.17.1:
// d = log(b/a); exp(mean d), exp(ttest_1samp(d, 0).confidence_interval(conf)), d.std(ddof=1).
func TestPairedRatioScipy(t *testing.T) {
	cases := []struct {
		a, b                []float64
		conf                float64
		ratio, lo, hi, sdlg float64
	}{
		// the H200 candle adapter check of 2026-12-02 (run medians per round, decode tok/s)
		{[]float64{129.40, 148.83, 158.45, 172.33}, []float64{136.43, 159.18, 171.36, 165.34}, 0.95,
			1.040044613676998, 0.9532282258240896, 1.1347679067134062, 0.05477832094229963},
		{[]float64{760.73, 783.67, 780.43}, []float64{790.46, 781.25, 782.43}, 0.95,
			1.012680779547231, 0.9577124089940912, 1.0708040865227162, 0.022466064162945634},
		{[]float64{10.0, 11.0}, []float64{10.5, 11.2}, 0.9,
			1.033968524226395, 0.93825081866563, 1.1394510804811855, 0.021758848511619428},
		{[]float64{100, 101, 99, 100.5, 100.2, 99.8}, []float64{100.4, 101.1, 99.5, 100.9, 100.1, 100.3}, 0.99,
			1.0030029387587296, 0.9989600142206531, 1.0070622255521398, 0.00245363459206427},
	}
	for i, c := range cases {
		p, ok := PairedRatio(c.a, c.b, c.conf)
		if !ok {
			t.Fatalf("case %d: not ok", i)
		}
		for _, f := range []struct {
			name      string
			got, want float64
		}{{"ratio", p.Ratio, c.ratio}, {"lo", p.Lo, c.lo}, {"hi", p.Hi, c.hi}, {"sd", p.SDLog, c.sdlg}} {
			if !relNear(f.got, f.want, 1e-9) {
				t.Errorf("case %d %s = %v, want %v", i, f.name, f.got, f.want)
			}
		}
		if p.N != len(c.a) {
			t.Errorf("case %d: N = %d", i, p.N)
		}
	}
}

func TestPairedRatioRefuses(t *testing.T) {
	for _, c := range []struct{ a, b []float64 }{
		{[]float64{1}, []float64{1}},
		{[]float64{1, 2}, []float64{1}},
		{[]float64{1, 0}, []float64{1, 2}},
		{[]float64{1, math.Inf(1)}, []float64{1, 2}},
		{[]float64{1, 2}, []float64{math.NaN(), 2}},
	} {
		if _, ok := PairedRatio(c.a, c.b, 0.95); ok {
			t.Errorf("PairedRatio(%v, %v) ok", c.a, c.b)
		}
	}
}

// TestPairedRatioCalibration: simulated checks with a known true ratio through PairedRatio. Each pair shares a drift
// (a block effect far larger than the noise within a pair), as rounds of an adapter check on a warming card do: the
// 95% CI covers the truth in about 95% of checks, and a CI that ignored the pairing (Welch on the logs) would be far
// wider.
func TestPairedRatioCalibration(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const trials, n, truth = 4000, 5, 1.02
	covered, narrower := 0, 0
	for range trials {
		a, b := make([]float64, n), make([]float64, n)
		for i := range n {
			drift := 100 * math.Exp(0.15*rng.NormFloat64())
			a[i] = drift * math.Exp(0.01*rng.NormFloat64())
			b[i] = truth * drift * math.Exp(0.01*rng.NormFloat64())
		}
		p, ok := PairedRatio(a, b, 0.95)
		if !ok {
			t.Fatal("not ok")
		}
		if p.Lo <= truth && truth <= p.Hi {
			covered++
		}
		if w, ok := WelchT(logs(b), logs(a), 0.05); ok && p.Hi/p.Lo < math.Exp(w.Hi-w.Lo) {
			narrower++
		}
	}
	if c := float64(covered) / trials; c < 0.935 || c > 0.965 {
		t.Errorf("coverage %.3f, want 0.95 ± 0.015", c)
	}
	if narrower < trials*9/10 {
		t.Errorf("the paired CI was narrower than the unpaired one in %d of %d drifting checks", narrower, trials)
	}
}

func TestPairsToResolve(t *testing.T) {
	p, _ := PairedRatio([]float64{760.73, 783.67, 780.43}, []float64{790.46, 781.25, 782.43}, 0.95)
	n := PairsToResolve(p, 0.97, 1.03)
	if n <= p.N || n >= 50 {
		t.Fatalf("PairsToResolve = %d, want a few more than %d", n, p.N)
	}
	// at n pairs with the same mean and spread the CI stops crossing 1.03; at n-1 it does not
	d := math.Log(1.03) - math.Log(p.Ratio)
	if StudentTQuantile(0.975, float64(n-1))*p.SDLog/math.Sqrt(float64(n)) >= d {
		t.Errorf("n = %d does not resolve", n)
	}
	if StudentTQuantile(0.975, float64(n-2))*p.SDLog/math.Sqrt(float64(n-1)) < d {
		t.Errorf("n-1 = %d would already resolve", n-1)
	}
	if got := PairsToResolve(Paired{N: 1, Ratio: 1}, 0.97, 1.03); got != 0 {
		t.Errorf("one pair: %d, want 0", got)
	}
}
