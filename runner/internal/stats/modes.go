package stats

import "math"

// Bimodality heuristic: a Gaussian kernel density estimate (Silverman's
// bandwidth, never finer than the data's own resolution) on a grid between
// the 0.5th and 99.5th percentiles. The sample is flagged when some valley
// of the density is below half of the highest peak on each side of it and
// each side holds at least 10% of the mass. Silverman's rule over-smooths
// multimodal data, so a flagged valley is a real one; the warning still says
// "bimodal?" because it is a screen, not a test.
const (
	modeGrid      = 512
	modeValley    = 0.5
	modeMinMass   = 0.10
	modeTrimLow   = 0.005
	modeTrimHigh  = 0.995
	modeKernelSDs = 4
)

// bimodal reports whether sorted s looks like it has two separated modes,
// and where the two highest peaks either side of the deepest qualifying
// valley are. sd and iqr are those of s.
func bimodal(s []float64, sd, iqr float64) (a, b float64, ok bool) {
	n := len(s)
	if n < bimodalMinN {
		return 0, 0, false
	}
	lo, hi := quantile(s, modeTrimLow), quantile(s, modeTrimHigh)
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return 0, 0, false
	}
	spread := sd
	if r := iqr / 1.34; r > 0 && r < spread {
		spread = r
	}
	h := 0.9 * spread * math.Pow(float64(n), -0.2)
	// Never smooth finer than the data's resolution (smallest gap between
	// distinct values), or timer quantisation would look like many modes.
	gap := math.Inf(1)
	for i := 1; i < n; i++ {
		if d := s[i] - s[i-1]; d > 0 && d < gap && s[i] >= lo && s[i-1] <= hi {
			gap = d
		}
	}
	if !math.IsInf(gap, 1) && gap > h {
		h = gap
	}
	if !(h > 0) || math.IsInf(h, 0) {
		return 0, 0, false
	}
	lo -= 3 * h
	hi += 3 * h
	width := (hi - lo) / modeGrid
	if !(width > 0) || math.IsInf(width, 0) {
		return 0, 0, false
	}

	// Linear binning, then convolution with a sampled Gaussian.
	var bins [modeGrid]float64
	total := 0.0
	for _, x := range s {
		if x < lo || x > hi {
			continue
		}
		p := (x - lo) / width
		i := int(p)
		if i >= modeGrid-1 {
			bins[modeGrid-1]++
			total++
			continue
		}
		f := p - float64(i)
		bins[i] += 1 - f
		bins[i+1] += f
		total++
	}
	if total == 0 {
		return 0, 0, false
	}
	kw := int(math.Ceil(modeKernelSDs * h / width))
	if kw > modeGrid {
		kw = modeGrid
	}
	kern := make([]float64, kw+1)
	for j := range kern {
		z := float64(j) * width / h
		kern[j] = math.Exp(-0.5 * z * z)
	}
	var d [modeGrid]float64
	for i := range d {
		v := 0.0
		for j := -kw; j <= kw; j++ {
			if k := i + j; k >= 0 && k < modeGrid {
				aj := j
				if aj < 0 {
					aj = -aj
				}
				v += bins[k] * kern[aj]
			}
		}
		d[i] = v
	}

	// Prefix mass and running maxima from each side.
	var mass, leftMax, rightMax [modeGrid]float64
	var leftArg, rightArg [modeGrid]int
	acc := 0.0
	for i := range d {
		acc += d[i]
		mass[i] = acc
		leftMax[i], leftArg[i] = d[i], i
		if i > 0 && leftMax[i-1] >= d[i] {
			leftMax[i], leftArg[i] = leftMax[i-1], leftArg[i-1]
		}
	}
	for i := modeGrid - 1; i >= 0; i-- {
		rightMax[i], rightArg[i] = d[i], i
		if i < modeGrid-1 && rightMax[i+1] >= d[i] {
			rightMax[i], rightArg[i] = rightMax[i+1], rightArg[i+1]
		}
	}
	if acc <= 0 {
		return 0, 0, false
	}
	best := math.Inf(1)
	for i := 1; i < modeGrid-1; i++ {
		left, right := leftMax[i-1], rightMax[i+1]
		peak := math.Min(left, right)
		if !(d[i] <= modeValley*peak) {
			continue
		}
		if mass[i]/acc < modeMinMass || (acc-mass[i])/acc < modeMinMass {
			continue
		}
		if r := d[i] / peak; r < best {
			best = r
			a = lo + float64(leftArg[i-1])*width
			b = lo + float64(rightArg[i+1])*width
			ok = true
		}
	}
	return a, b, ok
}
