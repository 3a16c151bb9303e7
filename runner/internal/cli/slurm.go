package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/slurm"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

const slurmHelp = `Runs the benchmark matrix on a Slurm cluster as one job array, each task running this same runner
binary on its node into a shared results directory (DIR/tasks/<task id>/, appended per launch as in
runner bench; a requeued task resumes it). By default one task per engine variant (engines then run on
different nodes or cards: the report says so); with --slices N, N tasks that each run every variant
interleaved on their own slice of cards, so engines are compared on the same card (blocked by card over
all slices). A CUDA task gets --gres=gpu:N (--gpus-per-task), a CPU task no gres. Slurm does the
placement, retries and accounting; runner slurm status and runner report DIR read back what has
finished, also while the array runs and after a task failed (a failed, cancelled, timed-out or
preempted task is a failed row; its finished launches are kept).

One-time cluster requirements:
  - the results directory, the model directory, the runner binary and the directory you submit from
    (tasks start there) on a filesystem shared by the login node and every compute node (same paths);
  - the engines in a shared bin dir (--bin-dir, default bin/ or $CIB_BIN_DIR) or on every node's PATH
    as cib-NAME; CUDA drivers on the GPU nodes, and gres/gpu configured for --gpus-per-task;
  - sbatch, and sacct (or scontrol where accounting is off) on the node you run status and report from.

EXAMPLES:
   runner slurm submit --config configs/decode.yaml --partition h200 --gpus-per-task 1 --time 2:00:00 --results /shared/cib/decode
   runner slurm submit --config configs/decode.yaml --partition h200 --slices 4 --gpus-per-task 2 --sbatch-arg=--requeue
   runner slurm submit --config configs/smoke.yaml --partition cpu --cpus-per-task 4 --dry-run
   runner slurm status /shared/cib/decode
   runner report /shared/cib/decode
   runner slurm resubmit /shared/cib/decode`

func slurmCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:        "slurm",
		Usage:       "run the benchmark matrix on a Slurm cluster as one job array, and follow it",
		Description: slurmHelp,
		Subcommands: []*ucli.Command{slurmSubmitCommand(e), slurmStatusCommand(e), slurmResubmitCommand(e), slurmTaskCommand(e)},
	}
}

func slurmSubmitCommand(e *env) *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "benchmark config `FILE` (YAML); default: the embedded smoke config"},
		&ucli.StringFlag{Name: "engines", Aliases: []string{"e"}, Usage: "comma-separated engine variants (one array task each)"},
		binDirFlag(e),
		&ucli.StringFlag{Name: "partition", Required: true, Usage: "Slurm `PARTITION` the tasks run in"},
		&ucli.IntFlag{Name: "slices", Usage: "0: one task per engine variant (engines compared across nodes); N: N tasks, each running every variant interleaved on its own slice of cards, so engines are compared on the same card (statistics blocked by card over all slices); --launches is then per task"},
		&ucli.IntFlag{Name: "gpus-per-task", Value: 1, Usage: "cards per task (--gres=gpu:N) of a CUDA benchmark; with N > 1 a task runs its engine on all N (runner bench --gpus)"},
		&ucli.IntFlag{Name: "cpus-per-task", Usage: "CPUs per task (--cpus-per-task; default: Slurm's)"},
		&ucli.StringFlag{Name: "time", Usage: "time limit per task (--time, e.g. 2:00:00)"},
		&ucli.StringFlag{Name: "account", Usage: "Slurm account (--account)"},
		&ucli.StringSliceFlag{Name: "sbatch-arg", Usage: "further sbatch option for every task, e.g. --sbatch-arg=--requeue --sbatch-arg=--exclusive (repeatable)"},
		&ucli.StringFlag{Name: "results", Usage: "results `DIR` on the shared filesystem (must not exist yet); default results/<timestamp>-<name>-slurm"},
		&ucli.StringFlag{Name: "runner", Usage: "runner binary the tasks run (absolute `PATH` on every node); default: this one"},
		&ucli.BoolFlag{Name: "dry-run", Usage: "print the batch script and submit nothing (nothing is written)"},
		&ucli.StringFlag{Name: "model", Usage: "override the config's model `DIR`"},
		&ucli.StringFlag{Name: "device", Usage: "override the device (cpu, cuda:N)"},
		&ucli.StringFlag{Name: "dtype", Usage: "override the dtype (f32, f16, bf16)"},
		&ucli.IntFlag{Name: "launches", DefaultText: "the config's", Usage: "override launches per engine (K), exactly"},
		&ucli.IntFlag{Name: "iterations", DefaultText: "the config's", Usage: "override timed iterations per launch (M)"},
		&ucli.IntFlag{Name: "warmup", DefaultText: "the config's", Usage: "override warm-up iterations per launch"},
		&ucli.StringFlag{Name: "baseline", Usage: "engine label the merged report compares the others with (default: the first)"},
	}
	return &ucli.Command{
		Name:  "submit",
		Usage: "turn the benchmark matrix into one sbatch job array (a task per engine variant, or --slices N tasks running every variant) and submit it",
		UsageText: "runner slurm submit --partition P [flags]\n\nEXAMPLES:\n" +
			"   runner slurm submit --config configs/decode.yaml --partition h200 --gpus-per-task 1 --time 2:00:00 --results /shared/cib/decode\n" +
			"   runner slurm submit --engines reference:threads=1,reference:threads=4 --partition cpu --cpus-per-task 4 --dry-run",
		Flags:  append(flags, overrideFlags()...),
		Action: func(c *ucli.Context) error { return slurmSubmit(c, e) },
	}
}

func slurmSubmit(c *ucli.Context, e *env) error {
	if c.Args().Len() > 0 {
		return usageError("slurm submit: unexpected argument %q", c.Args().First())
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	kind, _, err := protocol.ParseDevice(cfg.Device)
	if err != nil {
		return usageError("device %q: %v", cfg.Device, err)
	}
	gpus := c.Int("gpus-per-task")
	switch {
	case gpus < 0:
		return usageError("--gpus-per-task %d: want 0 or more", gpus)
	case kind != "cuda" && c.IsSet("gpus-per-task") && gpus > 0:
		return usageError("--gpus-per-task %d: the benchmark runs on %s, not a GPU", gpus, cfg.Device)
	case kind != "cuda":
		gpus = 0 // CPU tasks ask for no gres
	case gpus == 0:
		return usageError("device %s with --gpus-per-task 0: a CUDA task needs a card", cfg.Device)
	}
	if n := c.Int("cpus-per-task"); n < 0 {
		return usageError("--cpus-per-task %d: want 1 or more", n)
	}
	if n := c.Int("slices"); n < 0 {
		return usageError("--slices %d: want 0 (a task per engine) or more", n)
	}
	runner := c.String("runner")
	if runner == "" {
		if runner, err = os.Executable(); err != nil {
			return fmt.Errorf("slurm submit: find this runner's path (give --runner): %w", err)
		}
	}
	if runner, err = filepath.Abs(runner); err != nil {
		return fmt.Errorf("slurm submit: --runner: %w", err)
	}
	if st, err := os.Stat(runner); err != nil || st.Mode()&0o111 == 0 || st.IsDir() {
		return usageError("--runner %s: not an executable file", runner)
	}
	// The engines are checked here (info, device, dtype, options), so a typo
	// fails now rather than in every task.
	variants, err := resolveVariants(c.Context, e, c.String("bin-dir"), c.IsSet("bin-dir"), cfg)
	if err != nil {
		return err
	}
	binDir := ""
	if v := c.String("bin-dir"); v != "" {
		if st, err := os.Stat(v); err == nil && st.IsDir() {
			if binDir, err = filepath.Abs(v); err != nil {
				return fmt.Errorf("slurm submit: --bin-dir: %w", err)
			}
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("slurm submit: working directory: %w", err)
	}
	created := time.Now().UTC()
	resultsDir := c.String("results")
	if resultsDir == "" {
		resultsDir = filepath.Join("results", created.Format("20060102-150405")+"-"+safeName(cfg.Name)+"-slurm")
	}
	if resultsDir, err = filepath.Abs(resultsDir); err != nil {
		return fmt.Errorf("slurm submit: --results: %w", err)
	}
	if ents, err := os.ReadDir(resultsDir); err == nil && len(ents) > 0 {
		return usageError("--results %s exists and is not empty (an array's directory is its own; to run failed tasks again: runner slurm resubmit %s)", resultsDir, resultsDir)
	}
	plan := &slurm.Plan{
		Name: safeName(cfg.Name), Results: resultsDir, WorkDir: wd, Runner: runner, BinDir: binDir, Device: cfg.Device,
		Partition: c.String("partition"), Account: c.String("account"), Time: c.String("time"),
		GPUsPerTask: gpus, CPUsPerTask: c.Int("cpus-per-task"), Extra: c.StringSlice("sbatch-arg"), Baseline: cfg.Baseline, Equivalence: cfg.Equivalence, CreatedAt: created,
		Slices: c.Int("slices"),
	}
	taskConfig := func(i int) string { return filepath.Join(slurm.TasksDir, strconv.Itoa(i)+".yaml") }
	if plan.Slices > 0 {
		all := slurm.Task{}
		for _, v := range variants {
			all.Engines, all.Specs = append(all.Engines, v.Label), append(all.Specs, v.Spec)
		}
		for i := range plan.Slices {
			t := all
			t.ID, t.Config = i, taskConfig(i)
			plan.Tasks = append(plan.Tasks, t)
		}
	} else {
		for i, v := range variants {
			plan.Tasks = append(plan.Tasks, slurm.Task{ID: i, Engines: []string{v.Label}, Specs: []config.EngineSpec{v.Spec}, Config: taskConfig(i)})
		}
	}
	if c.Bool("dry-run") {
		script, err := slurm.Script(plan, nil)
		if err != nil {
			return withCode(ExitUsage, err)
		}
		_, err = e.stdout.Write(script)
		return err
	}
	if _, err := slurm.Script(plan, nil); err != nil { // refused before anything is written
		return withCode(ExitUsage, err)
	}

	// The model is made (or hashed) once, here: tasks would race to
	// synthesize it. Tasks read it by absolute path.
	model, err := workload.PrepareModel(c.Context, cfg, e.stderr, modelcfg.HashCachePath(e.getenv))
	if errors.Is(err, workload.ErrNoModel) {
		return withCode(ExitUsage, err)
	} else if err != nil {
		return err
	}
	cfg.Model, cfg.Synth = model.Dir, nil
	cases, err := workload.Cases(cfg, model.Config)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	req := protocol.Request{
		Protocol: protocol.Version, Model: model.Dir, Device: cfg.Device, DType: cfg.DType, Seed: cfg.Seed,
		Warmup: cfg.Warmup, Iterations: cfg.Iterations, Cases: cases,
	}
	envRec := envinfo.Collect(c.Context, e.args, wd, e.getenv("CIB_GIT_COMMIT"))
	envRec.Model = model.Info
	envRec.Telemetry = "per task (see each task's environment.json)"
	for _, v := range variants {
		envRec.Engines[v.Label] = *v.Info
		envRec.Binaries[v.Label] = v.Path
	}
	_, statErr := os.Stat(resultsDir)
	existed := statErr == nil
	for _, d := range []string{resultsDir, filepath.Join(resultsDir, slurm.TasksDir), filepath.Join(resultsDir, slurm.LogsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("slurm submit: %w", err)
		}
	}
	full, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	writes := []func() error{
		func() error { return results.WriteJSON(resultsDir, results.EnvFile, envRec) },
		func() error { return results.WriteJSON(resultsDir, "request.json", req) },
		func() error { return results.WriteFile(resultsDir, "slurm-config.yaml", full) },
	}
	for _, t := range plan.Tasks {
		one := *cfg
		one.Engines = t.Specs
		if !slices.Contains(t.Engines, one.Baseline) {
			one.Baseline = ""
		}
		b, err := yaml.Marshal(&one)
		if err != nil {
			return fmt.Errorf("encode task %d config: %w", t.ID, err)
		}
		name := t.Config
		writes = append(writes, func() error {
			return results.WriteFile(filepath.Join(resultsDir, filepath.Dir(name)), filepath.Base(name), b)
		})
	}
	writes = append(writes, plan.Write)
	for _, w := range writes {
		if err := w(); err != nil {
			if !existed { // nothing submitted yet: leave no half-made directory behind
				os.RemoveAll(resultsDir)
			}
			return fmt.Errorf("slurm submit: %w", err)
		}
	}
	return submitTasks(c, e, plan, nil)
}

// submitTasks writes the batch script for the given tasks (all when ids is
// empty), submits it and records the job in the plan.
func submitTasks(c *ucli.Context, e *env, plan *slurm.Plan, ids []int) error {
	if len(ids) == 0 {
		for _, t := range plan.Tasks {
			ids = append(ids, t.ID)
		}
	}
	script, err := slurm.Script(plan, ids)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if err := results.WriteFile(plan.Results, slurm.ScriptFile, script); err != nil {
		return fmt.Errorf("slurm submit: %w", err)
	}
	path := filepath.Join(plan.Results, slurm.ScriptFile)
	job, err := slurm.Submit(c.Context, slurm.RunExec(e.environ), path)
	if err != nil {
		return fmt.Errorf("%w (the plan and script are in %s; submit again with runner slurm resubmit %s)", err, plan.Results, plan.Results)
	}
	plan.Jobs = append(plan.Jobs, slurm.Job{ID: job, Tasks: ids, SubmittedAt: time.Now().UTC()})
	if err := plan.Write(); err != nil {
		return fmt.Errorf("slurm job %s submitted, but recording it failed (runner slurm status will not find it): %w", job, err)
	}
	fmt.Fprintf(e.stdout, "submitted job array %s: %d task(s) of benchmark %s, results in %s\n", job, len(ids), plan.Name, plan.Results)
	for _, id := range ids {
		fmt.Fprintf(e.stdout, "  task %d: %s\n", id, plan.Tasks[id].Label())
	}
	fmt.Fprintf(e.stdout, "follow it with: runner slurm status %s; merge what has finished with: runner report %s\n", plan.Results, plan.Results)
	return nil
}

func slurmResubmitCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "resubmit",
		Usage:     "submit again the tasks of an array that failed, were cancelled or never ran; each resumes its recorded launches",
		ArgsUsage: "DIR",
		UsageText: "runner slurm resubmit [flags] DIR\n\nEXAMPLE:\n   runner slurm resubmit --tasks 2 /shared/cib/decode",
		Flags:     []ucli.Flag{&ucli.StringFlag{Name: "tasks", Usage: "task ids to submit (`LIST`: 1,3); default: every task that is not completed or still queued/running"}},
		Action: func(c *ucli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("slurm resubmit: want one array results directory")
			}
			plan, err := slurm.ReadPlan(c.Args().First())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			var ids []int
			if v := c.String("tasks"); v != "" {
				for _, f := range strings.Split(v, ",") {
					id, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil {
						return usageError("--tasks %q: %q is not a task id", v, f)
					}
					if _, err := plan.Task(id); err != nil {
						return withCode(ExitUsage, err)
					}
					ids = append(ids, id)
				}
			} else {
				states, err := slurm.Refresh(c.Context, slurm.RunExec(e.environ), plan, time.Now().UTC())
				if err != nil {
					return fmt.Errorf("slurm resubmit: cannot tell which tasks finished (give --tasks): %w", err)
				}
				for _, t := range plan.Tasks {
					if s := states[t.ID]; s.State != "COMPLETED" && !s.Active() {
						ids = append(ids, t.ID)
					}
				}
				if len(ids) == 0 {
					fmt.Fprintf(e.stdout, "every task of %s is completed, queued or running: nothing to submit\n", plan.Results)
					return nil
				}
			}
			return submitTasks(c, e, plan, ids)
		},
	}
}

func slurmTaskCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "task",
		Usage:     "run one task of an array (what the batch script of runner slurm submit calls on the node)",
		ArgsUsage: "DIR",
		UsageText: "runner slurm task DIR   (inside a Slurm array task: SLURM_ARRAY_TASK_ID picks the engine)\n\nEXAMPLE:\n   SLURM_ARRAY_TASK_ID=0 runner slurm task /shared/cib/decode",
		Hidden:    true,
		Action:    func(c *ucli.Context) error { return slurmTask(c, e) },
	}
}

// slurmTask runs task SLURM_ARRAY_TASK_ID of the plan in DIR as a runner
// bench writing under DIR/tasks/<id>/: a new results directory, or, when
// Slurm requeued the task, the one its earlier attempt left (runner bench
// --resume: recorded launches count as done). A multi-card task cannot
// resume (runner bench --gpus), so it starts a new directory; the report
// merges every attempt.
func slurmTask(c *ucli.Context, e *env) error {
	if c.Args().Len() != 1 {
		return usageError("slurm task: want the array results directory")
	}
	plan, err := slurm.ReadPlan(c.Args().First())
	if err != nil {
		return withCode(ExitUsage, err)
	}
	v := e.getenv("SLURM_ARRAY_TASK_ID")
	id, err := strconv.Atoi(v)
	if err != nil {
		return usageError("slurm task: SLURM_ARRAY_TASK_ID=%q: this runs inside a task of the array runner slurm submit made", v)
	}
	task, err := plan.Task(id)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	dir := plan.TaskDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("slurm task %d: %w", id, err)
	}
	args := []string{"runner", "bench"}
	if plan.BinDir != "" {
		args = append(args, "--bin-dir", plan.BinDir)
	}
	attempts, err := taskAttempts(dir)
	if err != nil {
		return fmt.Errorf("slurm task %d: %w", id, err)
	}
	multi := plan.GPUsPerTask > 0
	if len(attempts) > 0 && !multi {
		last := attempts[len(attempts)-1]
		fmt.Fprintf(e.stderr, "slurm task %d (%s): resuming %s\n", id, task.Label(), last)
		args = append(args, "--resume", last)
	} else {
		if len(attempts) > 0 {
			fmt.Fprintf(e.stderr, "slurm task %d (%s): a GPU task cannot resume its earlier attempt (%s, kept and merged); starting a new one\n", id, task.Label(), attempts[len(attempts)-1])
		}
		args = append(args, "--config", filepath.Join(plan.Results, task.Config), "--out", dir)
		if multi {
			list, err := slurmGPUs(e.getenv, nvmlCount())
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("slurm task %d: %w", id, err))
			}
			args = append(args, "--gpus", list)
		}
	}
	fmt.Fprintf(e.stderr, "slurm task %d (%s) on %s: %s\n", id, task.Label(), e.getenv("SLURMD_NODENAME"), strings.Join(args, " "))
	if code := Run(c.Context, args, e.stdin, e.stdout, e.stderr, e.environ); code != ExitOK {
		return withCode(code, fmt.Errorf("slurm task %d (%s): runner bench exited %d", id, task.Label(), code))
	}
	return nil
}

// taskAttempts lists the results directories of a task, oldest first (their
// names start with the timestamp).
func taskAttempts(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []string
	for _, d := range ents {
		if d.IsDir() && fileExists(filepath.Join(dir, d.Name(), ConfigFile)) {
			out = append(out, filepath.Join(dir, d.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// nvmlCount is the number of cards NVML sees in this job, -1 when unknown.
func nvmlCount() int {
	t, err := telemetry.OpenNVML("")
	if err != nil {
		return -1
	}
	defer t.Close()
	return t.Count()
}

// slurmGPUs is the --gpus list of a multi-card task: the cards Slurm gave
// the job (SLURM_JOB_GPUS, the node's indices), numbered as NVML numbers
// them. Where the job sees only its own cards (device cgroups: NVML counts
// exactly as many as were allocated), that is "all"; otherwise the node's
// indices are NVML's.
func slurmGPUs(getenv func(string) string, nvmlCount int) (string, error) {
	alloc := getenv("SLURM_JOB_GPUS")
	if alloc == "" {
		alloc = getenv("SLURM_STEP_GPUS")
	}
	if alloc == "" {
		return "", fmt.Errorf("no GPU allocated to this job (SLURM_JOB_GPUS is empty): is gres/gpu configured on the partition?")
	}
	n := len(strings.Split(alloc, ","))
	if nvmlCount == n {
		return "all", nil
	}
	return alloc, nil
}

func slurmStatusCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "status",
		Usage:     "show each task of an array: Slurm's state, node, exit code, launches recorded",
		ArgsUsage: "DIR",
		UsageText: "runner slurm status [flags] DIR\n\nEXAMPLE:\n   runner slurm status /shared/cib/decode",
		Flags:     []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print the tasks as JSON"}},
		Action: func(c *ucli.Context) error {
			if c.Args().Len() != 1 {
				return usageError("slurm status: want one array results directory")
			}
			plan, err := slurm.ReadPlan(c.Args().First())
			if err != nil {
				return withCode(ExitUsage, err)
			}
			states, qerr := slurm.Refresh(c.Context, slurm.RunExec(e.environ), plan, time.Now().UTC())
			if states == nil {
				return qerr
			}
			rows := taskRows(plan, states)
			if c.Bool("json") {
				b, err := json.MarshalIndent(rows, "", "  ")
				if err != nil {
					return fmt.Errorf("encode tasks: %w", err)
				}
				fmt.Fprintf(e.stdout, "%s\n", b)
			} else {
				printTaskRows(e.stdout, plan, rows)
			}
			if qerr != nil {
				fmt.Fprintf(e.stderr, "note: %v (states shown are the last ones seen)\n", qerr)
			}
			return nil
		},
	}
}

// taskRow is one task in runner slurm status.
type taskRow struct {
	slurm.State
	Engine string `json:"engine"`
	// OK and Failed count the launches recorded in the task's runs.jsonl
	// files; Attempts the results directories it wrote.
	OK       int `json:"launches_ok"`
	Failed   int `json:"launches_failed"`
	Attempts int `json:"attempts"`
}

func taskRows(plan *slurm.Plan, states slurm.States) []taskRow {
	var rows []taskRow
	for _, t := range plan.Tasks {
		r := taskRow{State: states[t.ID], Engine: t.Label()}
		r.Task = t.ID
		recs, _, _ := readTask(plan, t.ID)
		for _, rec := range recs {
			if rec.Status == results.StatusOK {
				r.OK++
			} else {
				r.Failed++
			}
		}
		attempts, _ := taskAttempts(plan.TaskDir(t.ID))
		r.Attempts = len(attempts)
		rows = append(rows, r)
	}
	return rows
}

func printTaskRows(w io.Writer, plan *slurm.Plan, rows []taskRow) {
	var jobs []string
	for _, j := range plan.Jobs {
		jobs = append(jobs, j.ID)
	}
	fmt.Fprintf(w, "array %s: benchmark %s, partition %s, job(s) %s, %d task(s)\n", plan.Results, plan.Name, plan.Partition, orNone(strings.Join(jobs, ",")), len(plan.Tasks))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tENGINE\tSTATE\tNODE\tEXIT\tLAUNCHES OK\tFAILED\tJOB\tSOURCE")
	for _, r := range rows {
		state := r.State.State
		if r.Reason != "" && r.State.State == "PENDING" {
			state += " (" + r.Reason + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Task, r.Engine, state, orNone(r.Node), orNone(r.ExitCode), r.OK, r.Failed, orNone(r.Job), r.Source)
	}
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readTask reads every launch task id recorded, over all its attempts, and
// the environment record of its first attempt (nil when none).
func readTask(plan *slurm.Plan, id int) ([]results.Record, *envinfo.Env, []string) {
	attempts, err := taskAttempts(plan.TaskDir(id))
	var warnings []string
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("slurm task %d: %v", id, err))
	}
	var recs []results.Record
	var env *envinfo.Env
	for _, a := range attempts {
		if env == nil {
			var e envinfo.Env
			if err := results.ReadJSON(a, results.EnvFile, &e); err == nil {
				env = &e
			}
		}
		rs, ws, err := results.ReadRuns(filepath.Join(a, results.RunsFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("slurm task %d: %s: %v", id, a, err))
			continue
		}
		for _, w := range ws {
			warnings = append(warnings, fmt.Sprintf("slurm task %d: %s: %s", id, a, w))
		}
		recs = append(recs, rs...)
	}
	return recs, env, warnings
}

// reportArray is runner report DIR on a job array's directory: it merges
// the launches every task recorded so far (also of tasks still running),
// adds a failed row for every task Slurm says failed, was cancelled, timed
// out or was preempted, and writes the reports into DIR.
func reportArray(c *ucli.Context, e *env, dir string) error {
	plan, err := slurm.ReadPlan(dir)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	states, qerr := slurm.Refresh(c.Context, slurm.RunExec(e.environ), plan, time.Now().UTC())
	if states == nil {
		return qerr
	}
	if qerr != nil {
		fmt.Fprintf(e.stderr, "note: %v (using the task states last seen)\n", qerr)
	}
	var env envinfo.Env
	if err := results.ReadJSON(dir, results.EnvFile, &env); err != nil {
		return err
	}
	var req protocol.Request
	if err := results.ReadJSON(dir, "request.json", &req); err != nil {
		return err
	}
	var recs []results.Record
	var warnings, nodes, labels, cardNames []string
	perEngine := map[string]int{}
	gpus := map[string]bool{}
	env.GPUs = nil
	add := func(r results.Record) {
		r.Launch, r.Order = perEngine[r.Engine], len(recs)
		perEngine[r.Engine]++
		recs = append(recs, r)
	}
	for _, t := range plan.Tasks {
		for _, l := range t.Engines {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		trecs, tenv, ws := readTask(plan, t.ID)
		warnings = append(warnings, ws...)
		st := states[t.ID]
		node := st.Node
		if tenv != nil {
			if s := tenv.Slurm; s != nil && s.Node != "" {
				node = s.Node
			}
			for _, l := range t.Engines {
				if info, ok := tenv.Engines[l]; ok {
					env.Engines[l], env.Binaries[l] = info, tenv.Binaries[l]
				}
			}
			for _, g := range append(tenv.GPUs, tenv.GPU) {
				if len(g) > 0 && !gpus[string(g)] {
					gpus[string(g)] = true
					env.GPUs = append(env.GPUs, g)
				}
			}
			if len(env.GPU) == 0 {
				env.GPU, env.Bandwidth, env.Telemetry = tenv.GPU, tenv.Bandwidth, tenv.Telemetry
			}
		}
		if node != "" && !slices.Contains(nodes, node) {
			nodes = append(nodes, node)
		}
		ok := 0
		for _, r := range trecs {
			if r.Status == results.StatusOK {
				ok++
			}
			// A card is a card of a node: index 0 of two nodes are two
			// cards. Slice tasks run every engine on their cards, so the
			// statistics block by card over all slices; a task per engine
			// shares no card with another engine, so there is no card to
			// block by.
			if r.Card != nil {
				if plan.Slices > 0 {
					id := node + "/" + r.Card.UUID
					if r.Card.UUID == "" {
						id = node + "/" + strconv.Itoa(r.Card.Index)
					}
					k := slices.Index(cardNames, id)
					if k < 0 {
						k, cardNames = len(cardNames), append(cardNames, id)
					}
					card := *r.Card
					card.Index = k
					r.Card = &card
				} else {
					r.Card = nil
				}
			}
			add(r)
		}
		line := fmt.Sprintf("slurm task %d (%s): %s on %s, %d launch(es) recorded (%d ok)", t.ID, t.Label(), st.State, orNone(node), len(trecs), ok)
		switch {
		case st.Failed():
			for i, l := range t.Engines { // the task's failed row, under each engine it ran
				add(results.Record{
					Schema: results.Schema, Engine: l, Spec: t.Specs[i], Status: results.StatusFailed, Exit: -1,
					Error: fmt.Sprintf("slurm task %d (job %s) ended %s (exit %s) on %s after %d recorded launch(es); they are kept above",
						t.ID, st.Job, st.State, orNone(st.ExitCode), orNone(node), len(trecs)),
					StderrTail: logTail(plan.LogPath(st.Job, t.ID), 2000),
				})
			}
		case st.Active():
			line += "; still " + st.State + ": its launches so far are included"
		case st.State == slurm.Unknown:
			line += " (Slurm has no state for it: " + st.Source + ")"
		}
		warnings = append(warnings, line)
	}
	if plan.Slices > 0 {
		for i, n := range cardNames {
			warnings = append(warnings, fmt.Sprintf("card %d of the comparisons is %s (node/UUID)", i, n))
		}
	} else if len(nodes) > 1 || len(env.GPUs) > 1 {
		warnings = append(warnings, fmt.Sprintf("each engine ran in its own task, on different nodes (%s) or cards (%d cards): comparisons between engines include node-to-node and card-to-card differences (runner slurm submit --slices N compares them on the same cards)",
			strings.Join(nodes, ", "), len(env.GPUs)))
	}
	if len(env.GPUs) == 1 {
		env.GPUs = nil
	}
	var jobs []string
	for _, j := range plan.Jobs {
		jobs = append(jobs, j.ID)
	}
	env.Host = strings.Join(nodes, ",")
	env.Slurm = &envinfo.Slurm{JobID: strings.Join(jobs, ","), Node: strings.Join(nodes, ","), Partition: plan.Partition}
	if len(plan.Jobs) > 0 {
		env.Slurm.ArrayJobID = plan.Jobs[len(plan.Jobs)-1].ID
	}
	if len(recs) == 0 {
		return fmt.Errorf("report %s: %w yet: no task has finished a launch (runner slurm status %s)", dir, results.ErrNoRuns, dir)
	}
	// Each task prepared its engines (ENGINE prepare) in its own directory: the merged report gathers them.
	var preps []results.Preparation
	for _, t := range plan.Tasks {
		attempts, _ := taskAttempts(plan.TaskDir(t.ID))
		for _, a := range attempts {
			ps, ws := results.ReadPreparations(a)
			preps = append(preps, ps...)
			warnings = append(warnings, ws...)
		}
	}
	var prev analysis.Summary
	if err := results.ReadJSON(dir, results.SummaryFile, &prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.stderr, "note: ignoring unreadable previous summary: %v\n", err)
	}
	plugs, err := newPlugins(c, e, nil, config.Prices{}, &prev)
	if err != nil {
		return err
	}
	sum, err := writeReports(dir, plan.Name, env, req, labels, plan.Baseline, analysis.Options{Equivalence: plan.Equivalence}, recs, preps, warnings, plugs)
	if err != nil {
		return err
	}
	return writeFormat(e.stdout, c.String("format"), sum)
}

// logTail is the last n bytes of a task's Slurm output ("" when unreadable).
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
