package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

type out struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, ctx context.Context, args ...string) out {
	t.Helper()
	var so, se bytes.Buffer
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	code := cli.Run(ctx, append([]string{"runner"}, args...), strings.NewReader(""), &so, &se, env)
	return out{code, so.String(), se.String()}
}

func resultDir(t *testing.T, root string) string {
	t.Helper()
	ents, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, ents, 1, "one results directory")
	return filepath.Join(root, ents[0].Name())
}

// TestDefaultJob runs the README's main job: the embedded smoke config with
// two reference-engine variants on the tiny model, end to end with real
// engine processes.
func TestDefaultJob(t *testing.T) {
	bin := testbin.Dir(t)
	model := filepath.Join(t.TempDir(), "tiny") // synthesized by the runner itself
	root := t.TempDir()
	o := run(t, t.Context(), "--bin-dir", bin, "--out", root, "--model", model, "--launches", "2", "--iterations", "4")
	require.Equal(t, cli.ExitUsage, o.code, "a --model that does not exist and has no synth section is a usage error: %s", o.stderr)
	require.Contains(t, o.stderr, "runner models synth")

	o = run(t, t.Context(), "models", "synth", "--shape", "tiny", "--dtype", "f32", "--out", model)
	require.Equal(t, 0, o.code, o.stderr)

	o = run(t, t.Context(), "--bin-dir", bin, "--out", root, "--model", model, "--launches", "2", "--iterations", "4")
	require.Equal(t, 0, o.code, o.stderr)
	require.Contains(t, o.stdout, "| vs reference:threads=1 |")
	require.Contains(t, o.stdout, "reference:threads=2 64/64 identical prefix")
	require.Contains(t, o.stderr, "launch 2 ok")

	dir := resultDir(t, root)
	recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 4)
	require.Equal(t, []string{"reference:threads=1", "reference:threads=2", "reference:threads=1", "reference:threads=2"},
		[]string{recs[0].Engine, recs[1].Engine, recs[2].Engine, recs[3].Engine}, "launches interleaved A B A B")
	var sum analysis.Summary
	require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &sum))
	require.Equal(t, analysis.Schema, sum.Schema)
	require.Regexp(t, `reference:threads=2 (vs reference:threads=1 in TPOT: (no significant difference|not significant with)|is [0-9.]+× (faster|slower) than reference:threads=1 in TPOT)`, o.stdout, "a plain-words verdict")
	require.Len(t, sum.Cases[0].Results[0].Metrics["tpot_ms"].Samples, 8)
	require.NotEmpty(t, sum.Cases[0].Comparisons)
	for _, f := range []string{results.ReportMD, results.ReportHTML, results.ReportCSV, results.BenchFile, results.EnvFile, "request.json"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	page, err := os.ReadFile(filepath.Join(dir, results.ReportHTML))
	require.NoError(t, err)
	require.Equal(t, 3, bytes.Count(page, []byte("<svg")), "decode tok/s, TPOT and TTFT charts of the one case")
	require.Contains(t, string(page), "reference:threads=2")

	// report DIR rebuilds the same report from runs.jsonl.
	before, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	o = run(t, t.Context(), "report", dir)
	require.Equal(t, 0, o.code, o.stderr)
	after, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	require.Equal(t, string(before), string(after))

	// compare A A finds nothing significant and no environment change.
	o = run(t, t.Context(), "compare", dir, filepath.Join(dir, results.SummaryFile))
	require.Equal(t, 0, o.code, o.stderr)
	require.Contains(t, o.stdout, "same GPU, model, dtype and engine versions")
	require.Contains(t, o.stdout, "| ~ |")
	require.NotContains(t, o.stdout, "<nil>")
	require.Contains(t, o.stdout, "| TPOT ms |", "compare names metrics as report does")
	require.NotContains(t, o.stdout, "%|", "no significant change when comparing a run with itself")
}

// TestCrashingEngineYieldsFailedRow: one engine crashes mid-run, the other
// completes every launch; the crash is a failed row with its reason.
func TestCrashingEngineYieldsFailedRow(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	root := t.TempDir()
	o := run(t, t.Context(), "--bin-dir", bin, "--out", root, "--model", model, "--launches", "3", "--iterations", "3",
		"--engines", "reference,testengine:fail=crash-after=2")
	require.Equal(t, cli.ExitRunsFailed, o.code, o.stderr)
	require.Contains(t, o.stderr, "2 failed launches in a row")
	dir := resultDir(t, root)
	recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	require.NoError(t, err)
	var ok, failed int
	for _, r := range recs {
		switch {
		case r.Engine == "reference" && r.Status == results.StatusOK:
			ok++
		case strings.HasPrefix(r.Engine, "testengine") && r.Status == results.StatusFailed:
			failed++
			require.Contains(t, r.Error, "engine exited")
			require.Contains(t, r.StderrTail, "simulated segfault")
			require.Len(t, r.Iterations, 2, "iterations before the crash are kept")
		default:
			t.Fatalf("unexpected record %s %s: %s", r.Engine, r.Status, r.Error)
		}
	}
	require.Equal(t, 3, ok, "reference completed all launches")
	require.Equal(t, 2, failed, "the crashing engine stopped after 2 failures in a row")
	require.Contains(t, o.stdout, "## Failed launches")
	require.Contains(t, o.stdout, "testengine:fail=crash-after=2 launch 1: engine exited")
}

// benchWith runs a benchmark of engines on the tiny model with a config made of
// "model: <tiny>" and body, and returns the run and its records.
func benchWith(t *testing.T, body, engines string) (out, []results.Record) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "bench.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("model: "+testbin.TinyModel(t)+"\n"+body), 0o644))
	root := t.TempDir()
	o := run(t, t.Context(), "--bin-dir", testbin.Dir(t), "--out", root, "--config", cfg, "--engines", engines)
	recs, _, err := results.ReadRuns(filepath.Join(resultDir(t, root), results.RunsFile))
	require.NoError(t, err, "stderr:\n%s", o.stderr)
	return o, recs
}

// TestHostCPU: the record says how many host cores an engine kept busy while
// generating — about one for a loop that spins on the CPU, near zero for one
// that sleeps — and the report shows it.
func TestHostCPU(t *testing.T) {
	o, recs := benchWith(t, "warmup: 0\niterations: 4\nlaunches: 1\ncases: [{name: c, prompt_len: 4, max_new_tokens: 25}]\n",
		"testengine:token_us=8000:busy=1,testengine:token_us=8000")
	require.Equal(t, 0, o.code, o.stderr)
	require.Len(t, recs, 2)
	for _, r := range recs {
		require.NotNil(t, r.HostCPU, r.Engine)
		// 4 × 25 tokens × 8 ms = 0.8 s at least; a loaded machine stretches it (1.5 s seen).
		require.GreaterOrEqual(t, r.HostCPU.WallSeconds, 0.75, "%s: 4 × 25 tokens × 8 ms", r.Engine)
		require.Less(t, r.HostCPU.WallSeconds, 10.0, "%s: 4 × 25 tokens × 8 ms", r.Engine)
	}
	// Relative, not absolute: under CPU contention (CI's 2 cores running other test packages) the spinning
	// engine gets a share of a core; it must still use several times what the sleeping one does.
	busy, idle := recs[0].HostCPU.Cores(), recs[1].HostCPU.Cores()
	require.Greater(t, busy, 0.1, "spinning engine keeps a core busy")
	require.Greater(t, busy, 3*idle, "spinning engine %.2f cores vs sleeping %.2f", busy, idle)
	require.Less(t, idle, 0.2, "sleeping engine does not keep a core busy")
	require.Contains(t, o.stdout, "host CPU cores while generating")
}

// TestStallNamesTheIteration: an engine that stops answering in its warm-up
// fails the launch with a stall timeout that says which iteration it owed, and
// the other engine's launches still complete.
func TestStallNamesTheIteration(t *testing.T) {
	o, recs := benchWith(t, "warmup: 2\niterations: 2\nlaunches: 1\ncases: [{name: short, prompt_len: 4, max_new_tokens: 3}]\n"+
		"timeouts: {start: 1m, stall: 2s, total: 1m}\n", "reference,testengine:fail=hang-after=1")
	require.Equal(t, cli.ExitRunsFailed, o.code, o.stderr)
	require.Len(t, recs, 2)
	require.Equal(t, results.StatusOK, recs[0].Status, recs[0].Error)
	require.Equal(t, results.StatusFailed, recs[1].Status)
	require.Contains(t, recs[1].Error, "stall timeout: no event for 2s")
	require.Contains(t, recs[1].Error, "waiting for warm-up iteration 2/2 of case short, 1 of 4 iterations done")
	require.Len(t, recs[1].Iterations, 1, "the iteration before the stall is kept")
}

// TestInterruptKeepsRecords cancels the benchmark (as Ctrl-C does) after the
// first launch: what finished is on disk and reported.
func TestInterruptKeepsRecords(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	root := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan out, 1)
	go func() {
		done <- run(t, ctx, "--bin-dir", bin, "--out", root, "--model", model, "--launches", "5", "--iterations", "2",
			"--engines", "reference,testengine:fail=hang-after=1")
	}()
	// Wait for the first record, then interrupt while the test engine hangs.
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir(root)
		if len(ents) != 1 {
			return false
		}
		b, _ := os.ReadFile(filepath.Join(root, ents[0].Name(), results.RunsFile))
		return bytes.Count(b, []byte("\n")) >= 1
	}, 60*time.Second, 50*time.Millisecond)
	time.Sleep(2 * time.Second) // the test engine is now hung in its second iteration
	cancel()
	o := <-done
	require.Equal(t, cli.ExitInterrupted, o.code, o.stderr)
	dir := resultDir(t, root)
	recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(recs), 2)
	require.Equal(t, results.StatusOK, recs[0].Status)
	require.Equal(t, "interrupted by the user", recs[1].Error)
	require.FileExists(t, filepath.Join(dir, results.ReportMD))
}

func TestBadInput(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	good := "model: " + model + "\ncases: [{name: a, prompt_len: 4, max_new_tokens: 2}]\n"
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"malformed yaml", []string{"--config", write("bad.yaml", "model: [unclosed\n")}, cli.ExitUsage, []string{"bad.yaml", "parse"}},
		{"unknown field", []string{"--config", write("unknown.yaml", good+"iteratoins: 3\n"), "--engines", "reference"}, cli.ExitUsage, []string{"unknown.yaml", "field iteratoins not found"}},
		{"invalid values", []string{"--config", write("inv.yaml", "model: x\ndevice: tpu\ncases: [{name: a, max_new_tokens: 0}]\n"), "--engines", "reference"}, cli.ExitUsage,
			[]string{"device: \"tpu\"", "cases[0]: prompt_len or prompt_tokens is required", "cases[0].max_new_tokens: 0"}},
		{"unknown engine", []string{"--config", write("g1.yaml", good), "--engines", "reference,vllm"}, cli.ExitUsage, []string{`engine "vllm" not found`, "looked in " + filepath.Join(bin, "vllm"), "known engines"}},
		{"known engine not built", []string{"--config", write("g2.yaml", good), "--engines", "candle"}, cli.ExitUsage, []string{`engine "candle" not found`, "scripts/build-candle.sh"}},
		{"bad engine option syntax", []string{"--config", write("g3.yaml", good), "--engines", "reference:threads"}, cli.ExitUsage, []string{`option "threads" is not key=value`}},
		{"option the engine lacks", []string{"--config", write("g4.yaml", good), "--engines", "reference:turbo=1"}, cli.ExitUsage, []string{`unknown option "turbo"`}},
		{"missing model dir", []string{"--config", write("g5.yaml", good), "--engines", "reference", "--model", "/nonexistent/m"}, cli.ExitUsage, []string{"/nonexistent/m", "runner models synth"}},
		{"prompt id outside vocab", []string{"--config", write("v.yaml", "model: "+model+"\ncases: [{name: a, prompt_tokens: [1, 99999], max_new_tokens: 2}]\n"), "--engines", "reference"}, cli.ExitUsage, []string{"id 99999 is outside the model's vocabulary (512)"}},
		{"no config file", []string{"--config", filepath.Join(dir, "missing.yaml")}, cli.ExitUsage, []string{"missing.yaml", "no such file"}},
		{"unknown flag", []string{"--iterationz", "3"}, cli.ExitUsage, []string{"iterationz"}},
		{"stray argument", []string{"--bin-dir", bin, "frobnicate"}, cli.ExitUsage, []string{`unexpected argument "frobnicate"`}},
		{"report of missing dir", []string{"report", filepath.Join(dir, "none")}, cli.ExitError, []string{"runs.jsonl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--bin-dir", bin, "--out", t.TempDir()}, tt.args...)
			if tt.args[0] == "report" {
				args = tt.args
			}
			o := run(t, t.Context(), args...)
			require.Equal(t, tt.code, o.code, "stderr: %s", o.stderr)
			require.NotContains(t, o.stderr, "panic")
			for _, w := range tt.want {
				require.Contains(t, o.stderr, w)
			}
		})
	}
}

func TestConformanceReference(t *testing.T) {
	bin := testbin.Dir(t)
	o := run(t, t.Context(), "conformance", "--bin-dir", bin, "--model", testbin.TinyModel(t), "reference")
	require.Equal(t, 0, o.code, "stdout: %s\nstderr: %s", o.stdout, o.stderr)
	require.NotContains(t, o.stdout, "FAIL")
	require.Contains(t, o.stdout, "conforms to protocol v1")
}

// TestConformanceVariant: a variant's options and threads reach every run request;
// the reference engine rejects an option it does not know, so the run checks fail.
func TestConformanceVariant(t *testing.T) {
	bin := testbin.Dir(t)
	o := run(t, t.Context(), "conformance", "--bin-dir", bin, "--model", testbin.TinyModel(t), "reference:threads=1")
	require.Equal(t, 0, o.code, "stdout: %s\nstderr: %s", o.stdout, o.stderr)
	require.Contains(t, o.stdout, "reference:threads=1 (")
	o = run(t, t.Context(), "conformance", "--bin-dir", bin, "--model", testbin.TinyModel(t), "reference:kernel=naive")
	require.Equal(t, cli.ExitError, o.code, o.stdout)
	require.Contains(t, o.stdout, `FAIL  run: stdout is JSON events only, exit 0 after done: engine error (bad_request)`)
	require.Contains(t, o.stdout, `option "kernel"`)
	o = run(t, t.Context(), "conformance", "--bin-dir", bin, "reference:threads")
	require.Equal(t, cli.ExitUsage, o.code)
}

// TestConformanceFlagsAfterName: the engine name may come before the flags.
func TestConformanceFlagsAfterName(t *testing.T) {
	bin := testbin.Dir(t)
	o := run(t, t.Context(), "conformance", "reference", "--bin-dir", bin, "--model", testbin.TinyModel(t))
	require.Equal(t, 0, o.code, "stdout: %s\nstderr: %s", o.stdout, o.stderr)
	require.Contains(t, o.stdout, "conforms to protocol v1")
}

func TestConformanceCatchesBadEngine(t *testing.T) {
	bin := testbin.Dir(t)
	dir := t.TempDir()
	// An engine that prints a log line on stdout before its info object.
	bad := filepath.Join(dir, "chatty")
	require.NoError(t, os.WriteFile(bad, []byte("#!/bin/sh\necho 'initialising'\nexec "+filepath.Join(bin, "testengine")+" \"$@\"\n"), 0o755))
	o := run(t, t.Context(), "conformance", "--bin-dir", dir, "--model", testbin.TinyModel(t), "chatty")
	require.Equal(t, cli.ExitError, o.code)
	require.Contains(t, o.stdout, "FAIL  info prints one valid JSON object and nothing else")
}

func TestEnginesList(t *testing.T) {
	bin := testbin.Dir(t)
	o := run(t, t.Context(), "engines", "--bin-dir", bin, "--json")
	require.Equal(t, 0, o.code, o.stderr)
	var infos map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &infos))
	require.Contains(t, infos, "reference")
}

// TestAdaptiveStopping: a loose launch-level CI target stops at the configured
// launches (3, the fewest a launch-level CI may stop on); an impossible one
// adds launches up to the cap and says so.
func TestAdaptiveStopping(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	tests := []struct {
		name     string
		target   string
		launches int
		want     string
	}{
		{name: "loose target met", target: "0.99", launches: 3, want: "adaptive: every launch-level CI within ±99.0%"},
		{name: "tight target hits the cap", target: "0.000001", launches: 4, want: "adaptive: launch cap 4 reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "a.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte("model: "+model+"\nlaunches: 3\niterations: 5\nwarmup: 1\n"+
				"engines: [{name: testengine, options: {token_us: '50'}}]\n"+
				"cases: [{name: a, prompt_len: 4, max_new_tokens: 8}]\nadaptive: {target_rel_ci: "+tt.target+", max_launches: 4}\n"), 0o644))
			root := t.TempDir()
			o := run(t, t.Context(), "--bin-dir", bin, "--out", root, "--config", cfg)
			require.Equal(t, 0, o.code, o.stderr)
			require.Contains(t, o.stderr, tt.want)
			recs, _, err := results.ReadRuns(filepath.Join(resultDir(t, root), results.RunsFile))
			require.NoError(t, err)
			require.Len(t, recs, tt.launches)
		})
	}
}
