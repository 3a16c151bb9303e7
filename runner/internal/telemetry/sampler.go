package telemetry

import (
	"fmt"
	"sync"
	"time"
)

// Fields is a bitmask of the Sample fields that hold a reading.
type Fields uint32

// Sample fields. A field whose bit is clear was not read (unsupported or a
// transient NVML error) and is zero.
const (
	FieldProcMem Fields = 1 << iota
	FieldAllProcMem
	FieldDevMem
	FieldUtil
	FieldPower
	FieldEnergy
	FieldTemp
	FieldClocks
	FieldReasons
	FieldPowerInstant
)

// Has reports whether every field in f is set.
func (v Fields) Has(f Fields) bool { return v&f == f }

// Sample is one reading of a device.
type Sample struct {
	// T is the runner's monotonic clock at the energy-counter read (at the
	// power read in a sample that skips the counter), as time since the
	// sampler's epoch.
	T time.Duration `json:"t_ns"`
	// Valid says which fields below hold a reading.
	Valid Fields `json:"valid"`
	// ProcMem is the device memory used by the engine's process tree, in bytes.
	ProcMem uint64 `json:"proc_mem_bytes"`
	// AllProcMem is the device memory used by all compute processes, in bytes.
	AllProcMem uint64 `json:"all_proc_mem_bytes"`
	// DevMemUsed is the device memory in use, in bytes.
	DevMemUsed uint64 `json:"dev_mem_used_bytes"`
	// SMUtil is NVML's GPU utilization (percent of the last sample period,
	// 1/6 s to 1 s, in which a kernel ran) and MemUtil the percent in which
	// device memory was read or written.
	SMUtil  uint32 `json:"sm_util_pct"`
	MemUtil uint32 `json:"mem_util_pct"`
	// PowerMW is the power draw in mW as nvmlDeviceGetPowerUsage reports it:
	// on Hopper and later a 1 s average.
	PowerMW uint32 `json:"power_mw"`
	// PowerInstantMW is the instantaneous power draw in mW
	// (NVML_FI_DEV_POWER_INSTANT), where the driver has it.
	PowerInstantMW uint32 `json:"power_instant_mw,omitempty"`
	// EnergyMJ is the total energy counter since the driver loaded, in mJ.
	EnergyMJ uint64 `json:"energy_mj"`
	// TempC is the GPU temperature in °C.
	TempC uint32 `json:"temperature_c"`
	// SMClockMHz and MemClockMHz are the current clocks in MHz.
	SMClockMHz  uint32 `json:"sm_clock_mhz"`
	MemClockMHz uint32 `json:"mem_clock_mhz"`
	// Reasons are the clock-event reasons at the time of the sample.
	Reasons Reasons `json:"reasons"`
	// Cost is the wall time the sampler spent taking this sample; CostFast
	// the part spent on the energy and power reads every sample takes.
	Cost     time.Duration `json:"cost_ns"`
	CostFast time.Duration `json:"cost_fast_ns"`
}

// DefaultInterval is the sampling interval when none is given. One NVML call
// is expensive: reading the energy counter takes ~3.5 ms on the H200 (median;
// p90 up to 11 ms under load), every other call the sampler makes 2–90 µs
// (results/h200-2026-12-03), and an engine's own calls into the driver wait
// meanwhile. At 10 ms the sampler sat in NVML 38–45% of the time and raised
// mistral.rs's TTFT 1.85×; at 100 ms (3–6%) no change was measurable. The
// counter itself moves only every ~100 ms, so 100 ms loses no energy
// resolution; the mean power of a phase shorter than three samples is then
// left blank, unless PowerInterval (--power-interval) reads the
// instantaneous power, µs a call, more often.
const DefaultInterval = 100 * time.Millisecond

// DefaultFullInterval is how often a full sample is taken when FullEvery is
// not set: the slow fields (memory, processes, utilization, clocks,
// temperature, reasons) change slowly or are peaks of long phases.
const DefaultFullInterval = time.Second

// SamplerOptions configure a Sampler.
type SamplerOptions struct {
	// Interval between samples; DefaultInterval when 0.
	Interval time.Duration
	// PowerInterval, when shorter than Interval, reads the instantaneous
	// power (µs a call) every PowerInterval and keeps the energy counter
	// (ms a call) at about Interval: the power of short phases at almost no
	// cost. 0: everything every Interval.
	PowerInterval time.Duration
	// FullEvery makes every n-th sample a full one (memory, processes,
	// utilization, temperature, clocks, reasons, average power); the others
	// read only the energy counter and the instantaneous power (average
	// power where that is not supported). 0: one full sample per
	// DefaultFullInterval.
	FullEvery int
	// Epoch is the zero of the runner clock: Sample.T is time since Epoch,
	// measured on the monotonic clock. The zero Epoch means the sampler's
	// creation time.
	Epoch time.Time
	// Pids returns the engine's process tree (its pid and all descendants);
	// see ProcTree. It is called again only when NVML shows a pid the sampler
	// has not classified yet. Nil disables per-process memory.
	Pids func() []uint32
}

// Sampler samples one device in its own goroutine between Start and Stop.
type Sampler struct {
	g        gpu
	interval time.Duration
	every    int // full sample every n-th
	energy   int // energy counter every n-th (full samples read it too)
	n        int
	// last is set for the sample Stop takes: it reads the energy counter,
	// so the counter's series covers the whole run.
	last  bool
	epoch time.Time
	pids  func() []uint32
	// mine and foreign classify NVML pids, so Pids runs only for new ones.
	mine    map[uint32]bool
	samples []Sample

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	started   bool
}

// NewSampler returns a sampler of device i. It does not start sampling.
func (t *Telemetry) NewSampler(i int, opts SamplerOptions) (*Sampler, error) {
	g, err := t.dev(i)
	if err != nil {
		return nil, err
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("sampler: negative interval %v", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.PowerInterval < 0 {
		return nil, fmt.Errorf("sampler: negative power interval %v", opts.PowerInterval)
	}
	tick, energyEvery := opts.Interval, 1
	if opts.PowerInterval > 0 && opts.PowerInterval < opts.Interval {
		tick = opts.PowerInterval
		energyEvery = max(1, int((opts.Interval+tick/2)/tick))
	}
	if opts.FullEvery <= 0 {
		opts.FullEvery = max(1, int((DefaultFullInterval+tick/2)/tick))
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = time.Now()
	}
	return &Sampler{
		g:        g,
		interval: tick,
		every:    opts.FullEvery,
		energy:   energyEvery,
		epoch:    opts.Epoch,
		pids:     opts.Pids,
		mine:     map[uint32]bool{},
		samples:  make([]Sample, 0, 1024),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Start takes a first sample, then one every interval in a new goroutine
// until Stop. Calling it twice does nothing.
func (s *Sampler) Start() {
	s.startOnce.Do(func() {
		s.started = true
		s.sample()
		go s.loop()
	})
}

func (s *Sampler) loop() {
	defer close(s.done)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.sample()
		}
	}
}

// Stop ends sampling, takes a last sample and returns every sample in time
// order. Later calls return the same samples.
func (s *Sampler) Stop() []Sample {
	s.stopOnce.Do(func() {
		close(s.stop)
		if s.started {
			<-s.done
		}
		s.last = true
		s.sample()
	})
	return s.samples
}

// sample takes one sample and appends it. Only one goroutine calls it at a
// time: the loop between Start and Stop, the caller otherwise.
func (s *Sampler) sample() {
	begin := time.Now()
	var smp Sample
	full := s.n%s.every == 0
	withEnergy := full || s.last || s.n%s.energy == 0
	s.n++
	// The timestamp brackets the first read: the energy counter's, which the
	// windows are cut on, or the power's in a sample without it.
	if withEnergy {
		if e, err := s.g.energy(); err == nil {
			smp.EnergyMJ = e
			smp.Valid |= FieldEnergy
		}
	} else {
		s.g.readPower(&smp, false)
	}
	mid := time.Now()
	smp.T = mid.Sub(s.epoch) - mid.Sub(begin)/2
	if !full {
		if withEnergy {
			s.g.readPower(&smp, false)
		}
		smp.CostFast = time.Since(begin)
		smp.Cost = smp.CostFast
		s.samples = append(s.samples, smp)
		return
	}
	s.g.read(&smp)
	if procs, err := s.g.processes(); err == nil {
		smp.Valid |= FieldAllProcMem
		var own uint64
		matched := false
		for _, p := range procs {
			smp.AllProcMem += p.UsedBytes
			if s.pids == nil {
				continue
			}
			isMine, known := s.mine[p.Pid]
			if !known {
				s.refresh(procs)
				isMine = s.mine[p.Pid]
			}
			if isMine {
				own += p.UsedBytes
				matched = true
			}
		}
		if matched {
			smp.ProcMem = own
			smp.Valid |= FieldProcMem
		}
	}
	smp.Cost = time.Since(begin)
	s.samples = append(s.samples, smp)
}

// refresh re-reads the engine's process tree and classifies every pid NVML
// shows.
func (s *Sampler) refresh(procs []Process) {
	tree := map[uint32]bool{}
	for _, pid := range s.pids() {
		tree[pid] = true
	}
	for _, p := range procs {
		s.mine[p.Pid] = tree[p.Pid]
	}
}
