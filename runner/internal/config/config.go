// Package config reads benchmark configs (YAML) and resolves them into the
// exact workload every engine receives.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// Smoke is the embedded default config: the tiny generated model on CPU,
// two reference-engine variants.
//
//go:embed smoke.yaml
var Smoke []byte

// Config is one benchmark: a model, a workload and the engines to compare.
type Config struct {
	// Name labels the results directory.
	Name string `yaml:"name"`
	// Model is the model directory.
	Model string `yaml:"model"`
	// Synth, when set, synthesizes Model if it does not exist yet.
	Synth *Synth `yaml:"synth"`
	// Device is "cpu" or "cuda:N".
	Device string `yaml:"device"`
	// DType is the compute dtype every engine is asked for.
	DType string `yaml:"dtype"`
	// Seed seeds synthetic prompts and engines.
	Seed uint64 `yaml:"seed"`
	// Warmup is untimed iterations per case per launch.
	Warmup int `yaml:"warmup"`
	// Iterations is timed iterations per case per launch.
	Iterations int `yaml:"iterations"`
	// Launches is the number of fresh processes per engine (K).
	Launches int `yaml:"launches"`
	// Engines are the engine variants, unless --engines overrides them.
	Engines []EngineSpec `yaml:"engines"`
	// Cases is the workload.
	Cases []Case `yaml:"cases"`
	// Adaptive, when set, adds launches until the CI target is met.
	Adaptive *Adaptive `yaml:"adaptive"`
	// Profile is "kernels" to add a profiled twin of every engine (CUPTI
	// kernel activity, profiler/README.md), or "" for none.
	Profile string `yaml:"profile"`
	// Timeouts bound each launch.
	Timeouts Timeouts `yaml:"timeouts"`
	// Baseline is the label of the engine others are compared with (default: the first).
	Baseline string `yaml:"baseline"`
	// Equivalence, when > 0, is the relative margin (0.02 = ±2%) within which each comparison is also tested for
	// equivalence (TOST on the launch level): "the same within ±2%", not only "no significant difference".
	Equivalence float64 `yaml:"equivalence,omitempty"`
	// Plugins are plugin names (runner-plugin-NAME) or paths, run before the
	// first launch and over the result (protocol/PLUGINS.md); "cost" is
	// built in.
	Plugins []string `yaml:"plugins"`
	// Prices feed the built-in cost section; flags override them.
	Prices Prices `yaml:"prices"`
}

// Prices are the user's prices, as text: GPU "3.50/h", electricity
// "0.12/kWh" (a leading currency symbol is kept).
type Prices struct {
	GPU    string `yaml:"gpu"`
	Energy string `yaml:"energy"`
}

// ProfileKernels is the one profile mode: GPU kernel activity through CUPTI.
const ProfileKernels = "kernels"

// Synth describes a synthetic model to generate when Model is missing.
type Synth struct {
	Shape string `yaml:"shape"`
	DType string `yaml:"dtype"`
	Seed  uint64 `yaml:"seed"`
}

// EngineSpec names one engine variant.
type EngineSpec struct {
	// Name is the engine binary name (reference, candle, pytorch…).
	Name string `yaml:"name" json:"name"`
	// Label names the variant in reports; default derived from name and options.
	Label string `yaml:"label" json:"label,omitempty"`
	// Threads is the CPU thread count (0 = engine default).
	Threads int `yaml:"threads" json:"threads,omitempty"`
	// Options are engine-specific options.
	Options map[string]string `yaml:"options" json:"options,omitempty"`
}

// Case is one workload entry.
type Case struct {
	Name string `yaml:"name"`
	// PromptLen asks for a deterministic synthetic prompt of this many ids.
	PromptLen int `yaml:"prompt_len"`
	// PromptTokens gives the prompt ids explicitly.
	PromptTokens []int `yaml:"prompt_tokens"`
	MaxNewTokens int   `yaml:"max_new_tokens"`
	BatchSize    int   `yaml:"batch_size"`
}

// Adaptive is the adaptive-stopping rule, applied to the median TPOT of every
// engine and case.
type Adaptive struct {
	// TargetRelCI is the wanted 95% CI half-width relative to the median.
	TargetRelCI float64 `yaml:"target_rel_ci"`
	// MaxLaunches caps the launches per engine.
	MaxLaunches int `yaml:"max_launches"`
	// MaxDuration caps the whole benchmark.
	MaxDuration Duration `yaml:"max_duration"`
}

// Timeouts bound a launch: start (spawn → loaded), stall (silence between
// events) and total; prepare bounds an engine's one-time `prepare` (default:
// total). A preparation that runs past it is not retried by the variant's
// launches in that run: they would repeat the same work (burn's autotune of a
// new shape, 13+ minutes on the H200), so each is recorded as not launched.
type Timeouts struct {
	Start   Duration `yaml:"start"`
	Stall   Duration `yaml:"stall"`
	Total   Duration `yaml:"total"`
	Prepare Duration `yaml:"prepare,omitempty"`
}

// Duration is a time.Duration written as "90s" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want e.g. 90s or 5m", n.Line, s)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q is negative", n.Line, s)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly (unknown fields are errors), fills defaults and
// validates.
func Parse(b []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty config")
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse: more than one YAML document")
	}
	c.defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "bench"
	}
	if c.Device == "" {
		c.Device = "cpu"
	}
	if c.DType == "" {
		c.DType = "f32"
	}
	if c.Launches == 0 {
		c.Launches = 3
	}
	if c.Iterations == 0 {
		c.Iterations = 5
	}
	if c.Timeouts.Start.Duration == 0 {
		c.Timeouts.Start.Duration = 10 * time.Minute
	}
	if c.Timeouts.Stall.Duration == 0 {
		c.Timeouts.Stall.Duration = 5 * time.Minute
	}
	if c.Timeouts.Total.Duration == 0 {
		c.Timeouts.Total.Duration = 60 * time.Minute
	}
	if c.Timeouts.Prepare.Duration == 0 {
		c.Timeouts.Prepare.Duration = c.Timeouts.Total.Duration
	}
	if c.Synth != nil {
		if c.Synth.DType == "" {
			c.Synth.DType = c.DType
		}
	}
	for i := range c.Cases {
		if c.Cases[i].BatchSize == 0 {
			c.Cases[i].BatchSize = 1
		}
	}
	if c.Adaptive != nil && c.Adaptive.MaxLaunches == 0 {
		c.Adaptive.MaxLaunches = 20
	}
}

// Validate reports every problem at once, each naming its field.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Model == "" {
		add("model: required (a model directory)")
	}
	if _, _, err := protocol.ParseDevice(c.Device); err != nil {
		add("device: %v", err)
	}
	if !protocol.ValidDType(c.DType) {
		add("dtype: %q is not one of f32, f16, bf16", c.DType)
	}
	if c.Equivalence < 0 || c.Equivalence >= 1 || math.IsNaN(c.Equivalence) {
		add("equivalence: %g: want a relative margin in [0, 1), e.g. 0.02 for ±2%%", c.Equivalence)
	}
	if c.Synth != nil {
		if c.Synth.Shape == "" {
			add("synth.shape: required")
		}
		if !protocol.ValidDType(c.Synth.DType) {
			add("synth.dtype: %q is not one of f32, f16, bf16", c.Synth.DType)
		}
	}
	if c.Warmup < 0 {
		add("warmup: %d is negative", c.Warmup)
	}
	if c.Iterations < 1 {
		add("iterations: %d, need at least 1", c.Iterations)
	}
	if c.Launches < 1 {
		add("launches: %d, need at least 1", c.Launches)
	}
	if c.Profile != "" && c.Profile != ProfileKernels {
		add("profile: %q, want %q or nothing", c.Profile, ProfileKernels)
	}
	if len(c.Cases) == 0 {
		add("cases: at least one case is required")
	}
	seen := map[string]bool{}
	for i, cs := range c.Cases {
		where := fmt.Sprintf("cases[%d]", i)
		if cs.Name == "" {
			add("%s.name: required", where)
		} else if seen[cs.Name] {
			add("%s.name: %q used twice", where, cs.Name)
		}
		seen[cs.Name] = true
		switch {
		case cs.PromptLen > 0 && len(cs.PromptTokens) > 0:
			add("%s: give prompt_len or prompt_tokens, not both", where)
		case cs.PromptLen < 0:
			add("%s.prompt_len: %d is negative", where, cs.PromptLen)
		case cs.PromptLen == 0 && len(cs.PromptTokens) == 0:
			add("%s: prompt_len or prompt_tokens is required", where)
		}
		for j, t := range cs.PromptTokens {
			if t < 0 {
				add("%s.prompt_tokens[%d]: negative id %d", where, j, t)
			}
		}
		if cs.MaxNewTokens < 1 {
			add("%s.max_new_tokens: %d, need at least 1", where, cs.MaxNewTokens)
		}
		if cs.BatchSize < 1 {
			add("%s.batch_size: %d, need at least 1", where, cs.BatchSize)
		}
	}
	labels := map[string]bool{}
	for i, e := range c.Engines {
		if e.Name == "" {
			add("engines[%d].name: required", i)
		}
		if e.Threads < 0 {
			add("engines[%d].threads: %d is negative", i, e.Threads)
		}
		l := e.DisplayLabel()
		if labels[l] {
			add("engines[%d]: label %q used twice", i, l)
		}
		labels[l] = true
	}
	if a := c.Adaptive; a != nil {
		if a.TargetRelCI <= 0 || a.TargetRelCI >= 1 {
			add("adaptive.target_rel_ci: %g, want a fraction in (0, 1), e.g. 0.02", a.TargetRelCI)
		}
		if a.MaxLaunches < c.Launches {
			add("adaptive.max_launches: %d is below launches %d", a.MaxLaunches, c.Launches)
		}
	}
	return errors.Join(errs...)
}

// DisplayLabel is the variant's label: the explicit one, or the spec string.
func (e EngineSpec) DisplayLabel() string {
	if e.Label != "" {
		return e.Label
	}
	return e.Spec()
}

// Spec renders the variant as "name:key=value:…" with keys sorted.
func (e EngineSpec) Spec() string {
	var b strings.Builder
	b.WriteString(e.Name)
	if e.Threads > 0 {
		fmt.Fprintf(&b, ":threads=%d", e.Threads)
	}
	for _, k := range sortedKeys(e.Options) {
		fmt.Fprintf(&b, ":%s=%s", k, e.Options[k])
	}
	return b.String()
}

// ParseEngines parses the --engines flag: comma-separated variants, each
// "name" or "name:key=value:key=value" (threads=N sets the CPU thread count,
// every other key is an engine option).
func ParseEngines(s string) ([]EngineSpec, error) {
	var out []EngineSpec
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		e := EngineSpec{Name: parts[0]}
		if e.Name == "" {
			return nil, fmt.Errorf("engine %q: empty name", item)
		}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("engine %q: option %q is not key=value", item, kv)
			}
			if k == "threads" {
				var n int
				if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 1 || fmt.Sprint(n) != v {
					return nil, fmt.Errorf("engine %q: threads=%q is not a positive integer", item, v)
				}
				e.Threads = n
				continue
			}
			if e.Options == nil {
				e.Options = map[string]string{}
			}
			e.Options[k] = v
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("--engines: no engine named")
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}
