// Package envinfo records the environment a benchmark ran in: host, OS, CPU,
// toolchain, git commit, exact command, engines, model and GPU. Every result
// carries one, and `runner compare` diffs two.
package envinfo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
)

// Env is the environment record (environment.json).
type Env struct {
	CreatedAt time.Time `json:"created_at"`
	Host      string    `json:"host"`
	OS        string    `json:"os"`
	Kernel    string    `json:"kernel"`
	CPU       string    `json:"cpu"`
	CPUs      int       `json:"cpus"`
	// CPUPower is the host's CPU power management when the run started.
	CPUPower  CPUPower `json:"cpu_power"`
	GoVersion string   `json:"go_version"`
	GitCommit string   `json:"git_commit"`
	GitDirty  bool     `json:"git_dirty"`
	// Command is the exact command line.
	Command []string `json:"command"`
	// WorkDir is where the command ran.
	WorkDir string `json:"work_dir"`
	// Engines maps each variant label to its `info`, and Binaries to its path.
	Engines  map[string]protocol.Info `json:"engines"`
	Binaries map[string]string        `json:"binaries"`
	Model    Model                    `json:"model"`
	// GPU is the telemetry package's device record; absent without NVML.
	GPU json.RawMessage `json:"gpu,omitempty"`
	// Telemetry says whether GPU telemetry was on, and why not.
	Telemetry string `json:"telemetry"`
	// Bandwidth is the measured device memory bandwidth (runner gpu probe),
	// absent when never measured on this GPU.
	Bandwidth *roofline.Measurement `json:"measured_bandwidth,omitempty"`
	// GPUs are the device records of every card of a multi-GPU run (runner
	// bench --gpus), in the order given; GPU is then the first of them.
	// GPUBandwidth is each card's measured bandwidth, by UUID, where probed.
	GPUs         []json.RawMessage                `json:"gpus,omitempty"`
	GPUBandwidth map[string]*roofline.Measurement `json:"measured_bandwidth_by_gpu,omitempty"`
	// Slurm is the Slurm job the benchmark ran in (a task of runner slurm
	// submit); absent outside Slurm.
	Slurm *Slurm `json:"slurm,omitempty"`
}

// Slurm identifies a Slurm job from the variables slurmd sets for it.
type Slurm struct {
	// JobID is SLURM_JOB_ID; an array task also has ArrayJobID (the id
	// shared by the array) and ArrayTaskID.
	JobID       string `json:"job_id"`
	ArrayJobID  string `json:"array_job_id,omitempty"`
	ArrayTaskID string `json:"array_task_id,omitempty"`
	// Node is SLURMD_NODENAME, the node the job ran on.
	Node      string `json:"node"`
	Partition string `json:"partition,omitempty"`
	Cluster   string `json:"cluster,omitempty"`
	// GPUs is SLURM_JOB_GPUS, the node's GPU indices allocated to the job.
	GPUs string `json:"gpus,omitempty"`
	// Restarts is SLURM_RESTART_COUNT: how often the job was requeued.
	Restarts string `json:"restarts,omitempty"`
}

// SlurmFrom reads the Slurm job from the environment (getenv), or returns nil
// outside a Slurm job.
func SlurmFrom(getenv func(string) string) *Slurm {
	id := getenv("SLURM_JOB_ID")
	if id == "" {
		return nil
	}
	return &Slurm{
		JobID: id, ArrayJobID: getenv("SLURM_ARRAY_JOB_ID"), ArrayTaskID: getenv("SLURM_ARRAY_TASK_ID"),
		Node: getenv("SLURMD_NODENAME"), Partition: getenv("SLURM_JOB_PARTITION"), Cluster: getenv("SLURM_CLUSTER_NAME"),
		GPUs: getenv("SLURM_JOB_GPUS"), Restarts: getenv("SLURM_RESTART_COUNT"),
	}
}

// CPUPower is how the host's CPUs idle and clock. It matters for engines whose
// decode is host-bound (one thread launching kernel after kernel, a host sync
// per token): on an otherwise idle VM such a process loses time to vCPU
// idle/wake-up (candle on Llama-3-8B, results/h100-2026-11-28-s3). Fields are
// empty where the kernel exposes nothing (cpufreq is often absent in VMs).
type CPUPower struct {
	// IdleDriver and IdleGovernor: cpuidle's driver (intel_idle, acpi_idle,
	// haltpoll, none) and governor (menu, teo, ladder, haltpoll).
	IdleDriver   string `json:"idle_driver,omitempty"`
	IdleGovernor string `json:"idle_governor,omitempty"`
	// FreqGovernor is cpu0's cpufreq scaling governor (performance, powersave, ...).
	FreqGovernor string `json:"freq_governor,omitempty"`
	// LoadAvg1 is the 1-minute load average at the start: other work on the host.
	LoadAvg1 float64 `json:"loadavg_1m"`
}

// String is one line for reports, or "" when nothing is known.
func (c CPUPower) String() string {
	var parts []string
	if c.IdleDriver != "" || c.IdleGovernor != "" {
		parts = append(parts, fmt.Sprintf("cpuidle %s/%s", orDash(c.IdleDriver), orDash(c.IdleGovernor)))
	}
	if c.FreqGovernor != "" {
		parts = append(parts, "cpufreq governor "+c.FreqGovernor)
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(", load %.2f at start", c.LoadAvg1)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ReadCPUPower reads the record from a sysfs CPU directory (normally
// /sys/devices/system/cpu) and a loadavg file (/proc/loadavg).
func ReadCPUPower(cpuDir, loadavg string) CPUPower {
	c := CPUPower{
		IdleDriver:   firstLine(filepath.Join(cpuDir, "cpuidle", "current_driver")),
		IdleGovernor: firstLine(filepath.Join(cpuDir, "cpuidle", "current_governor")),
		FreqGovernor: firstLine(filepath.Join(cpuDir, "cpu0", "cpufreq", "scaling_governor")),
	}
	if c.IdleGovernor == "" { // kernels before 5.x name only the read-only governor file
		c.IdleGovernor = firstLine(filepath.Join(cpuDir, "cpuidle", "current_governor_ro"))
	}
	if f := strings.Fields(firstLine(loadavg)); len(f) > 0 {
		c.LoadAvg1, _ = strconv.ParseFloat(f[0], 64)
	}
	return c
}

// Model identifies the weights.
type Model struct {
	Dir  string `json:"dir"`
	Hash string `json:"hash"`
	// Params is the parameter count; WeightBytesPerToken the bytes read per
	// decoded token at the benchmark dtype (roofline numerator).
	Params              int64  `json:"params"`
	WeightBytesPerToken int64  `json:"weight_bytes_per_token"`
	DType               string `json:"dtype"`
	Shape               string `json:"shape,omitempty"`
}

// Collect fills the host part of the record. Everything missing is left
// empty: an environment record never fails a benchmark.
//
// gitFallback, when set (CIB_GIT_COMMIT: the commit the binaries were built
// from, "-dirty" suffix for uncommitted changes), is recorded instead of the
// working directory's git.
func Collect(ctx context.Context, args []string, workDir, gitFallback string) Env {
	e := Env{
		CreatedAt: time.Now().UTC(),
		Command:   args,
		WorkDir:   workDir,
		GoVersion: runtime.Version(),
		CPUs:      runtime.NumCPU(),
		Engines:   map[string]protocol.Info{},
		Binaries:  map[string]string{},
	}
	e.Host, _ = os.Hostname()
	e.OS = osRelease()
	e.Kernel = firstLine("/proc/sys/kernel/osrelease")
	e.CPU = cpuModel()
	e.CPUPower = ReadCPUPower("/sys/devices/system/cpu", "/proc/loadavg")
	if gitFallback != "" {
		// Named explicitly: the commit the binaries were built from. It wins over the
		// working directory's git, which on a GPU host may be a stale copy of the tree.
		e.GitCommit, e.GitDirty = strings.TrimSuffix(gitFallback, "-dirty"), strings.HasSuffix(gitFallback, "-dirty")
		return e
	}
	e.GitCommit = git(ctx, workDir, "rev-parse", "HEAD")
	if e.GitCommit != "" {
		e.GitDirty = git(ctx, workDir, "status", "--porcelain", "--untracked-files=no") != ""
	}
	return e
}

func git(ctx context.Context, dir string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s)
}

func osRelease() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return runtime.GOOS
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
