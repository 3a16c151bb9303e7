package cli_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/slurm"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// RequireSlurmEnv, set to 1 (CI does), makes TestSlurmArray fail instead of
// skipping where no local Slurm can be started.
const RequireSlurmEnv = "CIB_REQUIRE_SLURM"

// slurmUp starts the one-node Slurm of scripts/slurm-test.sh (installing it
// when missing) and returns its SLURM_CONF; it is stopped when the test ends.
// Where it cannot run (not root, no apt-get) the test skips, unless
// RequireSlurmEnv says it must run.
func slurmUp(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../../scripts/slurm-test.sh")
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(script, "up")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 77 {
		msg := "no local Slurm: " + strings.TrimSpace(stderr.String())
		if os.Getenv(RequireSlurmEnv) == "1" {
			t.Fatalf("%s (%s=1: the Slurm test must run here)", msg, RequireSlurmEnv)
		}
		t.Skip(msg)
	}
	require.NoError(t, err, "scripts/slurm-test.sh up: %s", stderr.String())
	t.Cleanup(func() {
		if out, err := exec.Command(script, "down").CombinedOutput(); err != nil {
			t.Errorf("scripts/slurm-test.sh down: %v\n%s", err, out)
		}
	})
	return strings.TrimSpace(stdout.String())
}

// TestSlurmArray runs a matrix of CPU engines through a real slurmctld and
// slurmd on this machine: runner slurm submit makes one array task per
// variant; one task's engine crashes (a failed task), one slow task is
// cancelled with scancel after its first launch. While the array runs,
// runner report already merges what has finished; afterwards runner slurm
// status shows each task's state and runner report holds every launch any
// task recorded, with a failed row for the failed and the cancelled task.
// The cancelled task, resubmitted, resumes its recorded launches.
func TestSlurmArray(t *testing.T) {
	conf := slurmUp(t)
	start := time.Now()
	bin := testbin.Dir(t)
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "SLURM_CONF=" + conf}
	slurmRun := func(args ...string) out {
		t.Helper()
		return runEnv(t, t.Context(), []string{"SLURM_CONF=" + conf}, args...)
	}
	cfg := testConfig(t, "name: slurmtest\nengines:\n"+
		"  - {name: reference, threads: 1}\n"+
		"  - {name: reference, threads: 2}\n"+
		"  - {name: testengine, options: {fail: crash-after=1}}\n"+
		"  - {name: testengine, options: {token_us: \"250000\"}}\n")
	dir := filepath.Join(t.TempDir(), "array")

	o := slurmRun("slurm", "submit", "--config", cfg, "--partition", "cib", "--launches", "3", "--bin-dir", bin, "--runner", filepath.Join(bin, "runner"), "--results", dir, "--dry-run")
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	assert.Contains(t, o.stdout, "#SBATCH --array=0-3\n")
	assert.NotContains(t, o.stdout, "--gres", "CPU tasks ask for no GPU")
	assert.NoDirExists(t, dir, "--dry-run writes nothing")

	o = slurmRun("slurm", "submit", "--config", cfg, "--partition", "cib", "--launches", "3", "--bin-dir", bin, "--runner", filepath.Join(bin, "runner"), "--results", dir)
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	plan, err := slurm.ReadPlan(dir)
	require.NoError(t, err)
	require.Len(t, plan.Jobs, 1)
	job := plan.Jobs[0].ID
	t.Cleanup(func() { _ = exec.Command("scancel", job).Run() }) // nothing left running on a failure
	scancel := func(id string) {
		cmd := exec.Command("scancel", id)
		cmd.Env = environ
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "scancel %s: %s", id, out)
	}

	status := func() []map[string]any {
		t.Helper()
		o := slurmRun("slurm", "status", "--json", dir)
		require.Equal(t, cli.ExitOK, o.code, o.stderr)
		var rows []map[string]any
		require.NoError(t, json.Unmarshal([]byte(o.stdout), &rows), o.stdout)
		require.Len(t, rows, 4)
		return rows
	}
	waitFor := func(what string, ok func(rows []map[string]any) bool) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			rows := status()
			if ok(rows) {
				return rows
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 2 minutes for %s; tasks: %v", what, rows)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// The slow task, running with a launch recorded: the report merges what
	// has finished so far, then the task is cancelled.
	waitFor("task 3 to record a launch", func(rows []map[string]any) bool {
		if rows[3]["state"] == "COMPLETED" {
			t.Fatalf("task 3 finished all its launches before the test could cancel it: %v", rows[3])
		}
		return rows[3]["state"] == "RUNNING" && rows[3]["launches_ok"].(float64) >= 1
	})
	o = slurmRun("report", "--format", "json", dir)
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	var during analysis.Summary
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &during))
	require.Positive(t, engineOf(t, &during, "testengine:token_us=250000").Launches, "a running task's finished launches are in the report")
	assert.Contains(t, strings.Join(during.Warnings, "\n"), "slurm task 3 (testengine:token_us=250000): RUNNING")
	scancel(job + "_3")

	rows := waitFor("every task to end", func(rows []map[string]any) bool {
		for _, r := range rows {
			if s := r["state"].(string); s == "PENDING" || s == "RUNNING" || s == "COMPLETING" {
				return false
			}
		}
		return true
	})
	for i, want := range []string{"COMPLETED", "COMPLETED", "FAILED", "CANCELLED"} {
		assert.Equal(t, want, rows[i]["state"], "task %d", i)
		assert.NotEmpty(t, rows[i]["node"], "task %d", i)
	}
	o = slurmRun("slurm", "status", dir, "--json") // flags after the directory too
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	require.True(t, json.Valid([]byte(o.stdout)), o.stdout)
	o = slurmRun("slurm", "status", dir)
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	for _, s := range []string{"COMPLETED", "FAILED", "CANCELLED", "testengine:fail=crash-after=1"} {
		assert.Contains(t, o.stdout, s)
	}

	// The merged report: every launch any task recorded, plus one failed row
	// per failed or cancelled task.
	recorded := map[string][]results.Record{}
	for _, task := range plan.Tasks {
		recs := taskRecords(t, plan, task.ID)
		recorded[task.Engines[0]] = recs
		var env envinfo.Env
		attempts, _ := filepath.Glob(filepath.Join(plan.TaskDir(task.ID), "*", results.EnvFile))
		require.NotEmpty(t, attempts, "task %d wrote its environment", task.ID)
		require.NoError(t, results.ReadJSON(filepath.Dir(attempts[0]), results.EnvFile, &env))
		require.NotNil(t, env.Slurm, "task %d records its Slurm job", task.ID)
		assert.Equal(t, job, env.Slurm.ArrayJobID)
		assert.Equal(t, strconv.Itoa(task.ID), env.Slurm.ArrayTaskID)
		assert.Equal(t, rows[task.ID]["node"], env.Slurm.Node)
	}
	require.Len(t, recorded["reference:threads=1"], 3)
	require.Len(t, recorded["reference:threads=2"], 3)
	require.NotEmpty(t, recorded["testengine:fail=crash-after=1"])
	require.NotEmpty(t, recorded["testengine:token_us=250000"])
	o = slurmRun("report", "--format", "json", dir)
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	var sum analysis.Summary
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &sum))
	taskRows := map[string]int{"testengine:fail=crash-after=1": 1, "testengine:token_us=250000": 1}
	for label, recs := range recorded {
		e := engineOf(t, &sum, label)
		failed := 0
		for _, r := range recs {
			if r.Status != results.StatusOK {
				failed++
			}
		}
		assert.Equal(t, len(recs)+taskRows[label], e.Launches, "%s: every recorded launch and the task's failed row", label)
		assert.Equal(t, failed+taskRows[label], e.Failed, label)
	}
	var failures []string
	for _, f := range sum.Failures {
		failures = append(failures, f.Engine+": "+f.Error)
	}
	joined := strings.Join(failures, "\n")
	assert.Contains(t, joined, "testengine:fail=crash-after=1: slurm task 2 (job "+job+") ended FAILED")
	assert.Contains(t, joined, "testengine:token_us=250000: slurm task 3 (job "+job+") ended CANCELLED")
	for _, f := range []string{results.SummaryFile, results.ReportMD, results.ReportHTML} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	require.NotNil(t, sum.Env.Slurm)
	assert.Equal(t, job, sum.Env.Slurm.ArrayJobID)
	// The test engine declares prepare: each of its tasks prepared it before its first launch, and the merged report
	// gathers those preparations from the task directories.
	var prepared []string
	for _, p := range sum.Prepared {
		prepared = append(prepared, p.Engine)
	}
	assert.Subset(t, prepared, []string{"testengine:fail=crash-after=1", "testengine:token_us=250000"}, "%+v", sum.Prepared)

	// Resubmitted (the failed and the cancelled task), the cancelled task
	// resumes (runner bench --resume): its finished launches count as done
	// and are kept as they were, the launch the cancel cut short is run
	// again, and the task ends COMPLETED in the second job.
	before := recorded["testengine:token_us=250000"]
	resubmitted := time.Now()
	o = slurmRun("slurm", "resubmit", dir)
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	require.Contains(t, o.stdout, "2 task(s)")
	plan, err = slurm.ReadPlan(dir)
	require.NoError(t, err)
	require.Len(t, plan.Jobs, 2)
	job2 := plan.Jobs[1].ID
	assert.Equal(t, []int{2, 3}, plan.Jobs[1].Tasks, "the failed and the cancelled task")
	t.Cleanup(func() { _ = exec.Command("scancel", job2).Run() })
	rows = waitFor("the resubmitted tasks to end", func(rows []map[string]any) bool {
		for _, i := range []int{2, 3} {
			if s := rows[i]["state"].(string); rows[i]["job"] != job2 || s == "PENDING" || s == "RUNNING" || s == "COMPLETING" {
				return false
			}
		}
		return true
	})
	after := taskRecords(t, plan, 3)
	require.Len(t, after, 3, "three launches in all")
	var kept []results.Record
	for _, r := range before {
		if r.Status == results.StatusOK {
			kept = append(kept, r)
		}
	}
	require.NotEmpty(t, kept)
	for i, r := range after {
		require.Equal(t, results.StatusOK, r.Status, "launch %d: %s", i, r.Error)
		if i < len(kept) {
			assert.Equal(t, kept[i].StartedAt, r.StartedAt, "finished launch %d kept as it was", i)
		} else {
			assert.True(t, r.StartedAt.After(resubmitted), "launch %d ran in the resubmitted job", i)
		}
	}
	assert.Equal(t, "COMPLETED", rows[3]["state"])
	assert.Equal(t, "0:0", rows[3]["exit_code"])
	assert.Equal(t, "FAILED", rows[2]["state"], "the crashing engine fails again")
	t.Logf("Slurm test: %s (after Slurm was up)", time.Since(start).Round(time.Second))
}

func engineOf(t *testing.T, s *analysis.Summary, label string) analysis.Engine {
	t.Helper()
	for _, e := range s.Engines {
		if e.Label == label {
			return e
		}
	}
	t.Fatalf("no engine %s in the summary", label)
	return analysis.Engine{}
}

// taskRecords reads every launch task id recorded, over its attempts.
func taskRecords(t *testing.T, plan *slurm.Plan, id int) []results.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(plan.TaskDir(id), "*", results.RunsFile))
	require.NoError(t, err)
	var out []results.Record
	for _, f := range files {
		recs, _, err := results.ReadRuns(f)
		require.NoError(t, err)
		out = append(out, recs...)
	}
	return out
}

// TestSlurmHelpAndBadInput needs no Slurm: the help of runner slurm states
// the cluster requirements with examples; mistakes are usage errors that
// submit nothing and write nothing.
func TestSlurmHelpAndBadInput(t *testing.T) {
	o := run(t, t.Context(), "slurm", "--help")
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	for _, s := range []string{"shared by the", "cib-NAME", "EXAMPLES:\n      runner slurm submit", "runner report /shared/cib/decode"} {
		assert.Contains(t, o.stdout, s)
	}
	for _, cmd := range []string{"submit", "status", "resubmit"} {
		o := run(t, t.Context(), "slurm", cmd, "--help")
		require.Equal(t, cli.ExitOK, o.code, o.stderr)
		assert.Regexp(t, `EXAMPLES?:\n\s+runner slurm `+cmd, o.stdout, "an example in the help of slurm %s", cmd)
	}

	bin := testbin.Dir(t)
	cfg := testConfig(t, "engines: [{name: reference}]\n")
	full := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	notArray := t.TempDir()
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{name: "no partition", args: []string{"slurm", "submit", "--config", cfg, "--bin-dir", bin}, want: "partition"},
		{name: "GPUs for a CPU benchmark", args: []string{"slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--gpus-per-task", "2"},
			want: "--gpus-per-task 2: the benchmark runs on cpu"},
		{name: "unknown engine option", args: []string{"slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--engines", "reference:colour=red"},
			want: `unknown option "colour"`},
		{name: "results dir in use", args: []string{"slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--results", full},
			want: "exists and is not empty"},
		{name: "space in the results path", args: []string{"slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--results", filepath.Join(t.TempDir(), "a b"), "--dry-run"},
			want: "has a space"},
		{name: "status of a plain directory", args: []string{"slurm", "status", notArray}, want: "not a Slurm array's results directory"},
		{name: "task outside Slurm", args: []string{"slurm", "task", notArray}, want: "not a Slurm array's results directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runEnv(t, t.Context(), tt.env, tt.args...)
			assert.Equal(t, cli.ExitUsage, o.code, o.stderr)
			assert.Contains(t, o.stderr, tt.want)
		})
	}
	ents, err := os.ReadDir(full)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "a refused submit leaves the directory as it was")

	o = run(t, t.Context(), "slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--engines", "reference:threads=1,reference:threads=2",
		"--slices", "3", "--cpus-per-task", "2", "--dry-run")
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	for _, s := range []string{"#SBATCH --array=0-2\n", "#SBATCH --cpus-per-task=2\n", "#   2: reference:threads=1 reference:threads=2\n", "3 tasks each running every engine variant"} {
		assert.Contains(t, o.stdout, s)
	}
	o = run(t, t.Context(), "slurm", "submit", "--config", cfg, "--bin-dir", bin, "--partition", "p", "--slices", "-1", "--dry-run")
	assert.Equal(t, cli.ExitUsage, o.code)
	assert.Contains(t, o.stderr, "--slices -1")
}

// TestSlurmReportSlices merges an array of slice tasks (runner slurm submit
// --slices 2: each task ran both engines on its card) without asking Slurm
// (none on PATH: the states saved at the last refresh are used). Card 0 of
// node n1 and card 0 of node n2 are two cards: the comparison is blocked by
// card over both; the task that timed out is a failed row under each of its
// engines, its recorded launches kept.
func TestSlurmReportSlices(t *testing.T) {
	bin := testbin.Dir(t)
	root := t.TempDir()
	o := runEnv(t, t.Context(), []string{cli.FakeGPUsEnv + "=1"}, "--bin-dir", bin, "--out", root, "--config", testConfig(t, ""),
		"--engines", "testengine:token_us=3000,testengine:token_us=3500", "--launches", "2", "--gpus", "0", "-q")
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	src := resultDir(t, root)
	recs, _, err := results.ReadRuns(filepath.Join(src, results.RunsFile))
	require.NoError(t, err)
	require.Len(t, recs, 4)
	require.NotNil(t, recs[0].Card)

	dir := t.TempDir()
	labels := []string{"testengine:token_us=3000", "testengine:token_us=3500"}
	specs, err := config.ParseEngines(strings.Join(labels, ","))
	require.NoError(t, err)
	plan := &slurm.Plan{Name: "slices", Results: dir, Runner: filepath.Join(bin, "runner"), Device: "cpu", Partition: "p", Slices: 2,
		Jobs: []slurm.Job{{ID: "5", Tasks: []int{0, 1}}}}
	states := slurm.States{}
	for i, node := range []string{"n1", "n2"} {
		plan.Tasks = append(plan.Tasks, slurm.Task{ID: i, Engines: labels, Specs: specs, Config: "tasks/x.yaml"})
		attempt := filepath.Join(plan.TaskDir(i), filepath.Base(src))
		require.NoError(t, os.MkdirAll(attempt, 0o755))
		var env envinfo.Env
		require.NoError(t, results.ReadJSON(src, results.EnvFile, &env))
		env.Slurm = &envinfo.Slurm{JobID: "5", ArrayJobID: "5", ArrayTaskID: strconv.Itoa(i), Node: node}
		require.NoError(t, results.WriteJSON(attempt, results.EnvFile, env))
		require.NoError(t, results.WriteJSON(attempt, "request.json", json.RawMessage(mustRead(t, filepath.Join(src, "request.json")))))
		require.NoError(t, os.WriteFile(filepath.Join(attempt, cli.ConfigFile), []byte(mustRead(t, filepath.Join(src, cli.ConfigFile))), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(attempt, results.RunsFile), []byte(mustRead(t, filepath.Join(src, results.RunsFile))), 0o644))
		states[i] = slurm.State{Task: i, Job: "5", State: []string{"COMPLETED", "TIMEOUT"}[i], Node: node, ExitCode: "0:0", Source: "sacct"}
	}
	require.NoError(t, plan.Write())
	require.NoError(t, states.Write(dir))
	require.NoError(t, os.WriteFile(filepath.Join(dir, results.EnvFile), []byte(mustRead(t, filepath.Join(src, results.EnvFile))), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "request.json"), []byte(mustRead(t, filepath.Join(src, "request.json"))), 0o644))

	o = runEnv(t, t.Context(), []string{"PATH=" + t.TempDir()}, "report", dir, "--format", "json")
	require.Equal(t, cli.ExitOK, o.code, o.stderr)
	assert.Contains(t, o.stderr, "sacct: not found on PATH", "Slurm could not be asked")
	var sum analysis.Summary
	require.NoError(t, json.Unmarshal([]byte(o.stdout), &sum))
	for _, l := range labels {
		e := engineOf(t, &sum, l)
		assert.Equal(t, 2+2+1, e.Launches, "%s: two launches per task and the timed-out task's row", l)
		assert.Equal(t, 1, e.Failed, l)
	}
	require.NotEmpty(t, sum.Cases[0].Comparisons)
	cmp := sum.Cases[0].Comparisons[0]
	require.NotNil(t, cmp.Blocked, "blocked by card")
	require.Len(t, cmp.Cards, 2, "card 0 of n1 and card 0 of n2 are two cards")
	assert.Equal(t, []int{0, 1}, []int{cmp.Cards[0].Card, cmp.Cards[1].Card})
	w := strings.Join(sum.Warnings, "\n")
	assert.Contains(t, w, "card 0 of the comparisons is n1/0")
	assert.Contains(t, w, "card 1 of the comparisons is n2/0")
	assert.Contains(t, w, "slurm task 1 (testengine:token_us=3000 testengine:token_us=3500): TIMEOUT on n2, 4 launch(es) recorded (4 ok)")
	var failures []string
	for _, f := range sum.Failures {
		failures = append(failures, f.Engine+": "+f.Error)
	}
	assert.Len(t, failures, 2)
	assert.Contains(t, strings.Join(failures, "\n"), "testengine:token_us=3500: slurm task 1 (job 5) ended TIMEOUT")
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
