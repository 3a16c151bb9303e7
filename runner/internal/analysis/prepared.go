package analysis

import (
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// Prepared is an engine's `ENGINE prepare` as the report shows it: the
// one-time, model-derived work (a conversion, an export) done before its
// first launch and counted in no launch's cold start.
type Prepared struct {
	Engine string `json:"engine"`
	// WallS is spawn → exit of the prepare process, in s.
	WallS float64 `json:"wall_s"`
	// Ran is false when everything was already cached.
	Ran   bool              `json:"ran"`
	Steps map[string]string `json:"steps,omitempty"`
	Error string            `json:"error,omitempty"`
}

// Nothing is why the engine had nothing to prepare for this request (its protocol.PreparedNothing step), "" when it
// prepared something or found it cached.
func (p Prepared) Nothing() string { return p.Steps[protocol.PreparedNothing] }

// PreparedOf keeps one preparation per engine, in the order engines were
// first prepared: the longest that made something (what the work costs), else
// the last (a resumed run prepares again and finds its cache; a failure shows
// unless a later attempt succeeded).
func PreparedOf(preps []results.Preparation) []Prepared {
	var out []Prepared
	at := map[string]int{}
	for _, p := range preps {
		x := Prepared{Engine: p.Engine, WallS: float64(p.WallNs) / 1e9, Error: p.Error}
		if p.Prepared != nil {
			x.Ran, x.Steps = p.Prepared.Ran, p.Prepared.Steps
		}
		i, ok := at[p.Engine]
		if !ok {
			at[p.Engine] = len(out)
			out = append(out, x)
			continue
		}
		if cur := out[i]; !cur.Ran || cur.Error != "" || (x.Ran && x.WallS > cur.WallS) {
			out[i] = x
		}
	}
	return out
}
