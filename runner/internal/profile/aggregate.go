package profile

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// FlushGrace is how long after an iteration ends a flush must have begun
// before a file without a trailer is trusted to hold all of that
// iteration's activity: two periods of the library's flush thread (100 ms)
// plus slack.
const FlushGrace int64 = 250e6

// TopKernels is how many kernels a phase lists by time; the rest are "other". 16: Inductor's decode graph of
// the Llama-3-8B has ~20 distinct kernels, and the GEMVs behind the distance to the roofline are spread over them.
const TopKernels = 16

// Window is one timed iteration on CLOCK_MONOTONIC, in ns.
type Window struct {
	Case int
	// Start and End bound the iteration; FirstToken and LastToken bound its
	// decode phase (N_out − 1 steps).
	Start, FirstToken, LastToken, End int64
	// Steps is the number of output positions (tokens per sequence).
	Steps int
	Batch int
}

// Windows places a launch's timed iterations on CLOCK_MONOTONIC. spawnMono is
// CLOCK_MONOTONIC at spawn, the origin of Iteration.ArrivedNs. An engine's
// start_ns has its own epoch, so the offset from engine clock to runner clock
// is estimated as the smallest (arrival − engine end) over the launch's
// iterations: the event that reached the runner fastest after its iteration
// ended. Token offsets then keep the engine's own precision.
func Windows(its []results.Iteration, spawnMono int64) []Window {
	if len(its) == 0 {
		return nil
	}
	off := int64(0)
	for i, it := range its {
		d := it.ArrivedNs - (it.Raw.StartNs + it.Raw.EndNs)
		if i == 0 || d < off {
			off = d
		}
	}
	var out []Window
	for _, it := range its {
		if it.Raw.Warmup || len(it.Raw.TokenNs) == 0 {
			continue
		}
		s := spawnMono + off + it.Raw.StartNs
		tk := it.Raw.TokenNs
		out = append(out, Window{
			Case: it.Raw.Case, Start: s, FirstToken: s + tk[0], LastToken: s + tk[len(tk)-1], End: s + it.Raw.EndNs,
			Steps: len(tk), Batch: max(1, len(it.Raw.OutputTokens)),
		})
	}
	return out
}

// Phase is GPU activity summed over the covered iterations of one case in one
// phase (a whole iteration, or its decode steps). Divide by Steps for figures
// per token (per decode step; × batch for sequences).
type Phase struct {
	Steps int `json:"steps"`
	// WallNs is the phase's host time; BusyNs the union of kernel intervals
	// inside it (memcpys not included); IdleNs = WallNs − BusyNs.
	WallNs  int64 `json:"wall_ns"`
	BusyNs  int64 `json:"busy_ns"`
	Kernels int64 `json:"kernels"`
	// KernelNs sums kernel durations (more than BusyNs when kernels overlap).
	KernelNs      int64   `json:"kernel_ns"`
	GraphLaunches int64   `json:"graph_launches"`
	GraphKernels  int64   `json:"graph_kernels"`
	Memcpys       int64   `json:"memcpys"`
	MemcpyBytes   int64   `json:"memcpy_bytes"`
	MemcpyNs      int64   `json:"memcpy_ns"`
	HtoD          int64   `json:"htod"`
	DtoH          int64   `json:"dtoh"`
	Memsets       int64   `json:"memsets"`
	Top           []Share `json:"top,omitempty"`
}

// IdleNs is WallNs − BusyNs.
func (p Phase) IdleNs() int64 { return p.WallNs - p.BusyNs }

// PerStep divides x by the phase's steps.
func (p Phase) PerStep(x int64) float64 {
	if p.Steps == 0 {
		return 0
	}
	return float64(x) / float64(p.Steps)
}

// Share is one kernel (by short name) in a phase: its summed duration and
// launch count; Name "other" gathers what is past the top ones.
type Share struct {
	Name  string `json:"name"`
	Ns    int64  `json:"ns"`
	Count int64  `json:"count"`
	// Example is one full (mangled) name behind Name, cut to 200 bytes.
	Example string `json:"example,omitempty"`
}

// CaseProfile is one case of one launch.
type CaseProfile struct {
	Case int `json:"case"`
	// Iterations are the timed iterations whose activity is complete;
	// Uncovered those left out because their file ended before them.
	Iterations int   `json:"iterations"`
	Uncovered  int   `json:"uncovered,omitempty"`
	Batch      int   `json:"batch"`
	Iteration  Phase `json:"iteration"`
	Decode     Phase `json:"decode"`
}

// Process is one traced CUDA process.
type Process struct {
	PID          int              `json:"pid"`
	Exe          string           `json:"exe"`
	CUPTIVersion uint32           `json:"cupti_version"`
	Kernels      int              `json:"kernels"`
	Clean        bool             `json:"clean_exit"`
	Dropped      map[string]int64 `json:"dropped,omitempty"`
	Warnings     []string         `json:"warnings,omitempty"`
}

// Launch is the profile of one launch, stored in its record.
type Launch struct {
	Processes []Process     `json:"processes"`
	Cases     []CaseProfile `json:"cases"`
	Warnings  []string      `json:"warnings,omitempty"`
}

// Analyze aligns the traces' activity with the windows and sums it per case.
// Activity from every traced process counts (one GPU, one timeline).
func Analyze(traces []*Trace, windows []Window) Launch {
	var l Launch
	var kernels, memcpys, memsets []Activity
	type named struct {
		Activity
		name string
	}
	var nk []named
	coverEnd := int64(1<<63 - 1)
	for _, t := range traces {
		p := Process{PID: t.PID, Exe: filepath.Base(t.Exe), CUPTIVersion: t.CUPTIVersion, Kernels: len(t.Kernels), Clean: t.Clean, Warnings: t.Warnings}
		for k, v := range t.Dropped {
			if v > 0 {
				if p.Dropped == nil {
					p.Dropped = map[string]int64{}
				}
				p.Dropped[k] = v
				l.Warnings = append(l.Warnings, fmt.Sprintf("pid %d (%s): CUPTI dropped %d records (%s): busy time and counts are low", t.PID, p.Exe, v, k))
			}
		}
		for _, w := range t.Warnings {
			l.Warnings = append(l.Warnings, fmt.Sprintf("pid %d (%s): %s", t.PID, p.Exe, w))
		}
		if t.Truncated {
			l.Warnings = append(l.Warnings, fmt.Sprintf("pid %d (%s): activity file ends inside a record", t.PID, p.Exe))
		}
		l.Processes = append(l.Processes, p)
		if len(t.Kernels)+len(t.Memcpys)+len(t.Memsets) > 0 && !t.Clean {
			coverEnd = min(coverEnd, t.LastFlushNs-FlushGrace)
		}
		for _, k := range t.Kernels {
			nk = append(nk, named{k, t.Names[k.Name]})
		}
		memcpys = append(memcpys, t.Memcpys...)
		memsets = append(memsets, t.Memsets...)
	}
	sort.SliceStable(nk, func(i, j int) bool { return nk[i].Start < nk[j].Start })
	sort.SliceStable(memcpys, func(i, j int) bool { return memcpys[i].Start < memcpys[j].Start })
	sort.SliceStable(memsets, func(i, j int) bool { return memsets[i].Start < memsets[j].Start })
	kernels = make([]Activity, len(nk))
	knames := make([]string, len(nk))
	var maxDur int64
	for i, k := range nk {
		kernels[i], knames[i] = k.Activity, k.name
		maxDur = max(maxDur, k.End-k.Start)
	}
	if len(traces) == 0 {
		l.Warnings = append(l.Warnings, "no activity file: no CUDA process of the launch loaded the profiler")
	} else if len(kernels) == 0 {
		l.Warnings = append(l.Warnings, "no kernel recorded in any activity file")
	}

	byCase := map[int]*CaseProfile{}
	tops := map[int][2]map[string]*Share{}
	var order []int
	for _, w := range windows {
		cp := byCase[w.Case]
		if cp == nil {
			cp = &CaseProfile{Case: w.Case, Batch: w.Batch}
			byCase[w.Case] = cp
			tops[w.Case] = [2]map[string]*Share{{}, {}}
			order = append(order, w.Case)
		}
		if w.End > coverEnd {
			cp.Uncovered++
			continue
		}
		cp.Iterations++
		tp := tops[w.Case]
		add(&cp.Iteration, tp[0], kernels, knames, memcpys, memsets, maxDur, w.Start, w.End, w.Steps)
		if w.Steps > 1 {
			add(&cp.Decode, tp[1], kernels, knames, memcpys, memsets, maxDur, w.FirstToken, w.LastToken, w.Steps-1)
		}
	}
	for _, c := range order {
		cp := byCase[c]
		cp.Iteration.Top = top(tops[c][0])
		cp.Decode.Top = top(tops[c][1])
		if cp.Uncovered > 0 {
			l.Warnings = append(l.Warnings, fmt.Sprintf("case %d: %d timed iteration(s) left out: an activity file without a clean exit was last flushed before they ended", c, cp.Uncovered))
		}
		l.Cases = append(l.Cases, *cp)
	}
	return l
}

// add sums the activity inside [lo, hi) into p: kernels and copies by their
// start, busy time as the union of kernel intervals clipped to the window.
func add(p *Phase, shares map[string]*Share, kernels []Activity, knames []string, memcpys, memsets []Activity, maxDur, lo, hi int64, steps int) {
	p.Steps += steps
	p.WallNs += hi - lo
	i := sort.Search(len(kernels), func(i int) bool { return kernels[i].Start >= lo-maxDur })
	var curS, curE int64 = -1, -1
	graphs := map[[2]uint32]bool{}
	for ; i < len(kernels) && kernels[i].Start < hi; i++ {
		k := kernels[i]
		s, e := max(k.Start, lo), min(k.End, hi)
		if e > s {
			if curE < 0 || s > curE {
				if curE > curS {
					p.BusyNs += curE - curS
				}
				curS, curE = s, e
			} else {
				curE = max(curE, e)
			}
		}
		if k.Start < lo {
			continue
		}
		p.Kernels++
		p.KernelNs += k.End - k.Start
		if k.Graph != 0 {
			p.GraphKernels++
			graphs[[2]uint32{k.Graph, k.Corr}] = true
		}
		short := ShortName(knames[i])
		sh := shares[short]
		if sh == nil {
			ex := knames[i]
			if len(ex) > 200 {
				ex = ex[:200]
			}
			sh = &Share{Name: short, Example: ex}
			shares[short] = sh
		}
		sh.Ns += k.End - k.Start
		sh.Count++
	}
	if curE > curS {
		p.BusyNs += curE - curS
	}
	p.GraphLaunches += int64(len(graphs))
	for _, m := range inWindow(memcpys, lo, hi) {
		p.Memcpys++
		p.MemcpyBytes += int64(m.Bytes)
		p.MemcpyNs += m.End - m.Start
		switch m.Copy {
		case CopyHtoD:
			p.HtoD++
		case CopyDtoH:
			p.DtoH++
		}
	}
	p.Memsets += int64(len(inWindow(memsets, lo, hi)))
}

func inWindow(xs []Activity, lo, hi int64) []Activity {
	i := sort.Search(len(xs), func(i int) bool { return xs[i].Start >= lo })
	j := sort.Search(len(xs), func(i int) bool { return xs[i].Start >= hi })
	return xs[i:j]
}

// top sorts shares by time and folds all past TopKernels into "other".
func top(m map[string]*Share) []Share {
	var all []Share
	for _, s := range m {
		all = append(all, *s)
	}
	slices.SortFunc(all, func(a, b Share) int {
		if c := cmp.Compare(b.Ns, a.Ns); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if len(all) <= TopKernels {
		return all
	}
	other := Share{Name: "other"}
	for _, s := range all[TopKernels:] {
		other.Ns += s.Ns
		other.Count += s.Count
	}
	return append(all[:TopKernels], other)
}
