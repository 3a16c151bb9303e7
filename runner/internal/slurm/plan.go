// Package slurm runs a benchmark matrix as one Slurm job array: the plan of
// tasks written at submit time (one task per engine variant, or tasks that
// each run every variant on their own slice of cards), the batch script every task runs, and the task states
// Slurm reports (sacct, or scontrol where accounting is off). Slurm does the
// placement, retries and accounting; this package only describes the work
// and reads back what Slurm says happened.
package slurm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
)

// Schema is the version of PlanFile.
const Schema = 1

// Files and directories of an array's results directory. Each task writes a
// complete `runner bench` results directory under TasksDir/<task id>/ (one
// per attempt: a requeued task resumes its last one), Slurm writes each
// task's output to LogsDir/<job id>_<task id>.out.
const (
	PlanFile   = "slurm.json"
	StatesFile = "slurm-states.json"
	ScriptFile = "slurm.sbatch"
	TasksDir   = "tasks"
	LogsDir    = "logs"
)

// Plan is what `runner slurm submit` decided: the tasks of the array and how
// each runs. It is written to PlanFile before sbatch is called, and each
// submitted job is appended to Jobs.
type Plan struct {
	Schema int    `json:"schema"`
	Name   string `json:"name"`
	// Results is the array's results directory (absolute, on the shared
	// filesystem); WorkDir is where tasks run (model paths relative to it).
	Results string `json:"results"`
	WorkDir string `json:"work_dir"`
	// Runner is the absolute path of the runner binary every task runs;
	// BinDir the engines' directory (absolute, "" to search PATH only).
	Runner string `json:"runner"`
	BinDir string `json:"bin_dir,omitempty"`
	// Device is the config's device (cpu, cuda:0): a cuda benchmark asks
	// for GPUsPerTask cards per task.
	Device      string `json:"device"`
	Partition   string `json:"partition"`
	Account     string `json:"account,omitempty"`
	Time        string `json:"time,omitempty"`
	GPUsPerTask int    `json:"gpus_per_task"`
	CPUsPerTask int    `json:"cpus_per_task,omitempty"`
	// Extra are further sbatch options, one "--key=value" each.
	Extra []string `json:"extra,omitempty"`
	// Slices is 0 for one task per engine variant, or the number of tasks
	// that each run every variant interleaved on their own card slice.
	Slices int `json:"slices,omitempty"`
	// Baseline is the engine label the merged report compares with.
	Baseline string `json:"baseline,omitempty"`
	// Equivalence is the config's equivalence margin for the merged report (0: none).
	Equivalence float64   `json:"equivalence,omitempty"`
	Tasks       []Task    `json:"tasks"`
	Jobs        []Job     `json:"jobs,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Task is one array task: the engine variants it runs (one, or every
// variant of the matrix for a slice task) with the config it runs.
type Task struct {
	// ID is the array task id (SLURM_ARRAY_TASK_ID), its index in Tasks.
	ID int `json:"id"`
	// Engines are the variants' labels, Specs the variants.
	Engines []string            `json:"engines"`
	Specs   []config.EngineSpec `json:"specs"`
	// Config is the task's config file, relative to Results.
	Config string `json:"config"`
}

// Label names the task's variants ("candle", or "candle burn" for a slice
// task running both).
func (t *Task) Label() string { return strings.Join(t.Engines, " ") }

// Job is one sbatch submission of some of the plan's tasks.
type Job struct {
	// ID is the array job id (SLURM_ARRAY_JOB_ID).
	ID          string    `json:"id"`
	Tasks       []int     `json:"tasks"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// TaskDir is where task id writes its results directories.
func (p *Plan) TaskDir(id int) string {
	return filepath.Join(p.Results, TasksDir, strconv.Itoa(id))
}

// LogPath is the Slurm output file of task id in job jobID.
func (p *Plan) LogPath(jobID string, id int) string {
	return filepath.Join(p.Results, LogsDir, fmt.Sprintf("%s_%d.out", jobID, id))
}

// Task returns the task with array id id.
func (p *Plan) Task(id int) (*Task, error) {
	if id < 0 || id >= len(p.Tasks) {
		return nil, fmt.Errorf("slurm plan %s: no task %d (%d tasks)", p.Results, id, len(p.Tasks))
	}
	return &p.Tasks[id], nil
}

// LastJob returns the latest job that ran task id, or nil when none did.
func (p *Plan) LastJob(id int) *Job {
	for i := len(p.Jobs) - 1; i >= 0; i-- {
		for _, t := range p.Jobs[i].Tasks {
			if t == id {
				return &p.Jobs[i]
			}
		}
	}
	return nil
}

// IsArray reports whether dir is the results directory of a job array.
func IsArray(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, PlanFile))
	return err == nil
}

// ReadPlan reads dir's PlanFile.
func ReadPlan(dir string) (*Plan, error) {
	b, err := os.ReadFile(filepath.Join(dir, PlanFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: not a Slurm array's results directory (no %s; made by runner slurm submit)", dir, PlanFile)
	} else if err != nil {
		return nil, fmt.Errorf("read slurm plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, PlanFile), err)
	}
	if p.Schema != Schema {
		return nil, fmt.Errorf("%s: plan schema %d, this runner reads %d", filepath.Join(dir, PlanFile), p.Schema, Schema)
	}
	for i, t := range p.Tasks {
		if t.ID != i {
			return nil, fmt.Errorf("%s: task %d has id %d", filepath.Join(dir, PlanFile), i, t.ID)
		}
	}
	return &p, nil
}

// Write saves the plan to its results directory atomically.
func (p *Plan) Write() error {
	p.Schema = Schema
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode slurm plan: %w", err)
	}
	return writeFile(p.Results, PlanFile, append(b, '\n'))
}

// writeFile writes dir/name through a temp file and a rename.
func writeFile(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
