package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/suite"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// suiteProc is the runner binary running a suite in work, its stderr kept.
type suiteProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	stdout bytes.Buffer
}

func startSuite(t *testing.T, bin, work string, args ...string) *suiteProc {
	t.Helper()
	p := &suiteProc{cmd: exec.Command(filepath.Join(bin, "runner"), append([]string{"suite"}, args...)...)}
	p.cmd.Dir = work
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "CIB_CACHE=" + filepath.Join(work, "cache")}
	p.cmd.Stderr, p.cmd.Stdout = &p.stderr, &p.stdout
	require.NoError(t, p.cmd.Start())
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

// wait returns the exit code.
func (p *suiteProc) wait(t *testing.T) int {
	t.Helper()
	err := p.cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// recorded counts the launches in every cell's runs.jsonl under root.
func recorded(t *testing.T, root string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "*", "*", results.RunsFile))
	require.NoError(t, err)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			n += bytes.Count(b, []byte("\n"))
		}
	}
	return n
}

// waitRecorded waits until at least n launches are recorded.
func waitRecorded(t *testing.T, p *suiteProc, root string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for recorded(t, root) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d launches not recorded in 3 minutes; stderr:\n%s", n, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSuite runs configs/suite-cpu.yaml (two tiny generated models × three
// workloads) with real engine processes — the reference engine at 1 and 2
// threads, and testengine, whose info says max batch 4 — and interrupts it
// twice: Ctrl-C (SIGINT) during the first model, SIGKILL during the second
// session. Two resumes finish it; every cell then holds each engine's 4
// launches exactly once, the batched cells run without testengine (a note,
// not an error), each model is synthesized once, and the one report has a
// section per model × workload with its verdicts and the wall times.
func TestSuite(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	engines := "reference:threads=1,reference:threads=2,testengine"
	const perCell, batchedCell = 12, 8 // 3 engines × 4 launches; 2 × 4 where testengine is skipped
	const total = 2 * (2*perCell + batchedCell)

	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--engines", engines)
	waitRecorded(t, p, root, 10)
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	require.Equal(t, cli.ExitInterrupted, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "runner suite --resume")
	dir := resultDir(t, root)
	first := recorded(t, root)
	require.Less(t, first, total)
	var st suite.State
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	statuses := map[string]int{}
	for _, cs := range st.Cells {
		statuses[cs.Status]++
	}
	require.Equal(t, 1, statuses[suite.StatusInterrupted], "the cell in flight is marked interrupted: %v", statuses)
	require.Equal(t, 6, statuses[suite.StatusInterrupted]+statuses[suite.StatusDone]+statuses[suite.StatusPending], "%v", statuses)
	logs := p.stderr.String()

	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin)
	waitRecorded(t, p, root, first+perCell+4)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	p.wait(t)
	second := recorded(t, root)
	require.Less(t, second, total)
	logs += p.stderr.String()

	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin)
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "resuming suite")
	require.Equal(t, total, recorded(t, root), "every launch once, none re-run")
	stdout := p.stdout.String()
	for _, s := range []string{"tiny × p32-n64", "tiny-seed2 × b8-p32-n32", "total tiny ", "total tiny-seed2", "3 session(s)"} {
		require.Contains(t, stdout, s)
	}

	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	require.Equal(t, 3, st.Sessions)
	require.Len(t, st.Cells, 6)
	for _, cs := range st.Cells {
		require.Equal(t, suite.StatusDone, cs.Status, cs.Name)
		require.Greater(t, cs.WallSeconds, 0.0, cs.Name)
		cellDir := filepath.Join(dir, cs.Name)
		recs, warns, err := results.ReadRuns(filepath.Join(cellDir, results.RunsFile))
		require.NoError(t, err)
		require.Empty(t, warns, "no torn line: %s", cs.Name)
		want := []string{"reference:threads=1", "reference:threads=2", "testengine"}
		if strings.HasPrefix(cs.Workload, "b8-") {
			want = want[:2]
			require.Equal(t, []string{"testengine skipped: batch 8, its info says max batch 4"}, cs.Skipped)
		}
		require.Equal(t, want, cs.Engines)
		seen := map[string]bool{}
		for i, r := range recs {
			key := r.Engine + "#" + string(rune('0'+r.Launch))
			require.False(t, seen[key], "%s: %s launch %d recorded twice", cs.Name, r.Engine, r.Launch)
			seen[key] = true
			require.Equal(t, i, r.Order, "%s: launch order continues across resumes", cs.Name)
			require.Equal(t, results.StatusOK, r.Status, "%s: %s", cs.Name, r.Error)
		}
		require.Len(t, recs, 4*len(want), cs.Name)
		var sum analysis.Summary
		require.NoError(t, results.ReadJSON(cellDir, results.SummaryFile, &sum))
		require.Len(t, sum.Cases, 1)
		require.Len(t, sum.Cases[0].Results, len(want))
		for _, r := range sum.Cases[0].Results {
			require.Len(t, r.Metrics["e2e_ms"].Groups(), 4, "%s %s: the report holds 4 launches", cs.Name, r.Engine)
		}
	}
	// Each model was synthesized once, by its first cell, over the three sessions.
	logs += p.stderr.String()
	for _, m := range []string{"models/tiny ", "models/tiny-seed2 "} {
		require.Equal(t, 1, strings.Count(logs, "synthesizing model "+m), "%s synthesized once", m)
	}

	md, err := os.ReadFile(filepath.Join(dir, suite.ReportMD))
	require.NoError(t, err)
	for _, s := range []string{"## tiny × p32-n64", "## tiny × p256-n4", "## tiny × b8-p32-n32", "## tiny-seed2 × p32-n64",
		"## tiny-seed2 × p256-n4", "## tiny-seed2 × b8-p32-n32", "### Verdicts", "testengine skipped: batch 8",
		"## Cold start: first launch vs later launches", "| tiny × p32-n64 | testengine |", "over 3 session(s)",
		"| cell | engine | prepared |", "| wall time | machine | notes |"} {
		require.Contains(t, string(md), s)
	}
	// The test engine declares prepare: each cell prepared it before its first launch (the first made its marker,
	// later cells of the same model found it).
	require.Regexp(t, `\| tiny × p32-n64 \| testengine \| [0-9.]+, (made|cached) \|`, string(md))
	page, err := os.ReadFile(filepath.Join(dir, suite.ReportHTML))
	require.NoError(t, err)
	require.Equal(t, 6, strings.Count(string(page), "<section id=\"cell-"))
	require.Equal(t, 1, strings.Count(string(page), "</html>"))

	// runner report DIR on a suite rewrites its own report from suite.json and the cells on disk; the per-model line
	// says what the preparations took (the test engine declares prepare).
	require.NoError(t, os.Remove(filepath.Join(dir, suite.ReportMD)))
	o := run(t, t.Context(), "report", dir)
	require.Equal(t, 0, o.code, o.stderr)
	md2, err := os.ReadFile(filepath.Join(dir, suite.ReportMD))
	require.NoError(t, err)
	require.Equal(t, string(md2), o.stdout)
	require.Regexp(t, `- tiny: [0-9hms]+ over its 3 cell\(s\), of which [0-9hms]+ in preparations`, string(md2))
	o = run(t, t.Context(), "report", "--format", "json", dir)
	require.Equal(t, cli.ExitUsage, o.code)
	require.Contains(t, o.stderr, "a suite's report is Markdown and HTML")

	// A finished suite resumed launches nothing.
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "-q")
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	require.Equal(t, total, recorded(t, root))
	b, err := json.Marshal(st)
	require.NoError(t, err)
	require.NotContains(t, string(b), suite.StatusPending)
}

// TestSuiteStopAfter: a time budget ends the suite between launches — no
// launch cut short, exit 130 with the resume command — and a resume without
// one finishes it.
func TestSuiteStopAfter(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	// The test engine sleeps 3 ms per token, so the suite takes seconds of sleep on any machine (a fast one
	// finished the reference engine's inside the budget): 2 models × 2 workloads (its batch limit, 4, skips
	// b8-p32-n32) × 4 launches; p32-n64's launches alone sleep ≥ 0.77 s each.
	const total = 2 * 2 * 4
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--engines", "testengine:token_us=3000", "--stop-after", "1500ms")
	require.Equal(t, cli.ExitInterrupted, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "runner suite --resume")
	require.Contains(t, p.stderr.String(), "stopped before the next launch")
	n := recorded(t, root)
	require.Greater(t, n, 0)
	require.Less(t, n, total)
	files, err := filepath.Glob(filepath.Join(root, "*", "*", results.RunsFile))
	require.NoError(t, err)
	for _, f := range files {
		recs, _, err := results.ReadRuns(f)
		require.NoError(t, err)
		for _, r := range recs {
			require.Equal(t, results.StatusOK, r.Status, "no launch cut short by the budget: %s", r.Error)
		}
	}
	p = startSuite(t, bin, work, "--resume", resultDir(t, root), "--bin-dir", bin, "-q")
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	require.Equal(t, total, recorded(t, root))
}

// TestSuiteMaxCells: --max-cells ends a call after that many cells, at a cell's end (exit 130, nothing cut), and a
// resume with it runs the next ones.
func TestSuiteMaxCells(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--engines", "reference:threads=1",
		"--models", "tiny", "--launches", "2", "--max-cells", "1")
	require.Equal(t, cli.ExitInterrupted, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "--max-cells 1 reached")
	dir := resultDir(t, root)
	status := func() []string {
		var st suite.State
		require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
		var out []string
		for _, cs := range st.Cells {
			out = append(out, cs.Status)
		}
		return out
	}
	got := status()
	require.Equal(t, suite.StatusDone, got[0])
	for _, s := range got[1:] {
		require.Equal(t, suite.StatusPending, s)
	}
	require.Equal(t, 2, recorded(t, root))
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "-q", "--max-cells", "1")
	require.Equal(t, cli.ExitInterrupted, p.wait(t), p.stderr.String())
	require.Equal(t, []string{suite.StatusDone, suite.StatusDone}, status()[:2])
	require.Equal(t, 4, recorded(t, root))
}

// TestSuiteSubset: --models and --workloads pick cells of the config (and a
// resume keeps the choice); a name the config lacks is a usage error.
func TestSuiteSubset(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--models", "nope")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), `the config has no model "nope"`)

	p = startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--engines", "reference:threads=1",
		"--models", "tiny-seed2", "--workloads", "b8-p32-n32,p32-n64", "--launches", "2")
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	dir := resultDir(t, root)
	var st suite.State
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	var names []string
	for _, cs := range st.Cells {
		names = append(names, cs.Name)
	}
	require.Equal(t, []string{"tiny-seed2-b8-p32-n32", "tiny-seed2-p32-n64"}, names)
	require.Equal(t, 2*2, recorded(t, root))
	require.NoDirExists(t, filepath.Join(work, "models", "tiny"), "a model left out is not synthesized")

	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--models", "tiny")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), "--models would change the suite being finished")

	// --add-models extends the finished subset by a model of the config, as cells after its own: the suite's own
	// engines, workloads and launch count (not the config's three workloads and 4 launches), the finished cells untouched.
	p = startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--add-models", cfgPath)
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), "use it with --resume DIR")
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--add-models", cfgPath, "--models", "nope")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), `has no model "nope"`)
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--add-models", cfgPath, "--models", "tiny-seed2")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), `model "tiny-seed2" is in the suite already`)
	before, err := os.ReadFile(filepath.Join(dir, "tiny-seed2-p32-n64", results.RunsFile))
	require.NoError(t, err)
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--add-models", cfgPath)
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "added model(s) tiny from")
	st = suite.State{}
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	names = names[:0]
	for _, cs := range st.Cells {
		names = append(names, cs.Name)
		require.Equal(t, suite.StatusDone, cs.Status, cs.Name)
		require.Equal(t, []string{"reference:threads=1"}, cs.Engines, cs.Name)
	}
	require.Equal(t, []string{"tiny-seed2-b8-p32-n32", "tiny-seed2-p32-n64", "tiny-b8-p32-n32", "tiny-p32-n64"}, names)
	require.Equal(t, 4*2, recorded(t, root), "2 launches in each of 4 cells")
	after, err := os.ReadFile(filepath.Join(dir, "tiny-seed2-p32-n64", results.RunsFile))
	require.NoError(t, err)
	require.Equal(t, before, after, "a finished cell is not run again")
	sc, err := suite.Load(filepath.Join(dir, suite.ConfigFile))
	require.NoError(t, err)
	require.Len(t, sc.Models, 2, "the suite's own config names both models now")
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--add-models", cfgPath)
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), "no model to add")
}

// groupedSuite writes the suite both grouping tests run — reference and testengine (max batch 4) on the tiny shape,
// two batch-1 workloads and a batch-8 one between them — with extra (its grouping) added, and returns its path.
func groupedSuite(t *testing.T, work, extra string) string {
	t.Helper()
	path := filepath.Join(work, "suite.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`name: grouped
device: cpu
dtype: f32
seed: 1
warmup: 1
iterations: 2
launches: 2
`+extra+`engines:
  - {name: reference, threads: 1}
  - {name: testengine}
models:
  - {name: tiny, dir: models/tiny, synth: {shape: tiny, dtype: f32, seed: 1}}
workloads:
  - {name: p16-n8, prompt_len: 16, max_new_tokens: 8}
  - {name: b8-p16-n8, prompt_len: 16, max_new_tokens: 8, batch_size: 8}
  - {name: p64-n2, prompt_len: 64, max_new_tokens: 2}
timeouts: {start: 2m, stall: 1m, total: 5m}
`), 0o644))
	return path
}

// TestSuitePerBatch: with `cells: per-batch` a model's workloads of one batch size are one benchmark whose launches
// run them all as cases (one process start and load per launch for both), the batched workload its own cell, which
// skips the engine that cannot batch 8; the report titles a grouped cell by its workloads.
func TestSuitePerBatch(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath := groupedSuite(t, work, "cells: per-batch\n")
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root)
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	dir := resultDir(t, root)
	var st suite.State
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	require.Len(t, st.Cells, 2)
	grouped, batched := st.Cells[0], st.Cells[1]
	require.Equal(t, [2]string{"tiny-p16-n8+p64-n2", "p16-n8+p64-n2"}, [2]string{grouped.Name, grouped.Workload})
	require.Equal(t, []string{"reference:threads=1", "testengine"}, grouped.Engines)
	require.Equal(t, "tiny-b8-p16-n8", batched.Name)
	require.Equal(t, []string{"testengine skipped: batch 8, its info says max batch 4"}, batched.Skipped)
	for _, cs := range st.Cells {
		require.Equal(t, suite.StatusDone, cs.Status, cs.Name)
	}
	// Two launches per engine ran both cases: 4 launch records, each with both cases' iterations.
	recs, _, err := results.ReadRuns(filepath.Join(dir, grouped.Name, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 4)
	for _, r := range recs {
		cases := map[string]int{}
		for _, it := range r.Iterations {
			cases[it.CaseName]++
		}
		require.Equal(t, map[string]int{"p16-n8": 3, "p64-n2": 3}, cases, "%s launch %d: warm-up + 2 timed iterations of each case", r.Engine, r.Launch)
	}
	var sum analysis.Summary
	require.NoError(t, results.ReadJSON(filepath.Join(dir, grouped.Name), results.SummaryFile, &sum))
	require.Len(t, sum.Cases, 2)
	md, err := os.ReadFile(filepath.Join(dir, suite.ReportMD))
	require.NoError(t, err)
	for _, s := range []string{"## tiny × p16-n8+p64-n2", "## tiny × b8-p16-n8", "testengine skipped: batch 8"} {
		require.Contains(t, string(md), s)
	}
}

// TestSuitePerModel: with `cells: per-model` (here --cells over the file's per-batch; a bad value and a change on
// --resume refused) all of a model's workloads are one benchmark, each launch running every
// case its engine can batch: the engine whose info says max batch 4 runs the batch-1 cases and leaves out the batch-8
// one (its request holds the two, its records keep the benchmark's case indices), instead of sitting the model out;
// the batch-8 case's table has no row and no verdict for it and says why.
func TestSuitePerModel(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath := groupedSuite(t, work, "cells: per-batch\nbaseline: testengine\n")
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--cells", "per-engine")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), `cells: "per-engine": want per-workload, per-batch or per-model`)
	p = startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--cells", "per-model") // the file's per-batch overridden
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	require.Contains(t, p.stderr.String(), "note: testengine serves batches of up to 4: its launches leave out b8-p16-n8 (batch 8)")
	dir := resultDir(t, root)
	sc, err := suite.Load(filepath.Join(dir, suite.ConfigFile))
	require.NoError(t, err)
	require.Equal(t, suite.PerModel, sc.Grouping, "the suite's own config keeps the grouping it ran with")
	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin, "--cells", "per-batch")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), "--cells would change the suite being finished")
	var st suite.State
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	require.Len(t, st.Cells, 1)
	cell := st.Cells[0]
	require.Equal(t, "tiny-p16-n8+b8-p16-n8+p64-n2", cell.Name)
	require.Equal(t, suite.StatusDone, cell.Status)
	require.Equal(t, []string{"reference:threads=1", "testengine"}, cell.Engines)
	require.Empty(t, cell.Skipped)
	recs, _, err := results.ReadRuns(filepath.Join(dir, cell.Name, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 4)
	for _, r := range recs {
		require.Equal(t, results.StatusOK, r.Status, "%s launch %d: %s", r.Engine, r.Launch, r.Error)
		cases := map[string]int{}
		for _, it := range r.Iterations {
			cases[fmt.Sprintf("%d:%s", it.Raw.Case, it.CaseName)]++
		}
		if r.Engine == "testengine" {
			require.Equal(t, []int{0, 2}, r.Cases)
			require.Equal(t, map[string]int{"0:p16-n8": 3, "2:p64-n2": 3}, cases, "the benchmark's case indices, not its request's")
		} else {
			require.Nil(t, r.Cases)
			require.Equal(t, map[string]int{"0:p16-n8": 3, "1:b8-p16-n8": 3, "2:p64-n2": 3}, cases)
		}
	}
	var sum analysis.Summary
	require.NoError(t, results.ReadJSON(filepath.Join(dir, cell.Name), results.SummaryFile, &sum))
	require.Len(t, sum.Cases, 3)
	for _, c := range sum.Cases {
		if c.Name == "b8-p16-n8" {
			require.Equal(t, []string{"testengine"}, c.NotRun)
			require.Len(t, c.Results, 1)
			require.Equal(t, "reference:threads=1", c.Results[0].Engine)
			require.Empty(t, c.Comparisons, "its baseline did not run it")
			continue
		}
		require.Empty(t, c.NotRun, c.Name)
		require.Len(t, c.Results, 2, c.Name)
		require.NotEmpty(t, c.Comparisons, c.Name)
	}
	md, err := os.ReadFile(filepath.Join(dir, cell.Name, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "Not run in this case: testengine — each serves smaller batches than 8")
}

// TestSuiteResumeOnAnotherMachine: a suite resumed on another machine (each GPU session gets a fresh one) does not pool
// a half-done cell's launches with its own: the cell's directory is kept aside, named in the suite's notes and report,
// and the cell runs again from the start; the cells still to come run as usual.
func TestSuiteResumeOnAnotherMachine(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfgPath, err := filepath.Abs("../../../configs/suite-cpu.yaml")
	require.NoError(t, err)
	const total = 2 * 2 * 4 // as in TestSuiteStopAfter
	p := startSuite(t, bin, work, cfgPath, "--bin-dir", bin, "--out", root, "--engines", "testengine:token_us=3000", "--stop-after", "1500ms")
	require.Equal(t, cli.ExitInterrupted, p.wait(t), p.stderr.String())
	dir := resultDir(t, root)
	// The cell the budget cut: a config, and fewer than its 4 launches. Its record now names another host.
	var cell string
	partial := 0
	files, err := filepath.Glob(filepath.Join(dir, "*", results.RunsFile))
	require.NoError(t, err)
	for _, f := range files {
		recs, _, err := results.ReadRuns(f)
		require.NoError(t, err)
		if len(recs) < 4 {
			cell, partial = filepath.Dir(f), len(recs)
		}
	}
	require.NotEmpty(t, cell, "a cell cut inside by --stop-after")
	setHost(t, cell, "yesterdays-gpu-host")

	p = startSuite(t, bin, work, "--resume", dir, "--bin-dir", bin)
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	name := filepath.Base(cell)
	require.Contains(t, p.stderr.String(), "note: "+name+" was begun on another machine (another machine: its launches ran on host yesterdays-gpu-host (")
	aside, _, err := results.ReadRuns(filepath.Join(cell+".other-machine", results.RunsFile))
	require.NoError(t, err)
	require.Len(t, aside, partial, "the other machine's launches are kept as they were")
	again, _, err := results.ReadRuns(filepath.Join(cell, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, again, 4, "the cell ran again from the start")
	require.Equal(t, 0, again[0].Launch)
	require.Equal(t, total+partial, recorded(t, root))
	md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	require.Contains(t, string(md), name+" was begun on another machine")
	host, err := os.Hostname()
	require.NoError(t, err)
	require.Regexp(t, `\| \[[^]]+\]\(`+name+`/report.md\) \| done \| testengine:token_us=3000 \| 4 \| [^|]+ \| host `+host+` \(`, string(md),
		"the matrix names the machine each cell ran on")
}

// TestSuiteModelSkip: a model's skip list leaves an engine out of that model's cells with the reason in the report,
// and keeps it in the other model's.
func TestSuiteModelSkip(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfg := filepath.Join(work, "skip.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("name: skip\ndevice: cpu\ndtype: f32\nwarmup: 0\niterations: 1\nlaunches: 4\n"+
		"engines: [{name: reference, threads: 1}, {name: testengine}]\n"+
		"models:\n  - {name: a, dir: models/a, synth: {shape: tiny, dtype: f32, seed: 1}}\n"+
		"  - {name: b, dir: models/b, synth: {shape: tiny, dtype: f32, seed: 2}, skip: {testengine: known to fail on b (test)}}\n"+
		"workloads: [{name: w, prompt_len: 4, max_new_tokens: 2}]\n"), 0o644))
	p := startSuite(t, bin, work, cfg, "--bin-dir", bin, "--out", root, "--launches", "2", "-q")
	require.Equal(t, 0, p.wait(t), p.stderr.String())
	dir := resultDir(t, root)
	var st suite.State
	require.NoError(t, results.ReadJSON(dir, suite.StateFile, &st))
	require.Len(t, st.Cells, 2)
	require.Equal(t, []string{"reference:threads=1", "testengine"}, st.Cells[0].Engines)
	require.Equal(t, []string{"reference:threads=1"}, st.Cells[1].Engines)
	require.Equal(t, []string{"testengine skipped on b: known to fail on b (test)"}, st.Cells[1].Skipped)
	md, err := os.ReadFile(filepath.Join(dir, suite.ReportMD))
	require.NoError(t, err)
	require.Contains(t, string(md), "testengine skipped on b: known to fail on b (test)")
}

// TestSuiteWorkloadOverPositions: a workload longer than a model's positions (prompt + new tokens over
// max_position_embeddings, which every engine refuses) is the config's error, in the dry run and before a new suite's
// first cell — not every engine's failed launches in the cell that has it (2026-12-02, H200: p2048-n16 on TinyLlama).
func TestSuiteWorkloadOverPositions(t *testing.T) {
	bin := testbin.Dir(t)
	work := t.TempDir()
	root := filepath.Join(work, "results")
	cfg := filepath.Join(work, "long.yaml")
	// the tiny shape has 1024 positions: 1016 + 8 fits, 1020 + 8 does not (and comes second: nothing may run first)
	require.NoError(t, os.WriteFile(cfg, []byte("name: long\ndevice: cpu\ndtype: f32\nwarmup: 0\niterations: 1\nlaunches: 4\n"+
		"engines: [{name: reference, threads: 1}]\n"+
		"models: [{name: a, dir: models/a, synth: {shape: tiny, dtype: f32, seed: 1}}]\n"+
		"workloads: [{name: fits, prompt_len: 1016, max_new_tokens: 8}, {name: over, prompt_len: 1020, max_new_tokens: 8}]\n"), 0o644))
	want := "cell a-over: cases[0] (over): 1020 prompt + 8 new tokens = 1028 positions, over the model's max_position_embeddings 1024"
	p := startSuite(t, bin, work, cfg, "--bin-dir", bin, "--out", root, "--dry-run")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), want)
	p = startSuite(t, bin, work, cfg, "--bin-dir", bin, "--out", root, "-q")
	require.Equal(t, cli.ExitUsage, p.wait(t))
	require.Contains(t, p.stderr.String(), want+" (no engine serves it: shorten the prompt to 1016)")
	_, err := os.Stat(root)
	require.True(t, os.IsNotExist(err), "no suite started: nothing written")
}
