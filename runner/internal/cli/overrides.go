package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
)

// overrideFlags build cases and change any config field from the command
// line, so a sweep needs no YAML.
func overrideFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "prompt-len", Aliases: []string{"p"}, Usage: "sweep prompt lengths, comma-separated (e.g. 128,512): replaces the config's cases"},
		&ucli.StringFlag{Name: "new-tokens", Aliases: []string{"n"}, Usage: "sweep new-token counts, comma-separated (e.g. 256)"},
		&ucli.StringFlag{Name: "batch", Aliases: []string{"b"}, Usage: "sweep batch sizes, comma-separated (e.g. 1,8)"},
		&ucli.StringSliceFlag{Name: "set", Usage: "override any config field, `KEY=VALUE` (dotted for nested: adaptive.target_rel_ci=0.02, timeouts.start=5m); repeatable"},
		formatFlag(),
		resumeFlag(),
	}
}

func formatFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "format", Aliases: []string{"o"}, Value: "md", Usage: "what goes to stdout at the end: md (report.md), json (summary.json), jsonl (one object per engine × case × metric), csv (report.csv); the results directory gets every file either way"}
}

// formats are the --format values.
var formats = []string{"md", "json", "jsonl", "csv"}

func checkFormat(c *ucli.Context) error {
	f := c.String("format")
	for _, ok := range formats {
		if f == ok {
			return nil
		}
	}
	return usageError("--format %q: want one of %s", f, strings.Join(formats, ", "))
}

// writeFormat writes the summary to w in the --format asked for.
func writeFormat(w io.Writer, format string, s *analysis.Summary) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "jsonl":
		return report.JSONL(w, s)
	case "csv":
		return report.CSV(w, s)
	default:
		return report.Markdown(w, s)
	}
}

// configSource reads the config the run starts from: --config, resolved
// against the directory the user typed it in, or the embedded smoke config.
func configSource(c *ucli.Context) (name string, b []byte, err error) {
	p := c.String("config")
	if p == "" {
		return "embedded smoke config", config.Smoke, nil
	}
	b, err = os.ReadFile(p)
	if err != nil {
		return "", nil, withCode(ExitUsage, fmt.Errorf("read config: %w", err))
	}
	return p, b, nil
}

// applyOverrides returns the config YAML with the sweep flags and every
// --set KEY=VALUE applied. Values are YAML scalars (numbers, strings, true),
// or YAML flow collections ("[a, b]", "{k: v}").
func applyOverrides(b []byte, c *ucli.Context) ([]byte, error) {
	sweep := c.IsSet("prompt-len") || c.IsSet("new-tokens") || c.IsSet("batch")
	sets := c.StringSlice("set")
	if !sweep && len(sets) == 0 {
		return b, nil
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, usageError("config: %v", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	for _, kv := range sets {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("--set %q: want KEY=VALUE", kv)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil {
			return nil, usageError("--set %s: value %q: %v", k, v, err)
		}
		if err := setPath(doc, strings.Split(k, "."), val); err != nil {
			return nil, usageError("--set %s: %v", k, err)
		}
	}
	if sweep {
		cases, err := sweepCases(doc, c)
		if err != nil {
			return nil, err
		}
		doc["cases"] = cases
	}
	return yaml.Marshal(doc)
}

func setPath(doc map[string]any, path []string, val any) error {
	for i, k := range path {
		if k == "" {
			return fmt.Errorf("empty key in the path")
		}
		if i == len(path)-1 {
			doc[k] = val
			return nil
		}
		next, ok := doc[k].(map[string]any)
		if !ok {
			if doc[k] != nil {
				return fmt.Errorf("%s is not a mapping", strings.Join(path[:i+1], "."))
			}
			next = map[string]any{}
			doc[k] = next
		}
		doc = next
	}
	return nil
}

// sweepCases is the cross product of --prompt-len × --new-tokens × --batch;
// a dimension not given takes the distinct values of the config's cases
// (128, 128 and 1 when it has none).
func sweepCases(doc map[string]any, c *ucli.Context) ([]any, error) {
	dim := func(flag, key string, def int) ([]int, error) {
		if c.IsSet(flag) {
			return parseInts(flag, c.String(flag))
		}
		var out []int
		cases, _ := doc["cases"].([]any)
		for _, cs := range cases {
			m, _ := cs.(map[string]any)
			if v, ok := m[key].(int); ok && !containsInt(out, v) {
				out = append(out, v)
			}
		}
		if len(out) == 0 {
			out = []int{def}
		}
		return out, nil
	}
	ps, err := dim("prompt-len", "prompt_len", 128)
	if err != nil {
		return nil, err
	}
	ns, err := dim("new-tokens", "max_new_tokens", 128)
	if err != nil {
		return nil, err
	}
	bs, err := dim("batch", "batch_size", 1)
	if err != nil {
		return nil, err
	}
	var out []any
	for _, p := range ps {
		for _, n := range ns {
			for _, b := range bs {
				name := fmt.Sprintf("p%d-n%d", p, n)
				if len(bs) > 1 || b != 1 {
					name += fmt.Sprintf("-b%d", b)
				}
				out = append(out, map[string]any{"name": name, "prompt_len": p, "max_new_tokens": n, "batch_size": b})
			}
		}
	}
	return out, nil
}

func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, usageError("--%s %q: want positive integers separated by commas, e.g. 128,512", flag, s)
		}
		if !containsInt(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// checkBaseline refuses, before any launch, a baseline that names none of
// the engine variants.
func checkBaseline(cfg *config.Config) error {
	if cfg.Baseline == "" {
		return nil
	}
	var labels []string
	for _, s := range cfg.Engines {
		l := s.DisplayLabel()
		if l == cfg.Baseline {
			return nil
		}
		labels = append(labels, l)
	}
	return usageError("baseline %q is none of the engines (%s)", cfg.Baseline, strings.Join(labels, ", "))
}
