package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/report"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/slurm"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/suite"
)

// writeReports analyses the records and writes summary.json, report.md,
// report.html, report.csv and bench.txt into dir. plugs (nil: none) adds the
// prices, the plugin sections and the plugins that failed.
// writeReports analyses recs (and the engines' preparations, preps) and writes summary.json and the reports into dir.
func writeReports(dir, name string, env envinfo.Env, req protocol.Request, labels []string, baseline string, opts analysis.Options,
	recs []results.Record, preps []results.Preparation, warnings []string, plugs *plugins) (*analysis.Summary, error) {
	sum, err := analysis.Build(name, env, requestInfo(req), labels, baseline, recs, opts)
	if err != nil {
		return nil, fmt.Errorf("analyse %s: %w", dir, err)
	}
	sum.Warnings = append(sum.Warnings, warnings...)
	sum.Prepared = analysis.PreparedOf(preps)
	plugs.post(sum) // prices, plugin sections and failures (plugins.go)
	if err := results.WriteJSON(dir, results.SummaryFile, sum); err != nil {
		return nil, err
	}
	var md, page, csv, bench bytes.Buffer
	if err := report.Markdown(&md, sum); err != nil {
		return nil, err
	}
	if err := report.HTML(&page, sum); err != nil {
		return nil, err
	}
	if err := report.CSV(&csv, sum); err != nil {
		return nil, err
	}
	if err := report.Bench(&bench, sum, benchSamples(recs, req)); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{results.ReportMD, md.Bytes()}, {results.ReportHTML, page.Bytes()}, {results.ReportCSV, csv.Bytes()}, {results.BenchFile, bench.Bytes()}} {
		if err := results.WriteFile(dir, f.name, f.b); err != nil {
			return nil, err
		}
	}
	return sum, nil
}

func benchSamples(recs []results.Record, req protocol.Request) func(engine, caseName string) []report.BenchSample {
	return func(engine, caseName string) []report.BenchSample {
		var out []report.BenchSample
		for _, r := range recs {
			if r.Engine != engine || r.Status != results.StatusOK {
				continue
			}
			for _, it := range r.Iterations {
				if it.Raw.Warmup || it.CaseName != caseName {
					continue
				}
				m := it.Metrics
				out = append(out, report.BenchSample{E2ENs: m.E2ENs, TTFTNs: m.TTFTNs, TPOTNs: m.TPOTNs, DecodeTPS: m.DecodeTPS})
			}
		}
		return out
	}
}

func reportCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "report",
		Usage:     "re-analyse a results directory (also an interrupted one) and rewrite its reports",
		ArgsUsage: "DIR",
		Flags:     append([]ucli.Flag{formatFlag(), binDirFlag(e), equivalenceFlag()}, pluginFlags()...),
		Action: func(c *ucli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("report: want exactly one results directory")
			}
			if err := checkFormat(c); err != nil {
				return err
			}
			dir := c.Args().First()
			if slurm.IsArray(dir) { // a Slurm job array: merge its tasks (slurm.go)
				return reportArray(c, e, dir)
			}
			if _, err := os.Stat(filepath.Join(dir, suite.StateFile)); err == nil { // a suite: its own report over the cells
				return reportSuite(c, e, dir)
			}
			recs, warnings, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				return fmt.Errorf("report %s: %w", dir, results.ErrNoRuns)
			}
			var env envinfo.Env
			if err := results.ReadJSON(dir, results.EnvFile, &env); err != nil {
				return err
			}
			var req protocol.Request
			if err := results.ReadJSON(dir, "request.json", &req); err != nil {
				return err
			}
			name := filepath.Base(dir)
			var prev analysis.Summary
			baseline := ""
			if err := results.ReadJSON(dir, results.SummaryFile, &prev); err == nil {
				name, baseline = prev.Name, prev.Baseline
			} else if !errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(e.stderr, "note: ignoring unreadable previous summary: %v\n", err)
			}
			opts := analysis.Options{Equivalence: prev.Equivalence}
			if c.IsSet("equivalence") {
				if opts.Equivalence, err = parseMargin(c.String("equivalence")); err != nil {
					return err
				}
			}
			plugs, err := newPlugins(c, e, nil, config.Prices{}, &prev) // plugins.go: prices kept from the previous summary
			if err != nil {
				return err
			}
			preps, pw := results.ReadPreparations(dir)
			sum, err := writeReports(dir, name, env, req, nil, baseline, opts, recs, preps, append(warnings, pw...), plugs)
			if err != nil {
				return err
			}
			return writeFormat(e.stdout, c.String("format"), sum)
		},
	}
}

func equivalenceFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "equivalence", Usage: "also test every comparison for equivalence within ±`MARGIN` (2% or 0.02): TOST on the launch level, " +
		"so a report can say \"the same within ±2%\", not only \"no significant difference\" (config: equivalence; 0 turns it off)"}
}

// parseMargin reads a relative margin: "2%", "0.02" or "0" (off).
func parseMargin(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if strings.HasSuffix(t, "%") {
		t, scale = strings.TrimSpace(strings.TrimSuffix(t, "%")), 0.01
	}
	v, err := strconv.ParseFloat(t, 64)
	if m := v * scale; err == nil && m >= 0 && m < 1 {
		return m, nil
	}
	return 0, usageError("--equivalence %q: want a margin such as 2%% or 0.02 (below 100%%), or 0 for none", s)
}

// reportSuite rewrites a suite directory's report.md and report.html from its suite.json and its cells as they are
// on disk (each cell is a results directory of its own: runner report DIR/CELL re-analyses one).
func reportSuite(c *ucli.Context, e *env, dir string) error {
	if f := c.String("format"); f != "md" {
		return usageError("report %s: a suite's report is Markdown and HTML; --format %s applies to a cell: runner report %s", dir, f, filepath.Join(dir, "CELL"))
	}
	st := &suite.State{}
	if err := results.ReadJSON(dir, suite.StateFile, st); err != nil {
		return fmt.Errorf("report %s: %w", dir, err)
	}
	if err := writeSuiteReports(dir, st); err != nil {
		return fmt.Errorf("report %s: %w", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, suite.ReportMD))
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}
