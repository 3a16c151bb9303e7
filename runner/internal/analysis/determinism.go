package analysis

import (
	"encoding/binary"
	"encoding/json"
	"slices"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// Verdicts of one determinism comparison.
const (
	Identical = "identical"
	Differ    = "differ"
	// NotApplicable: nothing to compare (one launch, one iteration, batch 1).
	NotApplicable = "n/a"
)

// Determinism is what one engine's greedy output token ids on one case show,
// from three comparisons that separate the usual causes:
//   - WithinLaunch: every iteration of a launch (warm-ups included), row 0,
//     against that launch's first timed iteration. A difference means the
//     same process gave two answers: state carried between iterations or
//     run-to-run nondeterministic kernels.
//   - BetweenLaunches: the launches' first timed iterations, row 0, each pair.
//     A difference with WithinLaunch identical means each process is fixed
//     but processes differ: something chosen per process (compilation,
//     autotuning, library heuristics), not state carried between iterations.
//   - BatchRows: every row of every iteration against row 0 of the same
//     iteration. Every row of a batch runs the same prompt
//     (protocol.Case.BatchSize counts copies of one prompt), in the same
//     step, so a difference cannot come from state carried between
//     iterations: it is nondeterministic or batch-position-dependent
//     numerics.
//
// The verdicts are Identical, Differ or NotApplicable.
type Determinism struct {
	WithinLaunch    string `json:"within_launch"`
	BetweenLaunches string `json:"between_launches"`
	BatchRows       string `json:"batch_rows"`
	// FirstDivergence says, for each comparison that differs, where the
	// outputs part.
	FirstDivergence Divergences `json:"first_divergence"`
	// Launches are the successful launches compared, Iterations their
	// iterations on this case (Warmups of them warm-ups), Rows the largest
	// batch (rows per iteration), Tokens the length of the first launch's
	// first timed output row.
	Launches   int `json:"launches"`
	Iterations int `json:"iterations"`
	Warmups    int `json:"warmups"`
	Rows       int `json:"rows"`
	Tokens     int `json:"tokens"`
	// Distinct is how many different output rows there were among Outputs,
	// every row of every iteration of every launch.
	Distinct int `json:"distinct_outputs"`
	Outputs  int `json:"outputs"`
	// KernelConfigs compares the kernel launch configurations the launches
	// settled on, for engines that report them; nil otherwise.
	KernelConfigs *KernelConfigs `json:"kernel_configs,omitempty"`
}

// KernelConfigsSetting is the loaded.settings key under which an engine may
// report, as a JSON object, each generated kernel's name and the launch
// configuration it settled on after autotuning (pytorch compiled on cuda: the
// Triton kernels Inductor loaded, block sizes, warps and stages). It is what
// tells "kernels chosen per process" from other causes of launches that differ.
const KernelConfigsSetting = "kernel_configs"

// KernelConfigs is what the launches' KernelConfigsSetting maps show.
type KernelConfigs struct {
	// Launches reported a map; Kernels is the number of distinct kernel names
	// over them, Distinct the number of distinct whole maps.
	Launches int `json:"launches"`
	Kernels  int `json:"kernels"`
	Distinct int `json:"distinct"`
	// Differ are the kernels (sorted) whose configuration is not the same in
	// every reporting launch; a kernel missing from a launch counts.
	Differ []string `json:"differ,omitempty"`
	// Unreadable counts launches whose setting was not a JSON object of strings.
	Unreadable int `json:"unreadable,omitempty"`
}

// kernelConfigs compares label's successful launches' KernelConfigsSetting;
// nil when none reports it.
func kernelConfigs(label string, recs []results.Record) *KernelConfigs {
	var maps []map[string]string
	kc := &KernelConfigs{}
	for _, r := range recs {
		if r.Engine != label || r.Status != results.StatusOK || r.Loaded == nil {
			continue
		}
		raw, ok := r.Loaded.Settings[KernelConfigsSetting]
		if !ok {
			continue
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			kc.Unreadable++
			continue
		}
		maps = append(maps, m)
	}
	if len(maps) == 0 && kc.Unreadable == 0 {
		return nil
	}
	kc.Launches = len(maps)
	names := map[string]bool{}
	whole := map[string]bool{}
	for _, m := range maps {
		b, _ := json.Marshal(m) // sorted keys: equal maps, equal bytes
		whole[string(b)] = true
		for n := range m {
			names[n] = true
		}
	}
	kc.Kernels, kc.Distinct = len(names), len(whole)
	for n := range names {
		v, ok := maps[0][n]
		for _, m := range maps[1:] {
			if w, ok2 := m[n]; ok2 != ok || w != v {
				kc.Differ = append(kc.Differ, n)
				break
			}
		}
	}
	slices.Sort(kc.Differ)
	return kc
}

// Divergences are the Divergence of each comparison that differs (nil for
// one that does not).
type Divergences struct {
	WithinLaunch    *Divergence `json:"within_launch,omitempty"`
	BetweenLaunches *Divergence `json:"between_launches,omitempty"`
	BatchRows       *Divergence `json:"batch_rows,omitempty"`
}

// Divergence is where compared outputs part. Min and Max are, over the pairs
// that differ, the 0-based index of the first differing token, which is also
// the number of leading tokens the pair agrees on (for outputs of different
// lengths that agree as far as the shorter goes, its length). Differ of
// Compared pairs differ.
type Divergence struct {
	Min      int `json:"min"`
	Max      int `json:"max"`
	Differ   int `json:"differ"`
	Compared int `json:"compared"`
}

// Consistent is true when no comparison differs.
func (d *Determinism) Consistent() bool {
	return d.WithinLaunch != Differ && d.BetweenLaunches != Differ && d.BatchRows != Differ
}

// divergenceAcc accumulates the comparisons of one kind.
type divergenceAcc struct{ d Divergence }

func (a *divergenceAcc) add(x, y []int) {
	a.d.Compared++
	i := firstDifference(x, y)
	if i < 0 {
		return
	}
	if a.d.Differ == 0 || i < a.d.Min {
		a.d.Min = i
	}
	a.d.Max = max(a.d.Max, i)
	a.d.Differ++
}

// verdict is the comparison's verdict and its divergence (nil unless it
// differs).
func (a *divergenceAcc) verdict() (string, *Divergence) {
	switch {
	case a.d.Compared == 0:
		return NotApplicable, nil
	case a.d.Differ == 0:
		return Identical, nil
	}
	d := a.d
	return Differ, &d
}

// firstDifference is the index of the first token where x and y differ, -1
// when they are equal.
func firstDifference(x, y []int) int {
	n := min(len(x), len(y))
	for i := range n {
		if x[i] != y[i] {
			return i
		}
	}
	if len(x) != len(y) {
		return n
	}
	return -1
}

// determinism compares the output tokens of label's successful launches on
// case ci; nil when no launch has a timed iteration with output tokens.
func determinism(label string, ci int, recs []results.Record) *Determinism {
	d := &Determinism{}
	var within, between, rows divergenceAcc
	var firsts [][]int
	distinct := map[string]bool{}
	for _, r := range recs {
		if r.Engine != label || r.Status != results.StatusOK {
			continue
		}
		ref := -1 // the launch's first timed iteration with output
		for k, it := range r.Iterations {
			if it.Raw.Case == ci && !it.Raw.Warmup && len(it.Raw.OutputTokens) > 0 {
				ref = k
				break
			}
		}
		if ref < 0 {
			continue
		}
		d.Launches++
		first := r.Iterations[ref].Raw.OutputTokens[0]
		firsts = append(firsts, first)
		for k, it := range r.Iterations {
			out := it.Raw.OutputTokens
			if it.Raw.Case != ci || len(out) == 0 {
				continue
			}
			d.Iterations++
			if it.Raw.Warmup {
				d.Warmups++
			}
			d.Rows = max(d.Rows, len(out))
			if k != ref {
				within.add(first, out[0])
			}
			for j, row := range out {
				if j > 0 {
					rows.add(out[0], row)
				}
				d.Outputs++
				distinct[key(row)] = true
			}
		}
	}
	if d.Launches == 0 {
		return nil
	}
	for i := range firsts {
		for j := i + 1; j < len(firsts); j++ {
			between.add(firsts[i], firsts[j])
		}
	}
	d.Tokens = len(firsts[0])
	d.Distinct = len(distinct)
	d.WithinLaunch, d.FirstDivergence.WithinLaunch = within.verdict()
	d.BetweenLaunches, d.FirstDivergence.BetweenLaunches = between.verdict()
	d.BatchRows, d.FirstDivergence.BatchRows = rows.verdict()
	d.KernelConfigs = kernelConfigs(label, recs)
	return d
}

// key is a map key for a row of token ids.
func key(row []int) string {
	b := make([]byte, 0, 4*len(row))
	for _, t := range row {
		b = binary.AppendVarint(b, int64(t))
	}
	return string(b)
}
