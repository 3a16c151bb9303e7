package telemetry

import (
	"context"
	"fmt"
	"time"
)

// State is a device's condition at one moment, as the idle check sees it.
type State struct {
	TempC uint32 `json:"temperature_c"`
	// PowerW is the power draw in W.
	PowerW float64 `json:"power_w"`
	// Util is the SM utilization in %.
	Util uint32 `json:"sm_util_pct"`
	// MemUsed is the device memory in use, in bytes.
	MemUsed uint64 `json:"mem_used_bytes"`
}

// State reads device i's temperature, power, utilization and memory.
func (t *Telemetry) State(i int) (State, error) {
	g, err := t.dev(i)
	if err != nil {
		return State{}, err
	}
	return state(g)
}

func state(g gpu) (State, error) {
	var s Sample
	g.read(&s)
	var st State
	if s.Valid.Has(FieldTemp) {
		st.TempC = s.TempC
	}
	if s.Valid.Has(FieldPower) {
		st.PowerW = float64(s.PowerMW) / 1e3
	}
	if s.Valid.Has(FieldUtil) {
		st.Util = s.SMUtil
	}
	_, used, err := g.memory()
	if err != nil {
		return st, fmt.Errorf("memory info: %w", err)
	}
	st.MemUsed = used
	return st, nil
}

// IdleOptions say when a device counts as idle again after a run. Thresholds
// are relative to Baseline, the device at rest (take it with State before the
// first launch).
type IdleOptions struct {
	// Baseline is the device at rest.
	Baseline State
	// Timeout bounds the wait; 60 s when 0.
	Timeout time.Duration
	// Poll is the time between checks; 250 ms when 0.
	Poll time.Duration
	// TempC is how far above the baseline temperature the device may be, in
	// °C; 3 when 0.
	TempC uint32
	// PowerW is how far above the baseline power the device may draw, in W;
	// 10 when 0.
	PowerW float64
	// Util is the highest SM utilization that counts as idle, in %; 0 when 0.
	Util uint32
	// MemSlack is how far above the baseline memory use the device may be,
	// in bytes; 256 MiB when 0.
	MemSlack uint64
}

// IdleReport tells how a wait for idle went.
type IdleReport struct {
	// Waited is how long the wait took.
	Waited time.Duration `json:"waited_ns"`
	// Last is the state at the last check.
	Last State `json:"last"`
	// Idle is true when the device met every threshold before the timeout.
	Idle bool `json:"idle"`
	// Warnings say which thresholds were still unmet at the timeout.
	Warnings []string `json:"warnings,omitempty"`
}

// WaitIdle polls device i until it is back at rest (temperature, power,
// utilization and memory near opts.Baseline) or opts.Timeout passes. A timeout
// is not an error: the report's Warnings say what was still off, for the run's
// record. The error is for a cancelled ctx or an unreadable device.
func (t *Telemetry) WaitIdle(ctx context.Context, i int, opts IdleOptions) (IdleReport, error) {
	g, err := t.dev(i)
	if err != nil {
		return IdleReport{}, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	if opts.TempC == 0 {
		opts.TempC = 3
	}
	if opts.PowerW == 0 {
		opts.PowerW = 10
	}
	if opts.MemSlack == 0 {
		opts.MemSlack = 256 << 20
	}
	begin := time.Now()
	deadline := time.NewTimer(opts.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(opts.Poll)
	defer tick.Stop()
	var rep IdleReport
	for {
		st, err := state(g)
		if err != nil {
			return rep, fmt.Errorf("gpu %d: wait for idle: %w", i, err)
		}
		rep.Last, rep.Waited = st, time.Since(begin)
		off := opts.unmet(st)
		if len(off) == 0 {
			rep.Idle = true
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("gpu %d: wait for idle: %w", i, ctx.Err())
		case <-deadline.C:
			rep.Waited = time.Since(begin)
			for _, o := range off {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("gpu %d not idle after %v: %s", i, opts.Timeout, o))
			}
			return rep, nil
		case <-tick.C:
		}
	}
}

// unmet lists the thresholds st does not meet.
func (o IdleOptions) unmet(st State) []string {
	var off []string
	b := o.Baseline
	if st.TempC > b.TempC+o.TempC {
		off = append(off, fmt.Sprintf("temperature %d °C > %d °C (rest %d + %d)", st.TempC, b.TempC+o.TempC, b.TempC, o.TempC))
	}
	if st.PowerW > b.PowerW+o.PowerW {
		off = append(off, fmt.Sprintf("power %.1f W > %.1f W (rest %.1f + %.1f)", st.PowerW, b.PowerW+o.PowerW, b.PowerW, o.PowerW))
	}
	if st.Util > o.Util {
		off = append(off, fmt.Sprintf("sm utilization %d%% > %d%%", st.Util, o.Util))
	}
	if st.MemUsed > b.MemUsed+o.MemSlack {
		off = append(off, fmt.Sprintf("memory used %s > %s (rest %s + %s)", gib(st.MemUsed), gib(b.MemUsed+o.MemSlack), gib(b.MemUsed), gib(o.MemSlack)))
	}
	return off
}
