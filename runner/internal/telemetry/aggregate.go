package telemetry

import (
	"fmt"
	"sort"
	"time"
)

// Window is one timed iteration on the runner clock (time since the sampler's
// epoch): prefill is [Start, FirstToken], decode is [FirstToken, End].
type Window struct {
	Start, FirstToken, End time.Duration
	// Tokens is the number of output tokens the window produced, times the
	// batch size.
	Tokens int
}

// WindowFromIteration places an engine iteration on the runner clock. The
// engine's times are offsets from its own clock, so the iteration is anchored
// at arrived, the runner time when its event was read (the engine writes the
// event right after taking EndNs, so the pipe latency, typically tens of µs,
// is the error). tokenNs are the per-token offsets and endNs the end offset
// from the iteration start, in ns, as in protocol.Iteration.
func WindowFromIteration(arrived time.Duration, tokenNs []int64, endNs int64, tokens int) Window {
	start := arrived - time.Duration(endNs)
	w := Window{Start: start, End: arrived, Tokens: tokens}
	if len(tokenNs) > 0 {
		w.FirstToken = start + time.Duration(tokenNs[0])
	}
	return w
}

// DefaultMinSamples is the fewest samples a phase needs for its mean power.
const DefaultMinSamples = 3

// Summary is what the samples of one run say about its timed windows.
type Summary struct {
	// Samples is the number of samples in the run; InWindows of them fall in
	// timed windows.
	Samples   int `json:"samples"`
	InWindows int `json:"samples_in_windows"`
	// TimedSeconds is the summed duration of the windows.
	TimedSeconds float64 `json:"timed_s"`
	// SamplerBusyPct is the share of the sampled span the sampler spent
	// inside NVML, in %: the observer's own cost. An energy-counter read
	// takes ~3.5 ms on the H200, and an engine that calls into the driver
	// meanwhile can wait for it (results/h200-2026-12-03).
	SamplerBusyPct float64 `json:"sampler_busy_pct"`

	// ProcMemPeak is the peak device memory of the engine's process tree over
	// the whole run and ProcMemMean its mean over the windows, in bytes.
	ProcMemPeak uint64 `json:"proc_mem_peak_bytes"`
	ProcMemMean uint64 `json:"proc_mem_mean_bytes"`
	// ProcMemSource is "process tree", or "all compute processes" when NVML's
	// pids never matched the engine's (e.g. another pid namespace).
	ProcMemSource string `json:"proc_mem_source,omitempty"`
	// DevMemBefore, DevMemPeak and DevMemAfter are the device memory used at
	// the first sample, at its peak and at the last sample, in bytes.
	DevMemBefore uint64 `json:"dev_mem_before_bytes"`
	DevMemPeak   uint64 `json:"dev_mem_peak_bytes"`
	DevMemAfter  uint64 `json:"dev_mem_after_bytes"`

	// SMUtilMean and MemUtilMean are mean utilization over the windows, in %.
	SMUtilMean  float64 `json:"sm_util_mean_pct"`
	MemUtilMean float64 `json:"mem_util_mean_pct"`
	// EnergyJ is the energy used during the windows in J, from the total
	// energy counter (EnergySource "counter") or, where the counter is not
	// supported, by integrating instantaneous power ("instant power") or
	// NVML's power reading ("power"). Windows less than two sample intervals
	// apart are measured as one span, gap included.
	EnergyJ      float64 `json:"energy_j"`
	EnergySource string  `json:"energy_source,omitempty"`
	// EnergyPerTokenJ is EnergyJ over the windows' output tokens, in J.
	EnergyPerTokenJ float64 `json:"energy_per_token_j"`
	// PowerMeanW is EnergyJ over the duration of the spans it covers, in W.
	PowerMeanW float64 `json:"power_mean_w"`
	// PrefillPowerW and DecodePowerW are the mean power during the prefill and
	// decode parts of the windows, in W; 0 when too few samples fall in them.
	// PhasePowerSource says how they were measured: "energy counter" or
	// "instant power".
	PrefillPowerW    float64 `json:"prefill_power_w,omitempty"`
	DecodePowerW     float64 `json:"decode_power_w,omitempty"`
	PhasePowerSource string  `json:"phase_power_source,omitempty"`
	// TempMaxC is the highest temperature seen in the run, in °C.
	TempMaxC uint32 `json:"temperature_max_c"`
	// SMClockMeanMHz is the mean SM clock over the windows, in MHz.
	SMClockMeanMHz float64 `json:"sm_clock_mean_mhz"`
	// Reasons is the OR of the clock-event reasons over the windows and
	// ReasonNames its decoding.
	Reasons     Reasons  `json:"reasons"`
	ReasonNames []string `json:"reason_names"`
	// Throttled is true when thermal or power throttling was seen in a window.
	Throttled bool `json:"throttled"`

	// Warnings say which figures are missing or approximate, and why.
	Warnings []string `json:"warnings,omitempty"`
}

// AggregateOptions tune Aggregate.
type AggregateOptions struct {
	// MinSamples is the fewest samples a phase (prefill, decode) needs for
	// its mean power; DefaultMinSamples when 0.
	MinSamples int
}

// Aggregate summarizes the samples of one run over its timed windows.
// Samples must be in time order (as Sampler.Stop returns them).
func Aggregate(samples []Sample, windows []Window, opts AggregateOptions) Summary {
	if opts.MinSamples <= 0 {
		opts.MinSamples = DefaultMinSamples
	}
	var s Summary
	s.Samples = len(samples)
	s.ReasonNames = []string{}
	if len(samples) == 0 {
		s.Warnings = append(s.Warnings, "no telemetry samples")
		return s
	}
	ws := make([]Window, 0, len(windows))
	tokens := 0
	for _, w := range windows {
		if w.End <= w.Start {
			continue
		}
		ws = append(ws, w)
		tokens += w.Tokens
		s.TimedSeconds += (w.End - w.Start).Seconds()
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start < ws[j].Start })

	s.SamplerBusyPct = busyPct(samples)
	s.memory(samples, ws)

	var n, nUtil, nClock int
	var sm, mem, clock float64
	for i := range samples {
		x := &samples[i]
		if x.Valid.Has(FieldTemp) && x.TempC > s.TempMaxC {
			s.TempMaxC = x.TempC
		}
		if !inAny(x.T, ws, phaseAll) {
			continue
		}
		n++
		if x.Valid.Has(FieldUtil) {
			nUtil++
			sm += float64(x.SMUtil)
			mem += float64(x.MemUtil)
		}
		if x.Valid.Has(FieldClocks) {
			nClock++
			clock += float64(x.SMClockMHz)
		}
		if x.Valid.Has(FieldReasons) {
			s.Reasons |= x.Reasons
		}
	}
	s.InWindows = n
	if nUtil > 0 {
		s.SMUtilMean, s.MemUtilMean = sm/float64(nUtil), mem/float64(nUtil)
	}
	if nClock > 0 {
		s.SMClockMeanMHz = clock / float64(nClock)
	}
	s.ReasonNames = s.Reasons.Names()
	s.Throttled = s.Reasons.Throttled()
	if len(ws) == 0 {
		s.Warnings = append(s.Warnings, "no timed windows: energy, power and utilization not computed")
		return s
	}
	if n == 0 {
		s.Warnings = append(s.Warnings, "no sample fell inside a timed window: utilization, clocks and throttle reasons unknown")
	}

	e := newEnergy(samples)
	if e.src == "" {
		s.Warnings = append(s.Warnings, "neither the energy counter nor power is readable: no energy figures")
		return s
	}
	s.EnergySource = e.src
	if e.src != "counter" {
		s.Warnings = append(s.Warnings, "energy counter not supported: energy integrated from sampled "+e.src)
	}
	first, last := e.s.t[0], e.s.t[len(e.s.t)-1]
	if ws[0].Start < first || ws[len(ws)-1].End > last {
		s.Warnings = append(s.Warnings, "timed windows extend past the sampled range: energy at the edges extrapolated flat")
	}
	// Back-to-back iterations are measured as one span: fewer window edges,
	// less error from a counter that updates coarsely.
	var spanSeconds float64
	for _, sp := range merge(ws, 2*medianStep(samples)) {
		s.EnergyJ += e.between(sp.Start, sp.End)
		spanSeconds += (sp.End - sp.Start).Seconds()
	}
	if spanSeconds > 0 {
		s.PowerMeanW = s.EnergyJ / spanSeconds
	}
	if tokens > 0 {
		s.EnergyPerTokenJ = s.EnergyJ / float64(tokens)
	}
	src := phaseSource(samples, ws, e)
	s.PrefillPowerW = s.phasePower(samples, ws, e, src, phasePrefill, opts.MinSamples)
	s.DecodePowerW = s.phasePower(samples, ws, e, src, phaseDecode, opts.MinSamples)
	if s.PrefillPowerW > 0 || s.DecodePowerW > 0 {
		s.PhasePowerSource = src
	}
	return s
}

// busyPct is the time spent taking samples over the span they cover, in %
// (0 for fewer than two samples).
func busyPct(samples []Sample) float64 {
	if len(samples) < 2 {
		return 0
	}
	span := samples[len(samples)-1].T - samples[0].T
	if span <= 0 {
		return 0
	}
	var busy time.Duration
	for _, x := range samples {
		busy += x.Cost
	}
	return 100 * busy.Seconds() / span.Seconds()
}

// medianStep is the median time between consecutive samples.
func medianStep(samples []Sample) time.Duration {
	if len(samples) < 2 {
		return 0
	}
	d := make([]time.Duration, 0, len(samples)-1)
	for k := 1; k < len(samples); k++ {
		d = append(d, samples[k].T-samples[k-1].T)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// merge joins sorted windows separated by at most gap.
func merge(ws []Window, gap time.Duration) []Window {
	var out []Window
	for _, w := range ws {
		if n := len(out); n > 0 && w.Start-out[n-1].End <= gap {
			out[n-1].End = max(out[n-1].End, w.End)
			continue
		}
		out = append(out, Window{Start: w.Start, End: w.End})
	}
	return out
}

func (s *Summary) memory(samples []Sample, ws []Window) {
	var procSum, allSum float64
	var procN, allN int
	var procPeak, allPeak uint64
	var procSeen, allSeen bool
	devFirst := true
	for i := range samples {
		x := &samples[i]
		if x.Valid.Has(FieldDevMem) {
			if devFirst {
				s.DevMemBefore, devFirst = x.DevMemUsed, false
			}
			s.DevMemAfter = x.DevMemUsed
			s.DevMemPeak = max(s.DevMemPeak, x.DevMemUsed)
		}
		in := inAny(x.T, ws, phaseAll)
		if x.Valid.Has(FieldProcMem) {
			procSeen = true
			procPeak = max(procPeak, x.ProcMem)
			if in {
				procSum += float64(x.ProcMem)
				procN++
			}
		}
		if x.Valid.Has(FieldAllProcMem) {
			allSeen = true
			allPeak = max(allPeak, x.AllProcMem)
			if in {
				allSum += float64(x.AllProcMem)
				allN++
			}
		}
	}
	switch {
	case procSeen:
		s.ProcMemSource = "process tree"
		s.ProcMemPeak = procPeak
		if procN > 0 {
			s.ProcMemMean = uint64(procSum / float64(procN))
		}
	case allSeen:
		s.ProcMemSource = "all compute processes"
		s.ProcMemPeak = allPeak
		if allN > 0 {
			s.ProcMemMean = uint64(allSum / float64(allN))
		}
		s.Warnings = append(s.Warnings, "engine pids never matched NVML's: process memory is that of all compute processes on the device")
	default:
		s.Warnings = append(s.Warnings, "no per-process memory reading")
	}
}

type phase int

const (
	phaseAll phase = iota
	phasePrefill
	phaseDecode
)

func (w Window) span(p phase) (a, b time.Duration, ok bool) {
	switch p {
	case phasePrefill, phaseDecode:
		if w.FirstToken <= w.Start || w.FirstToken > w.End {
			return 0, 0, false
		}
		if p == phasePrefill {
			return w.Start, w.FirstToken, true
		}
		return w.FirstToken, w.End, true
	}
	return w.Start, w.End, true
}

// inAny reports whether t falls in phase p of a window. ws is sorted.
func inAny(t time.Duration, ws []Window, p phase) bool {
	for _, w := range ws {
		if w.Start > t {
			return false
		}
		if a, b, ok := w.span(p); ok && a <= t && t <= b {
			return true
		}
	}
	return false
}

// Phase power sources.
const (
	srcCounter = "energy counter"
	srcInstant = "instant power"
)

// phaseSource picks how to measure the mean power of phases much shorter
// than a second: the energy counter when it moves between most samples, else
// instantaneous power readings. NVML's plain power reading is a 1 s average on
// Hopper and later, useless here.
func phaseSource(samples []Sample, ws []Window, e energy) string {
	if e.src == "counter" {
		var pairs, moved int
		for k := 1; k < len(samples); k++ {
			a, b := &samples[k-1], &samples[k]
			if a.Valid.Has(FieldEnergy) && b.Valid.Has(FieldEnergy) && inAny(b.T, ws, phaseAll) {
				pairs++
				if b.EnergyMJ != a.EnergyMJ {
					moved++
				}
			}
		}
		if pairs > 0 && 2*moved >= pairs {
			return srcCounter
		}
	}
	for i := range samples {
		if samples[i].Valid.Has(FieldPowerInstant) {
			return srcInstant
		}
	}
	return ""
}

func (s *Summary) phasePower(samples []Sample, ws []Window, e energy, src string, p phase, minSamples int) float64 {
	name := map[phase]string{phasePrefill: "prefill", phaseDecode: "decode"}[p]
	var dur time.Duration
	var joules float64
	for _, w := range ws {
		if a, b, ok := w.span(p); ok {
			dur += b - a
			if src == srcCounter {
				joules += e.between(a, b)
			}
		}
	}
	if dur <= 0 {
		s.Warnings = append(s.Warnings, fmt.Sprintf("no first-token times: %s power unknown", name))
		return 0
	}
	if src == "" {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s power unknown: the energy counter is too coarse and instant power is not readable", name))
		return 0
	}
	field := FieldEnergy
	if src == srcInstant {
		field = FieldPowerInstant
	}
	n := 0
	var sum float64
	for i := range samples {
		if samples[i].Valid.Has(field) && inAny(samples[i].T, ws, p) {
			n++
			sum += float64(samples[i].PowerInstantMW) / 1e3
		}
	}
	if n < minSamples {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s power unknown: %d samples in %s windows, need %d", name, n, name, minSamples))
		return 0
	}
	if src == srcInstant {
		return sum / float64(n)
	}
	return joules / dur.Seconds()
}

// energy gives the energy between two runner times, in J, from the energy
// counter where every sample has it, else from the integral of power.
type energy struct {
	s   series
	src string
}

func newEnergy(samples []Sample) energy {
	counter := seriesOf(samples, FieldEnergy, func(x *Sample) float64 { return float64(x.EnergyMJ) / 1e3 })
	instant := seriesOf(samples, FieldPowerInstant, func(x *Sample) float64 { return float64(x.PowerInstantMW) / 1e3 })
	power := seriesOf(samples, FieldPower, func(x *Sample) float64 { return float64(x.PowerMW) / 1e3 })
	switch {
	case len(counter.t) >= 2:
		return energy{s: counter, src: "counter"}
	case len(instant.t) >= 1:
		return energy{s: instant, src: "instant power"}
	case len(power.t) >= 1:
		return energy{s: power, src: "power"}
	}
	return energy{}
}

func (e energy) between(a, b time.Duration) float64 {
	if e.src == "counter" {
		return e.s.at(b) - e.s.at(a)
	}
	return e.s.integral(a, b)
}

// series is a piecewise-linear function of runner time, flat beyond its ends.
type series struct {
	t []time.Duration
	v []float64
}

func seriesOf(samples []Sample, f Fields, get func(*Sample) float64) series {
	var s series
	for i := range samples {
		if samples[i].Valid.Has(f) {
			s.t = append(s.t, samples[i].T)
			s.v = append(s.v, get(&samples[i]))
		}
	}
	return s
}

// at interpolates the series at t.
func (s series) at(t time.Duration) float64 {
	n := len(s.t)
	switch {
	case n == 0:
		return 0
	case t <= s.t[0]:
		return s.v[0]
	case t >= s.t[n-1]:
		return s.v[n-1]
	}
	j := sort.Search(n, func(k int) bool { return s.t[k] >= t }) // s.t[j-1] < t <= s.t[j]
	t0, t1 := s.t[j-1], s.t[j]
	if t1 == t0 {
		return s.v[j]
	}
	f := float64(t-t0) / float64(t1-t0)
	return s.v[j-1] + f*(s.v[j]-s.v[j-1])
}

// integral integrates the series over [a, b], with t in seconds.
func (s series) integral(a, b time.Duration) float64 {
	if b <= a || len(s.t) == 0 {
		return 0
	}
	// Break points: a, every sample time inside (a, b), b.
	pts := []time.Duration{a}
	for _, t := range s.t {
		if t > a && t < b {
			pts = append(pts, t)
		}
	}
	pts = append(pts, b)
	sum := 0.0
	for k := 1; k < len(pts); k++ {
		sum += (s.at(pts[k-1]) + s.at(pts[k])) / 2 * (pts[k] - pts[k-1]).Seconds()
	}
	return sum
}
