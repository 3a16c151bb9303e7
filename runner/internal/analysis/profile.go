package analysis

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/profile"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// ProfileSuffix ends a profiled twin's label (bench.ProfileSuffix).
const ProfileSuffix = "+profile"

// Profile is the kernel profile of a run with profiled twins: per engine and
// case, decode figures per token (medians over profiled launches), and the
// profiler's overhead (twin vs the same engine unprofiled).
type Profile struct {
	Rows     []ProfileRow      `json:"rows"`
	Overhead []ProfileOverhead `json:"overhead,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
}

// ProfileRow is one profiled engine on one case, decode phase. Per-token
// figures are per decode step (one token per sequence).
type ProfileRow struct {
	Engine     string `json:"engine"`
	Case       string `json:"case"`
	Launches   int    `json:"launches"`
	Iterations int    `json:"iterations"`
	// WallUs = BusyUs + IdleUs per token; BusyUs is the union of kernel
	// intervals, IdleUs the time the GPU waited for the host.
	WallUs        float64 `json:"wall_us_per_token"`
	BusyUs        float64 `json:"busy_us_per_token"`
	IdleUs        float64 `json:"idle_us_per_token"`
	Kernels       float64 `json:"kernels_per_token"`
	GraphLaunches float64 `json:"graph_launches_per_token"`
	Memcpys       float64 `json:"memcpys_per_token"`
	MemcpyBytes   float64 `json:"memcpy_bytes_per_token"`
	// Top are the kernels by time share over all profiled launches; Share is
	// of summed kernel time, Us per token.
	Top []ProfileKernel `json:"top"`
	// WeightGBs is weight bytes per token / busy time per token: the
	// bandwidth the kernels achieved while the GPU was busy; MeasuredGBs the
	// probe's bandwidth, Pct their ratio.
	WeightGBs   float64 `json:"weight_gbs,omitempty"`
	MeasuredGBs float64 `json:"measured_gbs,omitempty"`
	Pct         float64 `json:"pct_of_measured,omitempty"`
}

// ProfileKernel is one kernel (short name) in a ProfileRow.
type ProfileKernel struct {
	Name    string  `json:"name"`
	Share   float64 `json:"share"`
	Us      float64 `json:"us_per_token"`
	PerStep float64 `json:"count_per_token"`
	Example string  `json:"example,omitempty"`
}

// ProfileOverhead compares decode tok/s of an engine's profiled twin with the
// engine unprofiled, launch-level (Ratio = profiled / unprofiled).
type ProfileOverhead struct {
	Engine string `json:"engine"`
	Case   string `json:"case"`
	stats.Comparison
}

// buildProfile is nil for a run without profiled launches.
func buildProfile(s *Summary, recs []results.Record) *Profile {
	if !slices.ContainsFunc(recs, func(r results.Record) bool { return r.Profiled }) {
		return nil
	}
	p := &Profile{}
	meas := 0.0
	if s.Env.Bandwidth != nil {
		meas = s.Env.Bandwidth.BytesPerSec
	}
	for ci, c := range s.Cases {
		for _, r := range c.Results {
			if !strings.HasSuffix(r.Engine, ProfileSuffix) {
				continue
			}
			row, ok := profileRow(r.Engine, c.Name, ci, recs, &p.Warnings)
			if !ok {
				continue
			}
			if wb := engineWeightBytes(s.Env.Model.WeightBytesPerToken, s.Env.Model.DType, r.Engine, recs); row.BusyUs > 0 && wb > 0 {
				row.WeightGBs = float64(wb) / (row.BusyUs * 1e3)
				if meas > 0 {
					row.MeasuredGBs = meas / 1e9
					row.Pct = 100 * row.WeightGBs / row.MeasuredGBs
				}
			}
			p.Rows = append(p.Rows, row)
			base := c.Result(strings.TrimSuffix(r.Engine, ProfileSuffix))
			a, b := base, r.Metrics["decode_tps"]
			if a == nil || len(a.Metrics["decode_tps"].Samples) == 0 || len(b.Samples) == 0 {
				continue
			}
			cmp := stats.Compare(a.Metrics["decode_tps"].Groups(), b.Groups(), stats.CompareOptions{Alpha: 0.05, Resamples: 2000, Seed: 1})
			p.Overhead = append(p.Overhead, ProfileOverhead{Engine: base.Engine, Case: c.Name, Comparison: cmp})
		}
	}
	return p
}

func profileRow(label, caseName string, ci int, recs []results.Record, warnings *[]string) (ProfileRow, bool) {
	row := ProfileRow{Engine: strings.TrimSuffix(label, ProfileSuffix), Case: caseName}
	var wall, busy, idle, kern, graphs, copies, bytes []float64
	top := map[string]*ProfileKernel{}
	var totalNs float64
	var steps int
	for _, r := range recs {
		if r.Engine != label || r.Status != results.StatusOK || len(r.Profile) == 0 {
			continue
		}
		var l profile.Launch
		if err := json.Unmarshal(r.Profile, &l); err != nil {
			*warnings = append(*warnings, fmt.Sprintf("%s launch %d: profile: %v", label, r.Launch+1, err))
			continue
		}
		for _, cp := range l.Cases {
			d := cp.Decode
			if cp.Case != ci || d.Steps == 0 {
				continue
			}
			row.Launches++
			row.Iterations += cp.Iterations
			wall = append(wall, d.PerStep(d.WallNs)/1e3)
			busy = append(busy, d.PerStep(d.BusyNs)/1e3)
			idle = append(idle, d.PerStep(d.IdleNs())/1e3)
			kern = append(kern, d.PerStep(d.Kernels))
			graphs = append(graphs, d.PerStep(d.GraphLaunches))
			copies = append(copies, d.PerStep(d.Memcpys))
			bytes = append(bytes, d.PerStep(d.MemcpyBytes))
			steps += d.Steps
			for _, sh := range d.Top {
				k := top[sh.Name]
				if k == nil {
					k = &ProfileKernel{Name: sh.Name, Example: sh.Example}
					top[sh.Name] = k
				}
				k.Us += float64(sh.Ns) / 1e3
				k.PerStep += float64(sh.Count)
				totalNs += float64(sh.Ns)
			}
		}
	}
	if row.Launches == 0 {
		return row, false
	}
	med := func(xs []float64) float64 { return stats.Summarize(xs).Median }
	row.WallUs, row.BusyUs, row.IdleUs = med(wall), med(busy), med(idle)
	row.Kernels, row.GraphLaunches, row.Memcpys, row.MemcpyBytes = med(kern), med(graphs), med(copies), med(bytes)
	for _, k := range top {
		if totalNs > 0 {
			k.Share = k.Us * 1e3 / totalNs
		}
		k.Us /= float64(steps)
		k.PerStep /= float64(steps)
		row.Top = append(row.Top, *k)
	}
	slices.SortFunc(row.Top, func(a, b ProfileKernel) int {
		if (a.Name == "other") != (b.Name == "other") { // "other" last
			return boolSign(a.Name == "other")
		}
		if c := cmp.Compare(b.Us, a.Us); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return row, true
}

func boolSign(b bool) int {
	if b {
		return 1
	}
	return -1
}
