package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cost"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
)

// pluginFlags are the plugin and price flags of runner bench and runner
// report.
func pluginFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "plugin", Usage: "run plugin `NAME` (runner-plugin-NAME in --bin-dir or on PATH) or PATH before the first launch " +
			"and over the result (protocol/PLUGINS.md); repeatable; 'cost' is built in"},
		&ucli.StringFlag{Name: "gpu-price", Usage: "what the GPU costs you per hour, for the cost section, e.g. 3.50/h or $3.50/h"},
		&ucli.StringFlag{Name: "energy-price", Usage: "what electricity costs you per kWh, for the cost section, e.g. 0.12/kWh"},
		&ucli.DurationFlag{Name: "plugin-timeout", Value: plugin.DefaultTimeout, Usage: "longest a plugin may take for one hook before it is killed"},
	}
}

// plugins are the plugins of one command (the built-in cost analysis among
// them) and the prices they see. A nil *plugins runs nothing.
type plugins struct {
	ctx    context.Context
	list   []plugin.Analyzer
	prices *analysis.Prices
	// failed are the plugins that failed their pre hook (bench) or, for
	// runner report, those the previous summary recorded as such.
	failed []plugin.Failure
	stderr io.Writer
}

// newPlugins resolves the plugins and prices of a command: flags, then the
// config's (bench), then those of prev, a previous summary (runner report,
// which also keeps the pre-hook failures prev recorded). The cost analysis
// runs when a price is known or when it is named.
func newPlugins(c *ucli.Context, e *env, names []string, cfgPrices config.Prices, prev *analysis.Summary) (*plugins, error) {
	p := &plugins{ctx: c.Context, stderr: e.stderr}
	var prevPrices *analysis.Prices
	if prev != nil {
		prevPrices = prev.Prices
		for _, f := range prev.PluginFailures {
			if f.Hook == plugin.HookPre {
				p.failed = append(p.failed, f)
			}
		}
	}
	var err error
	if p.prices, err = resolvePrices(c, cfgPrices, prevPrices); err != nil {
		return nil, err
	}
	names = append(slices.Clone(names), c.StringSlice("plugin")...)
	if p.prices != nil && !slices.Contains(names, cost.Name) {
		names = append([]string{cost.Name}, names...)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if n == cost.Name {
			p.list = append(p.list, cost.Analyzer{})
			continue
		}
		path, err := plugin.Find(n, c.String("bin-dir"), e.getenv("PATH"))
		if err != nil {
			return nil, usageError("%v", err)
		}
		// A plugin given by path is labelled by its name: runner-plugin-slo is "slo".
		label := strings.TrimPrefix(filepath.Base(n), plugin.Prefix)
		p.list = append(p.list, &plugin.Process{Label: label, Path: path, Env: e.environ, Timeout: c.Duration("plugin-timeout")})
	}
	return p, nil
}

// resolvePrices reads --gpu-price and --energy-price, else the config's,
// else prev.
func resolvePrices(c *ucli.Context, cfg config.Prices, prev *analysis.Prices) (*analysis.Prices, error) {
	var out analysis.Prices
	if prev != nil {
		out = *prev
	}
	given := "" // the currency of the prices given now
	for _, f := range []struct {
		flag, cfg, unit string
		dst             *float64
	}{{"gpu-price", cfg.GPU, "h", &out.GPUPerHour}, {"energy-price", cfg.Energy, "kWh", &out.EnergyPerKWh}} {
		s := c.String(f.flag)
		if s == "" {
			s = f.cfg
		}
		if s == "" {
			continue
		}
		v, cur, err := cost.ParsePrice(s, f.unit)
		if err != nil {
			return nil, usageError("--%s: %v", f.flag, err)
		}
		if cur != "" && given != "" && cur != given {
			return nil, usageError("--%s %s: another currency than the other price's %s", f.flag, s, given)
		}
		if cur != "" {
			given = cur
		}
		*f.dst = v
	}
	if given != "" {
		out.Currency = given
	}
	if out.GPUPerHour <= 0 && out.EnergyPerKWh <= 0 {
		return nil, nil
	}
	return &out, nil
}

// pre runs every plugin's pre hook before the first launch. A veto stops
// the benchmark; a plugin that fails is said on stderr and in the report,
// and the benchmark goes on.
func (p *plugins) pre(cfg *config.Config, env envinfo.Env) error {
	if p == nil || len(p.list) == 0 {
		return nil
	}
	cj, err := configJSON(cfg)
	if err != nil {
		return err
	}
	ej, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("encode environment for plugins: %w", err)
	}
	veto, fails := plugin.Pre(p.ctx, p.list, cj, ej)
	p.failed = append(p.failed, fails...)
	p.note(fails)
	if veto != nil {
		return withCode(ExitError, veto)
	}
	return nil
}

// post adds the prices, the plugins' sections and the plugins that failed to
// the summary before it is written.
func (p *plugins) post(sum *analysis.Summary) {
	if p == nil {
		return
	}
	sum.Prices = p.prices
	sum.PluginFailures = slices.Clone(p.failed)
	if len(p.list) == 0 {
		return
	}
	b, err := json.Marshal(sum)
	if err != nil {
		sum.PluginFailures = append(sum.PluginFailures, plugin.Failure{Plugin: "runner", Hook: plugin.HookPost, Error: fmt.Sprintf("encode summary: %v", err)})
		return
	}
	secs, fails := plugin.Post(p.ctx, p.list, b)
	sum.Sections = secs
	sum.PluginFailures = append(sum.PluginFailures, fails...)
	p.note(fails)
}

func (p *plugins) note(fails []plugin.Failure) {
	for _, f := range fails {
		fmt.Fprintf(p.stderr, "note: plugin %s failed in its %s hook (the result is kept): %s\n", f.Plugin, f.Hook, f.Error)
	}
}

// configJSON is the config as a plugin sees it: the YAML keys, in JSON.
func configJSON(cfg *config.Config) (json.RawMessage, error) {
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config for plugins: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("encode config for plugins: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode config for plugins: %w", err)
	}
	return b, nil
}
