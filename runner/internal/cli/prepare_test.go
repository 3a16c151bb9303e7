package cli_test

import (
	"context"
	"os"
	"os/exec"
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

// privateModel copies the tiny model's files into a directory of the test's own (prepare writes into it).
func privateModel(t *testing.T) string {
	t.Helper()
	src := testbin.TinyModel(t)
	dst := filepath.Join(t.TempDir(), "tiny")
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// twoPreparedVariants writes a config of two testengine variants on model, 2 launches each: a (prepare=need) and b
// (prepare=B).
func twoPreparedVariants(t *testing.T, model, b string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "bench.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("model: "+model+"\nlaunches: 2\nwarmup: 0\niterations: 2\n"+
		"engines:\n  - {name: testengine, label: a, options: {prepare: need}}\n  - {name: testengine, label: b, options: {prepare: "+b+"}}\n"+
		"cases: [{name: c, prompt_len: 4, max_new_tokens: 3}]\n"), 0o644))
	return cfg
}

// TestPrepareBeforeLaunches: an engine that declares capabilities.prepare is prepared once per variant before its
// first launch — the launches of a variant that cannot load unprepared (prepare=need) succeed —, each preparation is
// in prepare.jsonl, summary.json and the report, a second benchmark finds it cached, and a failed preparation is
// recorded and printed while the launches still run.
func TestPrepareBeforeLaunches(t *testing.T) {
	bin := testbin.Dir(t)
	model := privateModel(t)
	root := filepath.Join(t.TempDir(), "results")
	cfg := twoPreparedVariants(t, model, "fail")

	bench := func() (string, analysis.Summary, out) {
		o := runEnv(t, t.Context(), nil, "--bin-dir", bin, "--out", root, "--config", cfg, "--format", "json")
		require.Equal(t, cli.ExitOK, o.code, o.stderr)
		dirs, err := filepath.Glob(filepath.Join(root, "*"))
		require.NoError(t, err)
		dir := dirs[len(dirs)-1]
		var sum analysis.Summary
		require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &sum))
		return dir, sum, o
	}
	dir, sum, o := bench()
	require.Contains(t, o.stderr, "prepare a: made in")
	require.Contains(t, o.stderr, "prepare b: FAILED after")
	require.Contains(t, o.stderr, "prepare failed as asked")
	preps, warnings := results.ReadPreparations(dir)
	require.Empty(t, warnings)
	require.Len(t, preps, 2, "one preparation per variant, not per launch")
	recs, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 4)
	for _, r := range recs {
		require.Equal(t, results.StatusOK, r.Status, "%s launch %d: %s", r.Engine, r.Launch, r.Error)
	}
	require.Len(t, sum.Prepared, 2)
	require.Equal(t, "a", sum.Prepared[0].Engine)
	require.True(t, sum.Prepared[0].Ran)
	require.Contains(t, sum.Prepared[0].Steps["marker"], ".testengine-prepared-")
	require.Contains(t, sum.Prepared[1].Error, "prepare failed as asked")
	md, err := os.ReadFile(filepath.Join(dir, results.ReportMD))
	require.NoError(t, err)
	require.Contains(t, string(md), "Prepared before the first launch")
	require.Contains(t, string(md), "a made it in")
	require.Contains(t, string(md), "b failed after")

	// A second benchmark of the same model finds a's work cached.
	_, sum, o = bench()
	require.Contains(t, o.stderr, "prepare a: everything was cached in")
	require.False(t, sum.Prepared[0].Ran)

	// Unprepared, a prepare=need launch fails to load: the launches above succeeded because prepare ran first.
	require.NoError(t, os.Remove(sum.Prepared[0].Steps["marker"]))
	cmd := exec.Command(filepath.Join(bin, "testengine"), "run")
	cmd.Stdin = strings.NewReader(`{"protocol":1,"model":"` + model + `","device":"cpu","dtype":"f32","options":{"prepare":"need"},` +
		`"warmup":0,"iterations":1,"cases":[{"name":"c","prompt_tokens":[1,2],"max_new_tokens":2,"batch_size":1,"greedy":true,"ignore_eos":true}]}`)
	stdout, err := cmd.Output()
	require.Error(t, err)
	require.Contains(t, string(stdout), "not prepared")
}

// TestInterruptDuringPrepare: Ctrl-C while an engine prepares (and ignores the signal) kills it, records the
// preparation as interrupted, launches nothing and exits 130 promptly.
func TestInterruptDuringPrepare(t *testing.T) {
	bin := testbin.Dir(t)
	root := filepath.Join(t.TempDir(), "results")
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	o := runEnv(t, ctx, nil, "--bin-dir", bin, "--out", root, "--config", testConfig(t, ""), "--engines", "testengine:prepare=hang")
	require.Equal(t, cli.ExitInterrupted, o.code, o.stderr)
	require.Less(t, time.Since(start), 30*time.Second)
	dirs, err := filepath.Glob(filepath.Join(root, "*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	preps, _ := results.ReadPreparations(dirs[0])
	require.Len(t, preps, 1)
	require.Equal(t, "interrupted by the user", preps[0].Error)
	recs, _, _ := results.ReadRuns(filepath.Join(dirs[0], results.RunsFile))
	require.Empty(t, recs, "nothing launched after the interrupt")
}

// TestLongPrepareHoldsBackNoEarlierVariant: each variant is prepared just before its own first launch, so a preparation
// that never ends (burn tuning a shape for minutes) does not keep the variants before it from launching: interrupted
// there, the run keeps their launches. With every preparation before any launch, this run recorded none.
func TestLongPrepareHoldsBackNoEarlierVariant(t *testing.T) {
	bin := testbin.Dir(t)
	model := privateModel(t)
	root := filepath.Join(t.TempDir(), "results")
	cfg := twoPreparedVariants(t, model, "hang")
	ctx, cancel := context.WithCancel(t.Context())
	go func() { // interrupt once a launch is on record (or after 90 s: a loaded CI machine is slow, and on the old order none will be)
		defer cancel()
		for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			runs, _ := filepath.Glob(filepath.Join(root, "*", results.RunsFile))
			if len(runs) == 1 {
				if b, err := os.ReadFile(runs[0]); err == nil && strings.Contains(string(b), "\n") {
					return
				}
			}
		}
	}()
	o := runEnv(t, ctx, nil, "--bin-dir", bin, "--out", root, "--config", cfg)
	require.Equal(t, cli.ExitInterrupted, o.code, o.stderr)
	dirs, err := filepath.Glob(filepath.Join(root, "*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	recs, _, err := results.ReadRuns(filepath.Join(dirs[0], results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 1, "a's first launch, made before b's preparation began")
	require.Equal(t, "a", recs[0].Engine)
	require.Equal(t, results.StatusOK, recs[0].Status, recs[0].Error)
	preps, _ := results.ReadPreparations(dirs[0])
	require.Len(t, preps, 2)
	require.Equal(t, "a", preps[0].Engine)
	require.Empty(t, preps[0].Error)
	require.Equal(t, "b", preps[1].Engine)
	require.Equal(t, "interrupted by the user", preps[1].Error)
}

// TestPrepareTimeout: a preparation that runs past timeouts.prepare is stopped and its variant is not launched in
// that run (its launches would repeat the same work: burn's autotune of a new shape ran 13+ minutes on the H200) —
// one failed record says why, the other variant's launches run, and the run exits 3 (launches failed).
func TestPrepareTimeout(t *testing.T) {
	bin := testbin.Dir(t)
	model := privateModel(t)
	root := filepath.Join(t.TempDir(), "results")
	cfg := twoPreparedVariants(t, model, "hang")
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, append(b, []byte("timeouts: {prepare: 2s}\n")...), 0o644))
	start := time.Now()
	o := runEnv(t, t.Context(), nil, "--bin-dir", bin, "--out", root, "--config", cfg)
	require.Equal(t, cli.ExitRunsFailed, o.code, o.stderr)
	require.Less(t, time.Since(start), 60*time.Second, "b's preparation stopped at its limit, not at the launch timeouts")
	require.Contains(t, o.stderr, "b: not launched: its prepare ran past timeouts.prepare (2s)")
	dirs, err := filepath.Glob(filepath.Join(root, "*"))
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	recs, _, err := results.ReadRuns(filepath.Join(dirs[0], results.RunsFile))
	require.NoError(t, err)
	var a, bRecs []results.Record
	for _, r := range recs {
		if r.Engine == "a" {
			a = append(a, r)
		} else {
			bRecs = append(bRecs, r)
		}
	}
	require.Len(t, a, 2)
	for _, r := range a {
		require.Equal(t, results.StatusOK, r.Status, r.Error)
	}
	require.Len(t, bRecs, 1, "b: one record saying why, no launch")
	require.Equal(t, results.StatusFailed, bRecs[0].Status)
	require.Contains(t, bRecs[0].Error, "timeouts.prepare")
	preps, _ := results.ReadPreparations(dirs[0])
	require.Len(t, preps, 2)
	require.Contains(t, preps[1].Error, "timeout")
}
