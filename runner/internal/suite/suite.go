// Package suite describes a benchmark matrix — engines × models × workloads —
// that `runner suite` runs as one cell (an ordinary benchmark) per model ×
// workload into one results directory, and keeps the state that lets an
// interrupted suite be resumed.
package suite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
)

// Config is a suite file: every field of a benchmark config (device, dtype,
// launches, iterations, engines, timeouts…), which each cell inherits, plus
// the models and workloads whose cross product are the cells. The base
// config's own model and cases must be left out.
type Config struct {
	config.Config `yaml:",inline"`
	// Models are the model directories, each synthesized when missing if it
	// has a synth section (once per suite: later cells find it).
	Models []Model `yaml:"models"`
	// Workloads are the cases, one cell each per model (Grouping per-workload), or one cell per model and batch
	// size holding every workload of that batch size (per-batch).
	Workloads []config.Case `yaml:"workloads"`
	// Grouping is how workloads make cells: per-workload (the default: each workload its own benchmark, its own
	// launches), per-batch (the workloads of one batch size run as cases of one benchmark: each launch loads the
	// model once and runs them all, so a launch's cost — process start, load, compilation — is paid once per batch
	// size instead of once per workload; comparisons stay per case) or per-model (every workload of a model in one
	// benchmark: one launch cost per model; an engine whose max batch is below a workload's batch runs the others).
	Grouping string `yaml:"cells,omitempty"`
}

// Groupings of workloads into cells (Config.Grouping).
const (
	PerWorkload = "per-workload"
	PerBatch    = "per-batch"
	PerModel    = "per-model"
)

// Model is one model of the matrix.
type Model struct {
	// Name labels the model's cells (default: the directory's base name).
	Name  string        `yaml:"name"`
	Dir   string        `yaml:"dir"`
	Synth *config.Synth `yaml:"synth,omitempty"`
	// Skip names engines known not to run this model, each with the reason the report gives: an engine variant's
	// label, or an engine's name for all its variants. Its cells leave them out with that note instead of spending
	// minutes on a failure already on record (burn's default autotune level on the 8B shape: issue #16).
	Skip map[string]string `yaml:"skip,omitempty"`
}

// Skipped is the reason the model skips an engine variant (by label, then by engine name), "" when it does not.
func (m Model) Skipped(spec config.EngineSpec) string {
	if why, ok := m.Skip[spec.DisplayLabel()]; ok {
		return why
	}
	return m.Skip[spec.Name]
}

// Cell is one model × workload, or one model × the workloads of one batch size (per-batch).
type Cell struct {
	// Name is "<model>-<workload>[+<workload>…]", the cell's directory in the suite's.
	Name      string
	Model     Model
	Workloads []config.Case
}

// Workload names the cell's workloads ("p128-n256+p2032-n16" when grouped).
func (c Cell) Workload() string {
	names := make([]string, len(c.Workloads))
	for i, w := range c.Workloads {
		names[i] = w.Name
	}
	return strings.Join(names, "+")
}

// MinBatch is the smallest batch size of the cell's workloads (per-workload and per-batch: the cell's one batch
// size): an engine that serves smaller batches sits the cell out; one that serves some of its workloads' batches
// runs those (a per-model cell).
func (c Cell) MinBatch() int {
	b := max(c.Workloads[0].BatchSize, 1)
	for _, w := range c.Workloads[1:] {
		b = min(b, max(w.BatchSize, 1))
	}
	return b
}

// Parse decodes a suite file strictly and checks it.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty suite config")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	if c.Name == "" {
		c.Name = "suite"
	}
	for i := range c.Models {
		if c.Models[i].Name == "" {
			c.Models[i].Name = filepath.Base(filepath.Clean(c.Models[i].Dir))
		}
	}
	for i := range c.Workloads {
		if c.Workloads[i].BatchSize == 0 {
			c.Workloads[i].BatchSize = 1
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and checks a suite file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read suite config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("suite config %s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem at once; each cell's config is checked
// again, in full, by CellConfig.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Model != "" || c.Synth != nil {
		add("model/synth: a suite lists its models under models: (name, dir, synth)")
	}
	if len(c.Cases) > 0 {
		add("cases: a suite lists its cases under workloads:")
	}
	if len(c.Models) == 0 {
		add("models: need at least one")
	}
	if len(c.Workloads) == 0 {
		add("workloads: need at least one")
	}
	if c.Grouping != "" && c.Grouping != PerWorkload && c.Grouping != PerBatch && c.Grouping != PerModel {
		add("cells: %q: want %s, %s or %s", c.Grouping, PerWorkload, PerBatch, PerModel)
	}
	seen := map[string]bool{}
	for i, m := range c.Models {
		if m.Dir == "" {
			add("models[%d]: dir: required", i)
		}
		if !plainName(m.Name) {
			add("models[%d]: name %q: want letters, digits, '.', '_' or '-'", i, m.Name)
		}
		if seen["m/"+m.Name] {
			add("models[%d]: name %q used twice", i, m.Name)
		}
		for k, why := range m.Skip {
			if strings.TrimSpace(why) == "" {
				add("models[%d]: skip %q: say why (the report prints it)", i, k)
			}
			if len(c.Engines) > 0 && !slices.ContainsFunc(c.Engines, func(e config.EngineSpec) bool { return e.DisplayLabel() == k || e.Name == k }) {
				add("models[%d]: skip %q: names none of the engines (a label, or an engine's name)", i, k)
			}
		}
		seen["m/"+m.Name] = true
	}
	for i, w := range c.Workloads {
		if !plainName(w.Name) {
			add("workloads[%d]: name %q: want letters, digits, '.', '_' or '-'", i, w.Name)
		}
		if seen["w/"+w.Name] {
			add("workloads[%d]: name %q used twice", i, w.Name)
		}
		seen["w/"+w.Name] = true
	}
	return errors.Join(errs...)
}

func plainName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// Cells are the model × workload cells, model-major: every workload of the
// first model, then the next model, so a small model's results come first.
// Per-batch, a model's workloads of one batch size form one cell, in the
// order their batch sizes first appear; per-model, all of them one cell.
func (c *Config) Cells() []Cell {
	var groups [][]config.Case
	switch c.Grouping {
	case PerModel:
		groups = [][]config.Case{c.Workloads}
	case PerBatch:
		at := map[int]int{}
		for _, w := range c.Workloads {
			i, ok := at[w.BatchSize]
			if !ok {
				i = len(groups)
				at[w.BatchSize] = i
				groups = append(groups, nil)
			}
			groups[i] = append(groups[i], w)
		}
	default:
		for _, w := range c.Workloads {
			groups = append(groups, []config.Case{w})
		}
	}
	var out []Cell
	for _, m := range c.Models {
		for _, g := range groups {
			cell := Cell{Model: m, Workloads: g}
			cell.Name = m.Name + "-" + cell.Workload()
			out = append(out, cell)
		}
	}
	return out
}

// AddModels extends the matrix by models: other's models that c does not have (by name), or only those named, appended
// after c's own, so their cells come after the cells already there. Everything else stays c's — engines, workloads,
// launches, iterations —, so the added cells are the same benchmark on other models; but other's timeouts replace c's:
// they bound waiting (a bigger model's longer load or export), never what is measured. It returns the added models.
func (c *Config) AddModels(other *Config, names []string) ([]Model, error) {
	has := func(ms []Model, name string) bool {
		return slices.ContainsFunc(ms, func(m Model) bool { return m.Name == name })
	}
	var add []Model
	if len(names) == 0 {
		for _, m := range other.Models {
			if !has(c.Models, m.Name) {
				add = append(add, m)
			}
		}
		if len(add) == 0 {
			return nil, fmt.Errorf("no model to add: the suite has every model of %s already", other.Name)
		}
	}
	for _, n := range names {
		i := slices.IndexFunc(other.Models, func(m Model) bool { return m.Name == n })
		switch {
		case i < 0:
			return nil, fmt.Errorf("%s has no model %q", other.Name, n)
		case has(c.Models, n):
			return nil, fmt.Errorf("model %q is in the suite already", n)
		}
		add = append(add, other.Models[i])
	}
	c.Models = append(c.Models, add...)
	c.Timeouts = other.Timeouts
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return add, nil
}

// CellConfig is the benchmark config of one cell: the suite's settings, the
// cell's model and its cases, and the engine variants given.
func (c *Config) CellConfig(cell Cell, engines []config.EngineSpec) (*config.Config, error) {
	base := c.Config
	base.Name = c.Name + "-" + cell.Name
	base.Model = cell.Model.Dir
	base.Synth = cell.Model.Synth
	base.Cases = cell.Workloads
	base.Engines = engines
	if base.Baseline != "" && !hasLabel(engines, base.Baseline) {
		base.Baseline = "" // the baseline is skipped in this cell: the first engine is
	}
	b, err := yaml.Marshal(&base)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", cell.Name, err)
	}
	cfg, err := config.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("cell %s: %w", cell.Name, err)
	}
	return cfg, nil
}

func hasLabel(specs []config.EngineSpec, label string) bool {
	for _, s := range specs {
		if s.DisplayLabel() == label {
			return true
		}
	}
	return false
}

// StateFile is the suite's own record in its results directory.
const StateFile = "suite.json"

// ConfigFile is the resolved suite config saved in its results directory,
// so `runner suite --resume DIR` runs the same matrix.
const ConfigFile = "suite.yaml"

// Cell statuses in the state file.
const (
	StatusPending     = "pending"
	StatusInterrupted = "interrupted"
	StatusDone        = "done"
	StatusFailed      = "failed" // the cell's benchmark could not run at all
	StatusSkipped     = "skipped"
)

// State is suite.json: what has run, how long it took, what was skipped.
type State struct {
	Name string `json:"name"`
	// Engines are the variant labels resolved when the suite started; a
	// resume runs the same ones.
	Engines []config.EngineSpec `json:"engines"`
	// Notes are engines left out of the whole suite and why.
	Notes []string `json:"notes,omitempty"`
	// CompileCache is the directory torch's compile caches were pointed at
	// (TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR), shared by every launch.
	CompileCache string      `json:"compile_cache,omitempty"`
	Cells        []CellState `json:"cells"`
	// Sessions counts the runner invocations that worked on the suite (1 +
	// resumes).
	Sessions int `json:"sessions"`
}

// CellState is one cell's progress.
type CellState struct {
	Name     string `json:"name"`
	Model    string `json:"model"`
	Workload string `json:"workload"`
	Status   string `json:"status"`
	// Engines are the variants the cell runs; Skipped the ones left out and
	// why (an unbatched engine in a batched workload).
	Engines []string `json:"engines,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
	// WallSeconds is the time the suite spent in the cell, summed over every
	// session that worked on it (preparing the model, hashing it, launches).
	WallSeconds float64 `json:"wall_s"`
	// Launches is the number of launches recorded in the cell's runs.jsonl.
	Launches int `json:"launches"`
	// Failed is how many of them failed.
	Failed int    `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Cell returns the state of the named cell, or nil.
func (s *State) Cell(name string) *CellState {
	for i := range s.Cells {
		if s.Cells[i].Name == name {
			return &s.Cells[i]
		}
	}
	return nil
}

// AddPending appends the cells the state does not know yet, pending, in order (a new suite's every cell; the cells of
// models added to a suite later); it returns how many.
func (s *State) AddPending(cells []Cell) int {
	n := 0
	for _, cell := range cells {
		if s.Cell(cell.Name) == nil {
			s.Cells = append(s.Cells, CellState{Name: cell.Name, Model: cell.Model.Name, Workload: cell.Workload(), Status: StatusPending})
			n++
		}
	}
	return n
}

// WallSeconds is the time spent in every cell.
func (s *State) WallSeconds() float64 {
	var t float64
	for _, c := range s.Cells {
		t += c.WallSeconds
	}
	return t
}

// Wall formats seconds as a duration rounded to the second.
func Wall(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// Label is "model × workload", how reports title a cell.
func (c CellState) Label() string { return c.Model + " × " + c.Workload }

// Done reports whether no cell is left to run.
func (s *State) Done() bool {
	for _, c := range s.Cells {
		if c.Status == StatusPending || c.Status == StatusInterrupted {
			return false
		}
	}
	return true
}

// Summary is a one-line count of the cells by status.
func (s *State) Summary() string {
	n := map[string]int{}
	for _, c := range s.Cells {
		n[c.Status]++
	}
	var parts []string
	for _, st := range []string{StatusDone, StatusFailed, StatusSkipped, StatusInterrupted, StatusPending} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return strings.Join(parts, ", ")
}
