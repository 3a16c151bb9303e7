package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/engine"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/suite"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

// suiteCell makes one benchmark a cell of a suite: benchCmd runs cfg into
// exactly dir, resolveVariants takes the engine info the suite read once (by
// binary path), and stop may end the cell before a launch (--stop-after).
type suiteCell struct {
	cfg   *config.Config
	dir   string
	infos map[string]*protocol.Info
	stop  func(label string, recs []results.Record) bool
}

func suiteCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "suite",
		Usage:     "run a matrix — engines × models × workloads — into one results directory with one report; --resume DIR finishes an interrupted one",
		ArgsUsage: "CONFIG",
		Description: "CONFIG is a benchmark config with models: and workloads: lists instead of model: and cases: (configs/suite-cpu.yaml,\n" +
			"configs/suite-h200.yaml). Each model × workload is a cell: an ordinary benchmark of every engine, in its own directory\n" +
			"under the suite's, with verdicts within the cell. engines: left out means every built engine that serves the device\n" +
			"and dtype; listed engines that are not built are skipped with a note, and so are unbatched engines in a batched workload.\n" +
			"Models with a synth: section are generated once, by the first cell that needs them. Every launch shares one torch\n" +
			"compile cache (TORCHINDUCTOR_CACHE_DIR, TRITON_CACHE_DIR under $CIB_CACHE/compile/, unless you set them); the report\n" +
			"compares each engine's first launch with its later ones. Ctrl-C loses only the launch in flight: runner suite --resume DIR\n" +
			"goes on from the launches recorded in each cell's runs.jsonl.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "resume", Usage: "finish the interrupted suite in results `DIR`: recorded launches count as done, the same matrix goes on"},
			&ucli.StringFlag{Name: "add-models", Usage: "with --resume: extend the suite by the models of `CONFIG` it does not have (or those --models names), as cells after its own; its engines, workloads and launches stay, CONFIG's timeouts replace its own"},
			binDirFlag(e),
			&ucli.StringFlag{Name: "out", Value: "results", Usage: "results root `DIR`; the suite writes DIR/<timestamp>-<name>/"},
			&ucli.StringFlag{Name: "engines", Aliases: []string{"e"}, Usage: "override the config's engine variants, comma-separated (reference:threads=1,pytorch:mode=compiled)"},
			&ucli.StringFlag{Name: "models", Usage: "run only these of the config's models, comma-separated names (e.g. tinyllama-1.1b)"},
			&ucli.StringFlag{Name: "workloads", Usage: "run only these of the config's workloads, comma-separated names (e.g. p128-n256,p2032-n16)"},
			&ucli.StringFlag{Name: "cells", Usage: "override how workloads make cells: per-workload, per-batch or per-model (one launch cost per engine and model)"},
			&ucli.IntFlag{Name: "launches", DefaultText: "the config's", Usage: "override launches per engine per cell (exact: adaptive stopping off)"},
			&ucli.IntFlag{Name: "iterations", DefaultText: "the config's", Usage: "override timed iterations per launch"},
			&ucli.IntFlag{Name: "warmup", DefaultText: "the config's", Usage: "override warm-up iterations per launch"},
			&ucli.DurationFlag{Name: "stop-after", Usage: "time budget: no launch starts that would end after this (estimated by the engine's longest launch so far); the suite stops cleanly for --resume (e.g. 8m inside a 10-minute job)"},
			&ucli.IntFlag{Name: "max-cells", Usage: "run at most `N` cells in this call, then stop cleanly for --resume (a session's share of a matrix longer than the session: a cell begun on one machine runs again from its start on another)"},
			&ucli.BoolFlag{Name: "no-telemetry", Usage: "do not sample the GPU through NVML"},
			&ucli.DurationFlag{Name: "telemetry-interval", Value: telemetry.DefaultInterval, Usage: "GPU sampling interval: the energy counter (a read takes ~3.5 ms on an H200, while the engine's driver calls wait) and the other fields; the report's \"sampler busy %\" is the share of time spent in NVML (--power-interval resolves short phases cheaply)"},
			&ucli.DurationFlag{Name: "power-interval", Usage: "read the instantaneous power this often (µs a call), the energy counter and the rest at --telemetry-interval: the power of short phases at almost no cost (e.g. 10ms; off when unset)"},
			&ucli.BoolFlag{Name: "allow-busy", Usage: "run even when another process holds the GPU"},
			&ucli.DurationFlag{Name: "idle-timeout", Value: 60 * time.Second, Usage: "longest wait for the GPU to return to rest before a launch"},
			&ucli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines, only the matrix at the end"},
			&ucli.BoolFlag{Name: "dry-run", Usage: "check every cell as runner bench --dry-run does, print the matrix and its launches, launch and write nothing"},
		},
		Action: func(c *ucli.Context) error { return suiteCmd(c, e) },
	}
}

func suiteCmd(c *ucli.Context, e *env) error {
	ctx := c.Context
	begin := time.Now()
	progress := e.stderr
	if c.Bool("quiet") {
		progress = io.Discard
	}
	binDir, binGiven := c.String("bin-dir"), c.IsSet("bin-dir")
	var (
		dir   string
		sc    *suite.Config
		st    *suite.State
		infos map[string]*protocol.Info
		err   error
	)
	if dir = c.String("resume"); dir != "" {
		if c.Args().Len() > 0 {
			return usageError("suite --resume %s: no CONFIG with --resume (the suite's own %s is used)", dir, suite.ConfigFile)
		}
		if c.Bool("dry-run") {
			return usageError("suite --resume %s: --dry-run checks a new suite (CONFIG), not one being finished", dir)
		}
		for _, f := range []string{"engines", "models", "workloads", "cells", "launches", "iterations", "warmup", "out"} {
			if c.IsSet(f) && (f != "models" || !c.IsSet("add-models")) {
				return usageError("suite --resume %s: --%s would change the suite being finished; resume it as it was", dir, f)
			}
		}
		if sc, err = suite.Load(filepath.Join(dir, suite.ConfigFile)); errors.Is(err, fs.ErrNotExist) {
			return usageError("suite --resume %s: no %s there (a directory written by runner suite?)", dir, suite.ConfigFile)
		} else if err != nil {
			return withCode(ExitUsage, err)
		}
		st = &suite.State{}
		if err := results.ReadJSON(dir, suite.StateFile, st); err != nil {
			return fmt.Errorf("suite --resume %s: %w", dir, err)
		}
		if p := c.String("add-models"); p != "" {
			if err := addSuiteModels(dir, p, c.String("models"), sc, st, progress); err != nil {
				return err
			}
		}
		var notes []string
		if _, infos, notes, err = resolveSuiteEngines(ctx, e, binDir, binGiven, sc, st.Engines); err != nil {
			return err
		}
		if len(notes) > 0 {
			return usageError("suite --resume %s: engines of the suite are gone: %s", dir, strings.Join(notes, "; "))
		}
		fmt.Fprintf(progress, "resuming suite %s (%s)\n", dir, st.Summary())
	} else {
		if c.IsSet("add-models") {
			return usageError("suite: --add-models extends a suite being resumed: use it with --resume DIR")
		}
		if c.Args().Len() != 1 {
			return usageError("suite: want one CONFIG (e.g. configs/suite-cpu.yaml), or --resume DIR")
		}
		if sc, err = suite.Load(c.Args().First()); err != nil {
			return withCode(ExitUsage, err)
		}
		if err := suiteOverrides(c, sc); err != nil {
			return err
		}
		specs, is, notes, err := resolveSuiteEngines(ctx, e, binDir, binGiven, sc, sc.Engines)
		if err != nil {
			return err
		}
		for _, n := range notes {
			fmt.Fprintf(progress, "note: %s\n", n)
		}
		if len(specs) == 0 {
			return usageError("suite: no engine can run it (%s)", strings.Join(notes, "; "))
		}
		infos = is
		if c.Bool("dry-run") {
			return suiteDryRun(e.stdout, e, binDir, binGiven, sc, specs, infos) // dryrun.go
		}
		if err := suiteCasesErr(sc); err != nil { // dryrun.go
			return withCode(ExitUsage, fmt.Errorf("suite %s: %w", sc.Name, err))
		}
		st = &suite.State{Name: sc.Name, Engines: specs, Notes: notes}
		st.AddPending(sc.Cells())
		if dir, err = newSuiteDir(c.String("out"), time.Now().UTC().Format("20060102-150405")+"-"+safeName(sc.Name)); err != nil {
			return err
		}
		if err := saveSuiteConfig(dir, sc); err != nil {
			return err
		}
		fmt.Fprintf(progress, "suite %s: %d engine variant(s) × %d model(s) × %d workload(s), results in %s\n",
			sc.Name, len(specs), len(sc.Models), len(sc.Workloads), dir)
	}
	st.Sessions++
	environ, cacheNote := compileCacheEnv(e, dir)
	st.CompileCache = cacheNote
	if err := saveSuite(dir, st); err != nil {
		return err
	}

	var deadline time.Time
	if d := c.Duration("stop-after"); d > 0 {
		deadline = begin.Add(d)
	}
	// longest is, per variant, its longest launch in the suite so far (every
	// session): --stop-after's estimate of the next one, on the safe side
	// (a first launch's compilation included).
	longest := map[string]time.Duration{}
	seen := func(recs []results.Record) {
		for _, r := range recs {
			longest[r.Engine] = max(longest[r.Engine], time.Duration(r.DurationNs))
		}
	}
	for _, cs := range st.Cells {
		recs, _, _ := results.ReadRuns(filepath.Join(dir, cs.Name, results.RunsFile))
		seen(recs)
	}
	stop := func(label string, recs []results.Record) bool {
		if deadline.IsZero() {
			return false
		}
		seen(recs)
		return time.Now().Add(longest[label]).After(deadline)
	}
	var passthrough []string
	if c.Bool("quiet") {
		passthrough = append(passthrough, "-q")
	}
	for _, f := range []string{"no-telemetry", "allow-busy"} {
		if c.Bool(f) {
			passthrough = append(passthrough, "--"+f)
		}
	}
	passthrough = append(passthrough, "--bin-dir", binDir, "--idle-timeout", c.Duration("idle-timeout").String(),
		"--telemetry-interval", c.Duration("telemetry-interval").String(), "--power-interval", c.Duration("power-interval").String())

	var interrupted error
	ran := 0 // cells run in this call (--max-cells)
	for _, cell := range sc.Cells() {
		cs := st.Cell(cell.Name)
		if cs == nil { // a cell the state does not know: the config was edited
			return fmt.Errorf("suite %s: %s has no cell %s; was %s edited?", dir, suite.StateFile, cell.Name, suite.ConfigFile)
		}
		if cs.Status != suite.StatusPending && cs.Status != suite.StatusInterrupted {
			continue
		}
		if err := ctx.Err(); err != nil {
			interrupted = err
			break
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			interrupted = stopAfterErr(c.Duration("stop-after"))
			break
		}
		if n := c.Int("max-cells"); n > 0 && ran >= n {
			interrupted = fmt.Errorf("--max-cells %d reached: %w", n, bench.ErrStopped)
			break
		}
		var specs []config.EngineSpec
		cs.Engines, cs.Skipped = nil, nil
		for _, v := range cellEngines(e, binDir, binGiven, cell, st.Engines, infos) {
			switch {
			case v.why != "":
				cs.Skipped = append(cs.Skipped, fmt.Sprintf("%s skipped on %s: %s", v.Label, cell.Model.Name, v.why))
			case v.maxBatch > 0:
				cs.Skipped = append(cs.Skipped, fmt.Sprintf("%s skipped: batch %d, its info says max batch %d", v.Label, cell.MinBatch(), v.maxBatch))
			default:
				specs = append(specs, v.Spec)
				cs.Engines = append(cs.Engines, v.Label)
			}
		}
		for _, s := range cs.Skipped {
			fmt.Fprintf(progress, "note: %s: %s\n", cell.Name, s)
		}
		if len(specs) == 0 {
			cs.Status = suite.StatusSkipped
			if err := saveSuite(dir, st); err != nil {
				return err
			}
			continue
		}
		cfg, err := sc.CellConfig(cell, specs)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		cellDir := filepath.Join(dir, cell.Name)
		ran++
		args := append([]string{"runner", "bench"}, passthrough...)
		if _, err := os.Stat(filepath.Join(cellDir, ConfigFile)); err == nil {
			args = append(args, "--resume", cellDir)
		} else if err := os.RemoveAll(cellDir); err != nil { // cut before its config was written: start it again
			return fmt.Errorf("suite: %w", err)
		}
		fmt.Fprintf(progress, "\n== cell %s (%s): %s\n", cs.Label(), cell.Name, strings.Join(cs.Engines, ", "))
		sub := *e
		sub.stdout = io.Discard // the cell's report is in its directory and in the suite's
		sub.environ = environ
		sub.cell = &suiteCell{cfg: cfg, dir: cellDir, infos: infos, stop: stop}
		t0 := time.Now()
		runErr := newApp(&sub).RunContext(ctx, args)
		if errors.Is(runErr, errOtherMachine) {
			// Begun on another machine (another card: a GPU session is a fresh machine): its launches cannot be pooled
			// with this one's, so they are kept aside, named in the suite's notes, and the cell runs again here.
			aside, err := asideDir(cellDir)
			if err != nil {
				return fmt.Errorf("suite: %w", err)
			}
			note := fmt.Sprintf("%s was begun on another machine (%s); its launches are kept in %s/ and the cell ran again from the start",
				cell.Name, strings.TrimPrefix(runErr.Error(), "resume "+cellDir+": "), filepath.Base(aside))
			st.Notes = append(st.Notes, note)
			fmt.Fprintf(progress, "note: %s\n", note)
			runErr = newApp(&sub).RunContext(ctx, append([]string{"runner", "bench"}, passthrough...))
		}
		cs.WallSeconds += time.Since(t0).Seconds()
		recs, _, _ := results.ReadRuns(filepath.Join(cellDir, results.RunsFile))
		cs.Launches, cs.Failed = len(recs), 0
		for _, r := range recs {
			if r.Status != results.StatusOK {
				cs.Failed++
			}
		}
		seen(recs)
		code := ExitOK
		var ee *exitError
		if errors.As(runErr, &ee) {
			code = ee.code
		} else if runErr != nil {
			code = ExitError
		}
		cs.Error = ""
		switch {
		case code == ExitOK || code == ExitRunsFailed:
			cs.Status = suite.StatusDone
		case code == ExitInterrupted || ctx.Err() != nil:
			cs.Status = suite.StatusInterrupted
			interrupted = runErr
		default:
			cs.Status, cs.Error = suite.StatusFailed, runErr.Error()
			fmt.Fprintf(progress, "cell %s failed: %v\n", cell.Name, runErr)
		}
		if err := saveSuite(dir, st); err != nil {
			return err
		}
		fmt.Fprintf(progress, "cell %s: %s, %d launch(es), %s in this cell (suite so far %s)\n", cell.Name, cs.Status, cs.Launches,
			suite.Wall(cs.WallSeconds), suite.Wall(st.WallSeconds()))
		if interrupted != nil {
			break
		}
	}
	if err := writeSuiteReports(dir, st); err != nil {
		return err
	}
	printSuiteTable(e.stdout, dir, st, time.Since(begin))
	if interrupted != nil {
		return withCode(ExitInterrupted, fmt.Errorf("suite interrupted (%v); what was recorded is kept: continue with `runner suite --resume %s`", interrupted, dir))
	}
	failed := 0
	for _, cs := range st.Cells {
		if cs.Status == suite.StatusFailed || cs.Failed > 0 {
			failed++
		}
	}
	if failed > 0 {
		return withCode(ExitRunsFailed, fmt.Errorf("%d cell(s) with failures (see %s)", failed, filepath.Join(dir, suite.ReportMD)))
	}
	return nil
}

// addSuiteModels extends the suite in dir by models of the suite config at path (all it lacks, or the comma-separated
// names): the models join its suite.yaml, their cells its state as pending, before anything runs.
func addSuiteModels(dir, path, names string, sc *suite.Config, st *suite.State, progress io.Writer) error {
	other, err := suite.Load(path)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	var want []string
	for _, n := range strings.Split(names, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want = append(want, n)
		}
	}
	added, err := sc.AddModels(other, want)
	if err != nil {
		return usageError("suite --resume %s --add-models %s: %v", dir, path, err)
	}
	n := st.AddPending(sc.Cells())
	if err := saveSuiteConfig(dir, sc); err != nil {
		return err
	}
	if err := saveSuite(dir, st); err != nil {
		return err
	}
	var ms []string
	for _, m := range added {
		ms = append(ms, m.Name)
	}
	fmt.Fprintf(progress, "suite %s: added model(s) %s from %s: %d cell(s)\n", dir, strings.Join(ms, ", "), path, n)
	return nil
}

func stopAfterErr(d time.Duration) error {
	return fmt.Errorf("--stop-after %s reached: %w", d, bench.ErrStopped)
}

// suiteOverrides applies --models, --workloads, --engines, --launches,
// --iterations and --warmup to the suite config before it is saved, so a
// resume keeps them.
func suiteOverrides(c *ucli.Context, sc *suite.Config) error {
	if v := c.String("models"); v != "" {
		var keep []suite.Model
		for _, n := range strings.Split(v, ",") {
			i := slices.IndexFunc(sc.Models, func(m suite.Model) bool { return m.Name == strings.TrimSpace(n) })
			if i < 0 {
				return usageError("--models %s: the config has no model %q", v, n)
			}
			keep = append(keep, sc.Models[i])
		}
		sc.Models = keep
	}
	if v := c.String("workloads"); v != "" {
		var keep []config.Case
		for _, n := range strings.Split(v, ",") {
			i := slices.IndexFunc(sc.Workloads, func(w config.Case) bool { return w.Name == strings.TrimSpace(n) })
			if i < 0 {
				return usageError("--workloads %s: the config has no workload %q", v, n)
			}
			keep = append(keep, sc.Workloads[i])
		}
		sc.Workloads = keep
	}
	if c.IsSet("cells") {
		sc.Grouping = c.String("cells") // Validate below names the groupings
	}
	if v := c.String("engines"); v != "" {
		specs, err := config.ParseEngines(v)
		if err != nil {
			return usageError("%v", err)
		}
		sc.Engines = specs
	}
	for _, f := range []struct {
		name string
		min  int
		dst  *int
	}{{"launches", 1, &sc.Launches}, {"iterations", 1, &sc.Iterations}, {"warmup", 0, &sc.Warmup}} {
		if !c.IsSet(f.name) {
			continue
		}
		if v := c.Int(f.name); v < f.min {
			return usageError("--%s %d: need at least %d", f.name, v, f.min)
		}
		*f.dst = c.Int(f.name)
	}
	if c.IsSet("launches") {
		sc.Adaptive = nil // an explicit launch count is exact
	}
	if err := sc.Validate(); err != nil {
		return withCode(ExitUsage, err)
	}
	return nil
}

// resolveSuiteEngines finds and asks every engine variant once for the whole
// suite. With no variants listed it takes every known engine. A variant that
// is not built, does not start, or cannot serve the device and dtype is left
// out with a note; an unknown option is an error (a typo, not a missing
// build). infos are keyed by binary path, as resolveVariants looks them up.
func resolveSuiteEngines(ctx context.Context, e *env, binDir string, binGiven bool, sc *suite.Config, specs []config.EngineSpec) (
	[]config.EngineSpec, map[string]*protocol.Info, []string, error) {
	if len(specs) == 0 {
		for _, n := range engine.KnownNames() {
			specs = append(specs, config.EngineSpec{Name: n})
		}
	}
	timeout := sc.Timeouts.Start.Duration
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	device, dtype := sc.Device, sc.DType
	if device == "" {
		device = "cpu"
	}
	if dtype == "" {
		dtype = "f32"
	}
	var out []config.EngineSpec
	var notes []string
	var errs []error
	infos := map[string]*protocol.Info{}
	bad := map[string]string{}
	for _, s := range specs {
		path, err := e.findEngine(s.Name, binDir, binGiven)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s left out: not built (%v)", s.DisplayLabel(), err))
			continue
		}
		if why, ok := bad[path]; ok {
			notes = append(notes, fmt.Sprintf("%s left out: %s", s.DisplayLabel(), why))
			continue
		}
		info, ok := infos[path]
		if !ok {
			info, _, err = spawn.Info(ctx, path, e.environ, timeout)
			if errors.Is(err, spawn.ErrInterrupted) {
				return nil, nil, nil, withCode(ExitInterrupted, fmt.Errorf("engine %s: %w", s.Name, err))
			}
			if err == nil {
				err = info.Serves(device, dtype)
			}
			if err != nil {
				bad[path] = oneLine(err.Error())
				notes = append(notes, fmt.Sprintf("%s left out: %s", s.DisplayLabel(), bad[path]))
				continue
			}
			infos[path] = info
		}
		for k := range s.Options {
			if _, ok := info.Options[k]; !ok {
				errs = append(errs, fmt.Errorf("engine %s: unknown option %q (it knows: %s)", s.Name, k, optionList(info)))
			}
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, nil, nil, withCode(ExitUsage, errors.Join(errs...))
	}
	return out, infos, notes, nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 240 {
		s = s[:240] + "…"
	}
	return s
}

// compileCacheEnv points torch's compile caches at one directory per suite,
// shared by every launch and every resume of it, unless the user set them:
// an engine's first launch then pays the compilation and later ones show
// what a warm cache leaves (the report compares them).
func compileCacheEnv(e *env, dir string) ([]string, string) {
	environ := append([]string{}, e.environ...)
	if v := e.getenv("TORCHINDUCTOR_CACHE_DIR"); v != "" {
		return environ, v + " (TORCHINDUCTOR_CACHE_DIR, set by the user)"
	}
	root := e.getenv("CIB_CACHE")
	if root == "" {
		if h := e.getenv("HOME"); h != "" {
			root = filepath.Join(h, ".cache", "cib")
		} else {
			root = os.TempDir()
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	cache := filepath.Join(root, "compile", filepath.Base(abs))
	environ = append(environ, "TORCHINDUCTOR_CACHE_DIR="+filepath.Join(cache, "inductor"))
	if e.getenv("TRITON_CACHE_DIR") == "" {
		environ = append(environ, "TRITON_CACHE_DIR="+filepath.Join(cache, "triton"))
	}
	return environ, cache
}

// newSuiteDir creates root/name, or root/name-2… when it exists.
func newSuiteDir(root, name string) (string, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create results root: %w", err)
	}
	for i := 1; i <= 1000; i++ {
		dir := filepath.Join(root, name)
		if i > 1 {
			dir = fmt.Sprintf("%s-%d", dir, i)
		}
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create results dir: %w", err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("create results dir: %s and 999 numbered ones exist", filepath.Join(root, name))
}

// saveSuiteConfig writes the suite's config as it runs (overrides and added models applied) for every resume.
func saveSuiteConfig(dir string, sc *suite.Config) error {
	b, err := yaml.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encode suite config: %w", err)
	}
	return results.WriteFile(dir, suite.ConfigFile, b)
}

func saveSuite(dir string, st *suite.State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", suite.StateFile, err)
	}
	return results.WriteFile(dir, suite.StateFile, append(b, '\n'))
}

func writeSuiteReports(dir string, st *suite.State) error {
	var md, page bytes.Buffer
	if err := suite.Markdown(&md, dir, st); err != nil {
		return err
	}
	if err := suite.HTML(&page, dir, st); err != nil {
		return err
	}
	if err := results.WriteFile(dir, suite.ReportMD, md.Bytes()); err != nil {
		return err
	}
	return results.WriteFile(dir, suite.ReportHTML, page.Bytes())
}

// printSuiteTable is what a suite prints last: every cell with its status,
// launches and wall time, the total per model and for the suite.
func printSuiteTable(w io.Writer, dir string, st *suite.State, session time.Duration) {
	fmt.Fprintf(w, "suite %s: %s\n\n", st.Name, st.Summary())
	fmt.Fprintf(w, "%-40s %-12s %8s %10s\n", "cell", "status", "launches", "wall")
	perModel := map[string]float64{}
	var models []string
	for _, cs := range st.Cells {
		note := ""
		if cs.Failed > 0 {
			note = fmt.Sprintf("  (%d failed)", cs.Failed)
		}
		if len(cs.Skipped) > 0 {
			note += fmt.Sprintf("  (%d engine(s) skipped)", len(cs.Skipped))
		}
		fmt.Fprintf(w, "%-40s %-12s %8d %10s%s\n", cs.Label(), cs.Status, cs.Launches, suite.Wall(cs.WallSeconds), note)
		if _, ok := perModel[cs.Model]; !ok {
			models = append(models, cs.Model)
		}
		perModel[cs.Model] += cs.WallSeconds
	}
	fmt.Fprintln(w)
	for _, m := range models {
		fmt.Fprintf(w, "%-40s %31s\n", "total "+m, suite.Wall(perModel[m]))
	}
	fmt.Fprintf(w, "%-40s %31s  (this session %s, %d session(s))\n", "total", suite.Wall(st.WallSeconds()), session.Round(time.Second), st.Sessions)
	fmt.Fprintf(w, "\nresults: %s (report.md, report.html, suite.json; one directory per cell)\n", dir)
}

// asideDir moves a cell's directory to the first free DIR.other-machine[-N] and returns that name.
func asideDir(cellDir string) (string, error) {
	for n := 1; ; n++ {
		aside := cellDir + ".other-machine"
		if n > 1 {
			aside += fmt.Sprintf("-%d", n)
		}
		switch _, err := os.Stat(aside); {
		case errors.Is(err, os.ErrNotExist):
			return aside, os.Rename(cellDir, aside)
		case err != nil:
			return "", err
		}
	}
}

// cellVariant is one of the suite's engine variants in a cell: it runs there unless the model skips it (why) or every
// workload's batch of the cell is over its max batch (maxBatch, then > 0); when only some are, its launches run the
// others (bench.CasesFor, in runner bench).
type cellVariant struct {
	bench.Variant
	why      string
	maxBatch int
}

// cellEngines decides which of specs run in cell, for the suite and for its dry run alike.
func cellEngines(e *env, binDir string, binGiven bool, cell suite.Cell, specs []config.EngineSpec, infos map[string]*protocol.Info) []cellVariant {
	var out []cellVariant
	for _, s := range specs {
		path, _ := e.findEngine(s.Name, binDir, binGiven)
		v := cellVariant{Variant: bench.Variant{Spec: s, Label: s.DisplayLabel(), Path: path, Info: infos[path]}, why: cell.Model.Skipped(s)}
		if mb := max(infos[path].Capabilities.MaxBatch, 1); v.why == "" && cell.MinBatch() > mb {
			v.maxBatch = mb
		}
		out = append(out, v)
	}
	return out
}
