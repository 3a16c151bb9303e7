package telemetry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

// gen returns samples every 10 ms over [0, end], with power(t) in W held over
// each 10 ms step and the energy counter advanced exactly by it; edit adjusts
// each sample.
func gen(end time.Duration, power func(t time.Duration) uint32, edit func(s *Sample)) []Sample {
	var out []Sample
	energy := uint64(5_000_000)
	for t := time.Duration(0); t <= end; t += 10 * ms {
		p := power(t)
		s := Sample{
			T: t, Valid: FieldEnergy | FieldPower | FieldPowerInstant | FieldDevMem | FieldUtil | FieldTemp | FieldClocks | FieldReasons | FieldAllProcMem | FieldProcMem,
			EnergyMJ: energy, PowerMW: p * 1000, PowerInstantMW: p * 1000, DevMemUsed: 600 << 20, TempC: 40, SMClockMHz: 1980, Reasons: ReasonGPUIdle,
		}
		if edit != nil {
			edit(&s)
		}
		out = append(out, s)
		energy += uint64(p) * 10 // W × 10 ms = mJ
	}
	return out
}

// coarse makes the energy counter move only every 100 ms, holding the value
// gen gave at the last multiple of 100 ms.
func coarse(s *Sample) {
	held := gen(s.T-s.T%(100*ms), phases, nil)
	s.EnergyMJ = held[len(held)-1].EnergyMJ
}

func constant(w uint32) func(time.Duration) uint32 { return func(time.Duration) uint32 { return w } }

// phases draws 400 W in prefill [1.0 s, 1.2 s), 250 W in decode [1.2 s, 3.0 s)
// and 70 W at rest.
func phases(t time.Duration) uint32 {
	switch {
	case t >= 1000*ms && t < 1200*ms:
		return 400
	case t >= 1200*ms && t < 3000*ms:
		return 250
	}
	return 70
}

func TestAggregateEnergy(t *testing.T) {
	tests := []struct {
		name          string
		samples       []Sample
		windows       []Window
		wantJ         float64
		wantSource    string
		wantPerToken  float64
		wantMeanW     float64
		wantPrefillW  float64
		wantDecodeW   float64
		wantWarnings  []string
		wantInWindows int
	}{
		{
			name:    "counter, edges between samples",
			samples: gen(5*time.Second, constant(300), nil),
			windows: []Window{{Start: 1005 * ms, End: 3005 * ms, Tokens: 100}},
			wantJ:   600, wantSource: "counter", wantPerToken: 6, wantMeanW: 300,
			wantWarnings:  []string{"no first-token times: prefill power unknown", "no first-token times: decode power unknown"},
			wantInWindows: 200,
		},
		{
			name:    "prefill and decode",
			samples: gen(5*time.Second, phases, nil),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 256}},
			// 400 W × 0.2 s + 250 W × 1.8 s.
			wantJ: 530, wantSource: "counter", wantPerToken: 530.0 / 256, wantMeanW: 265,
			wantPrefillW: 400, wantDecodeW: 250, wantInWindows: 201,
		},
		{
			name:    "two windows",
			samples: gen(5*time.Second, phases, nil),
			windows: []Window{
				{Start: 1000 * ms, FirstToken: 1100 * ms, End: 1500 * ms, Tokens: 10},
				{Start: 2000 * ms, FirstToken: 2100 * ms, End: 2500 * ms, Tokens: 10},
			},
			// Prefill 400×0.1 + 250×0.1 J over 0.2 s; decode 400×0.1 +
			// 250×0.3 + 250×0.4 J over 0.8 s.
			wantJ: 280, wantSource: "counter", wantPerToken: 14, wantMeanW: 280,
			wantPrefillW: 325, wantDecodeW: 268.75, wantInWindows: 102,
		},
		{
			name: "counter unsupported: power integral",
			samples: gen(5*time.Second, constant(300), func(s *Sample) {
				s.Valid &^= FieldEnergy
				s.EnergyMJ = 0
			}),
			windows: []Window{{Start: 1005 * ms, FirstToken: 1500 * ms, End: 3005 * ms, Tokens: 100}},
			wantJ:   600, wantSource: "instant power", wantPerToken: 6, wantMeanW: 300, wantPrefillW: 300, wantDecodeW: 300,
			wantWarnings:  []string{"energy counter not supported: energy integrated from sampled instant power"},
			wantInWindows: 200,
		},
		{
			name: "counter and instant power unsupported",
			samples: gen(5*time.Second, constant(300), func(s *Sample) {
				s.Valid &^= FieldEnergy | FieldPowerInstant
			}),
			windows: []Window{{Start: 1005 * ms, FirstToken: 1500 * ms, End: 3005 * ms, Tokens: 100}},
			wantJ:   600, wantSource: "power", wantPerToken: 6, wantMeanW: 300,
			wantWarnings: []string{
				"energy counter not supported: energy integrated from sampled power",
				"prefill power unknown: the energy counter is too coarse and instant power is not readable",
				"decode power unknown: the energy counter is too coarse and instant power is not readable",
			},
			wantInWindows: 200,
		},
		{
			name:    "coarse counter: instant power for the phases",
			samples: gen(5*time.Second, phases, coarse),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 256}},
			wantJ:   530, wantSource: "counter", wantPerToken: 530.0 / 256, wantMeanW: 265,
			// Samples at 1.00..1.19 s read 400 W, at 1.20..2.99 s 250 W, at 3.00 s 70 W.
			wantPrefillW: (20*400 + 250) / 21.0, wantDecodeW: (180*250 + 70) / 181.0,
			wantInWindows: 201,
		},
		{
			// --power-interval: the counter read every 100 ms only, instant power every 10 ms.
			name: "sparse counter reads: instant power for the phases",
			samples: gen(5*time.Second, phases, func(s *Sample) {
				if s.T%(100*ms) != 0 {
					s.Valid &^= FieldEnergy
					s.EnergyMJ = 0
				}
			}),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 256}},
			wantJ:   530, wantSource: "counter", wantPerToken: 530.0 / 256, wantMeanW: 265,
			wantPrefillW: (20*400 + 250) / 21.0, wantDecodeW: (180*250 + 70) / 181.0,
			wantInWindows: 201,
		},
		{
			name: "coarse counter, no instant power",
			samples: gen(5*time.Second, phases, func(s *Sample) {
				coarse(s)
				s.Valid &^= FieldPowerInstant
			}),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 256}},
			wantJ:   530, wantSource: "counter", wantPerToken: 530.0 / 256, wantMeanW: 265,
			wantWarnings: []string{
				"prefill power unknown: the energy counter is too coarse and instant power is not readable",
				"decode power unknown: the energy counter is too coarse and instant power is not readable",
			},
			wantInWindows: 201,
		},
		{
			name:    "back-to-back windows are one span",
			samples: gen(5*time.Second, constant(300), nil),
			windows: []Window{
				{Start: 1000 * ms, FirstToken: 1100 * ms, End: 1500 * ms, Tokens: 50},
				{Start: 1501 * ms, FirstToken: 1600 * ms, End: 2000 * ms, Tokens: 50},
			},
			// 300 W over [1.0 s, 2.0 s], the 1 ms gap included.
			wantJ: 300, wantSource: "counter", wantPerToken: 3, wantMeanW: 300,
			wantPrefillW: 300, wantDecodeW: 300, wantInWindows: 101,
		},
		{
			name:    "prefill too short for its power",
			samples: gen(5*time.Second, phases, nil),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1015 * ms, End: 3000 * ms, Tokens: 100}},
			wantJ:   530, wantSource: "counter", wantPerToken: 5.3, wantMeanW: 265,
			wantDecodeW:   (400*0.185 + 250*1.8) / 1.985,
			wantWarnings:  []string{"prefill power unknown: 2 samples in prefill windows, need 3"},
			wantInWindows: 201,
		},
		{
			name:    "window past the samples",
			samples: gen(2*time.Second, constant(300), nil),
			windows: []Window{{Start: 1000 * ms, FirstToken: 1100 * ms, End: 2500 * ms, Tokens: 100}},
			wantJ:   300, wantSource: "counter", wantPerToken: 3, wantMeanW: 200,
			wantPrefillW: 300, wantDecodeW: 270.0 / 1.4,
			wantWarnings:  []string{"timed windows extend past the sampled range: energy at the edges extrapolated flat"},
			wantInWindows: 101,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Aggregate(tt.samples, tt.windows, AggregateOptions{})
			assert.InDelta(t, tt.wantJ, s.EnergyJ, 1e-9, "EnergyJ")
			assert.Equal(t, tt.wantSource, s.EnergySource)
			assert.InDelta(t, tt.wantPerToken, s.EnergyPerTokenJ, 1e-9, "EnergyPerTokenJ")
			assert.InDelta(t, tt.wantMeanW, s.PowerMeanW, 1e-9, "PowerMeanW")
			assert.InDelta(t, tt.wantPrefillW, s.PrefillPowerW, 1e-9, "PrefillPowerW")
			assert.InDelta(t, tt.wantDecodeW, s.DecodePowerW, 1e-9, "DecodePowerW")
			assert.Equal(t, tt.wantWarnings, s.Warnings)
			assert.Equal(t, tt.wantInWindows, s.InWindows)
			assert.Equal(t, len(tt.samples), s.Samples)
		})
	}
}

func TestAggregateMemoryUtilClocks(t *testing.T) {
	samples := gen(4*time.Second, phases, func(s *Sample) {
		switch {
		case s.T < 500*ms: // before the engine exists
			s.Valid &^= FieldProcMem
		case s.T < 1000*ms: // loading: a transient peak
			s.ProcMem, s.DevMemUsed = 5<<30, 6<<30
		case s.T <= 3000*ms:
			s.ProcMem, s.DevMemUsed = 4<<30, 5<<30
			s.SMUtil, s.MemUtil, s.SMClockMHz, s.TempC = 90, 70, 1755, 61
			s.Reasons = 0
		default: // exited
			s.Valid &^= FieldProcMem
		}
	})
	s := Aggregate(samples, []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 1}}, AggregateOptions{})
	assert.Equal(t, uint64(5<<30), s.ProcMemPeak)
	assert.Equal(t, uint64(4<<30), s.ProcMemMean)
	assert.Equal(t, "process tree", s.ProcMemSource)
	assert.Equal(t, uint64(600<<20), s.DevMemBefore)
	assert.Equal(t, uint64(6<<30), s.DevMemPeak)
	assert.Equal(t, uint64(600<<20), s.DevMemAfter)
	assert.InDelta(t, 90, s.SMUtilMean, 1e-9)
	assert.InDelta(t, 70, s.MemUtilMean, 1e-9)
	assert.InDelta(t, 1755, s.SMClockMeanMHz, 1e-9)
	assert.Equal(t, uint32(61), s.TempMaxC)
	assert.Equal(t, Reasons(0), s.Reasons)
	assert.Equal(t, []string{}, s.ReasonNames)
	assert.False(t, s.Throttled)
	assert.Empty(t, s.Warnings)
}

func TestAggregateProcMemFallback(t *testing.T) {
	samples := gen(time.Second, constant(100), func(s *Sample) {
		s.Valid &^= FieldProcMem
		s.AllProcMem = 3 << 30
	})
	s := Aggregate(samples, []Window{{Start: 100 * ms, FirstToken: 200 * ms, End: 900 * ms, Tokens: 1}}, AggregateOptions{})
	assert.Equal(t, "all compute processes", s.ProcMemSource)
	assert.Equal(t, uint64(3<<30), s.ProcMemPeak)
	assert.Equal(t, uint64(3<<30), s.ProcMemMean)
	assert.Equal(t, []string{"engine pids never matched NVML's: process memory is that of all compute processes on the device"}, s.Warnings)
}

func TestAggregateThrottle(t *testing.T) {
	tests := []struct {
		name      string
		inWindow  map[time.Duration]Reasons
		want      Reasons
		wantNames []string
		throttled bool
	}{
		{name: "idle outside only", want: 0, wantNames: []string{}},
		{
			name:     "power cap once",
			inWindow: map[time.Duration]Reasons{1500 * ms: ReasonSWPowerCap},
			want:     ReasonSWPowerCap, wantNames: []string{"sw power cap"}, throttled: true,
		},
		{
			name:      "thermal and sync boost",
			inWindow:  map[time.Duration]Reasons{1500 * ms: ReasonHWThermalSlowdown, 2000 * ms: ReasonSyncBoost | ReasonSWThermalSlowdown},
			want:      ReasonHWThermalSlowdown | ReasonSyncBoost | ReasonSWThermalSlowdown,
			wantNames: []string{"sync boost", "sw thermal slowdown", "hw thermal slowdown"}, throttled: true,
		},
		{
			name:     "application clocks are not throttling",
			inWindow: map[time.Duration]Reasons{1500 * ms: ReasonAppClocksSetting},
			want:     ReasonAppClocksSetting, wantNames: []string{"applications clocks setting"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := gen(4*time.Second, phases, func(s *Sample) {
				if s.T >= 1000*ms && s.T <= 3000*ms {
					s.Reasons = tt.inWindow[s.T]
				} else {
					s.Reasons = ReasonGPUIdle | ReasonHWSlowdown // outside the window: ignored
				}
			})
			s := Aggregate(samples, []Window{{Start: 1000 * ms, FirstToken: 1200 * ms, End: 3000 * ms, Tokens: 1}}, AggregateOptions{})
			assert.Equal(t, tt.want, s.Reasons)
			assert.Equal(t, tt.wantNames, s.ReasonNames)
			assert.Equal(t, tt.throttled, s.Throttled)
		})
	}
}

func TestAggregateDegenerate(t *testing.T) {
	tests := []struct {
		name     string
		samples  []Sample
		windows  []Window
		warnings []string
	}{
		{name: "no samples", warnings: []string{"no telemetry samples"}},
		{
			name:     "no windows",
			samples:  gen(100*ms, constant(70), nil),
			warnings: []string{"no timed windows: energy, power and utilization not computed"},
		},
		{
			name:    "window between two samples",
			samples: gen(20*ms, constant(70), nil),
			windows: []Window{{Start: 11 * ms, FirstToken: 12 * ms, End: 19 * ms, Tokens: 1}},
			warnings: []string{
				"no sample fell inside a timed window: utilization, clocks and throttle reasons unknown",
				"prefill power unknown: 0 samples in prefill windows, need 3",
				"decode power unknown: 0 samples in decode windows, need 3",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Aggregate(tt.samples, tt.windows, AggregateOptions{})
			assert.Equal(t, tt.warnings, s.Warnings)
		})
	}
}

func TestSeries(t *testing.T) {
	s := series{t: []time.Duration{0, time.Second, 3 * time.Second}, v: []float64{0, 100, 100}}
	tests := []struct {
		name string
		at   time.Duration
		want float64
	}{
		{"before", -time.Second, 0},
		{"first", 0, 0},
		{"quarter", 250 * ms, 25},
		{"on a sample", time.Second, 100},
		{"flat part", 2 * time.Second, 100},
		{"after", 9 * time.Second, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.want, s.at(tt.at), 1e-12, "at(%v)", tt.at)
		})
	}
	// ∫ over [0.5 s, 2 s]: trapezoid 50→100 over 0.5 s, then 100 over 1 s.
	assert.InDelta(t, 37.5+100, s.integral(500*ms, 2*time.Second), 1e-9)
	assert.Zero(t, s.integral(2*time.Second, time.Second))
}

func TestWindowFromIteration(t *testing.T) {
	w := WindowFromIteration(10*time.Second, []int64{int64(30 * ms), int64(40 * ms)}, int64(2*time.Second), 2)
	require.Equal(t, Window{Start: 8 * time.Second, FirstToken: 8*time.Second + 30*ms, End: 10 * time.Second, Tokens: 2}, w)
}

func TestReasonsNames(t *testing.T) {
	tests := []struct {
		name      string
		r         Reasons
		want      []string
		str       string
		throttled bool
	}{
		{"none", 0, []string{}, "none", false},
		{"idle", ReasonGPUIdle, []string{"idle"}, "idle", false},
		{"sw power cap under load", 0x4, []string{"sw power cap"}, "sw power cap", true},
		{"hw slowdown and brake", 0x88, []string{"hw slowdown", "hw power brake slowdown"}, "hw slowdown, hw power brake slowdown", true},
		{"unknown bit", 0x1001, []string{"idle", "0x1000"}, "idle, 0x1000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.r.Names(), "Reasons(%#x).Names()", uint64(tt.r))
			assert.Equal(t, tt.str, tt.r.String())
			assert.Equal(t, tt.throttled, tt.r.Throttled())
		})
	}
}

// TestAggregateSamplerBusy: the sampler's own NVML time over the span it
// sampled — 101 samples 10 ms apart (1 s), one full sample of 4 ms every
// fifth and 0.5 ms for the others: (21×4 + 80×0.5) ms / 1 s = 12.4%.
func TestAggregateSamplerBusy(t *testing.T) {
	n := 0
	samples := gen(time.Second, constant(100), func(s *Sample) {
		s.Cost = 500 * time.Microsecond
		if n%5 == 0 {
			s.Cost = 4 * ms
		}
		n++
	})
	require.Len(t, samples, 101)
	s := Aggregate(samples, []Window{{Start: 100 * ms, FirstToken: 200 * ms, End: 900 * ms, Tokens: 1}}, AggregateOptions{})
	assert.InDelta(t, 12.4, s.SamplerBusyPct, 1e-9)
	assert.Zero(t, Aggregate(samples[:1], nil, AggregateOptions{}).SamplerBusyPct, "one sample spans no time")
}
