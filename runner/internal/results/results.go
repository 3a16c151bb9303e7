// Package results defines what a benchmark leaves on disk: one Record per
// launch in runs.jsonl (appended as each launch ends, so an interrupted
// benchmark keeps everything finished), the environment record, and the
// analysed summary.json.
package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
)

// Schema is the version of runs.jsonl and summary.json. Bump on incompatible
// change.
const Schema = 1

// File names inside a results directory.
const (
	RunsFile    = "runs.jsonl"
	EnvFile     = "environment.json"
	SummaryFile = "summary.json"
	ReportMD    = "report.md"
	ReportCSV   = "report.csv"
	ReportHTML  = "report.html"
	BenchFile   = "bench.txt"
	// PrepareFile holds one Preparation per `ENGINE prepare` the benchmark ran.
	PrepareFile = "prepare.jsonl"
)

// Preparation is one `ENGINE prepare` before a variant's first launch: the
// model-derived work (a conversion, an export) its launches then find cached,
// timed apart from any launch's cold start.
type Preparation struct {
	Engine    string            `json:"engine"`
	Spec      config.EngineSpec `json:"spec"`
	StartedAt time.Time         `json:"started_at"`
	// WallNs is spawn → exit, measured by the runner.
	WallNs int64 `json:"wall_ns"`
	// Prepared is the engine's report (nil when it failed).
	Prepared   *protocol.Prepared `json:"prepared,omitempty"`
	Error      string             `json:"error,omitempty"`
	StderrTail string             `json:"stderr_tail,omitempty"`
}

// AppendPreparation adds p to dir's prepare.jsonl, synced.
func AppendPreparation(dir string, p *Preparation) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode preparation of %s: %w", p.Engine, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, PrepareFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", PrepareFile, err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append %s: %w", PrepareFile, err)
	}
	return f.Sync()
}

// ReadPreparations reads dir's prepare.jsonl; none (no file) is no error.
// A line that does not parse is skipped with a warning: preparations are
// context for the report, never a reason to lose it.
func ReadPreparations(dir string) ([]Preparation, []string) {
	b, err := os.ReadFile(filepath.Join(dir, PrepareFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, []string{fmt.Sprintf("%s: %v", PrepareFile, err)}
	}
	var out []Preparation
	var warnings []string
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var p Preparation
		if err := json.Unmarshal(line, &p); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s line %d skipped: %v", PrepareFile, i+1, err))
			continue
		}
		out = append(out, p)
	}
	return out, warnings
}

// Status of a launch.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// Record is one launch of one engine variant.
type Record struct {
	Schema int `json:"schema"`
	// Engine is the variant label.
	Engine string `json:"engine"`
	// Spec is the variant.
	Spec config.EngineSpec `json:"spec"`
	// Launch counts this variant's launches from 0; Order counts all launches.
	Launch int `json:"launch"`
	Order  int `json:"order"`
	// Cases are the indices of the benchmark's cases this launch was asked to run when it ran only some (an engine
	// whose max batch is below a case's batch); absent when it ran them all. Iterations keep the benchmark's indices.
	Cases  []int  `json:"cases,omitempty"`
	Status string `json:"status"`
	// Error says why a failed launch failed.
	Error string `json:"error,omitempty"`
	// Exit is the process exit code (-1: killed or never started).
	Exit int `json:"exit"`
	// StderrTail is the end of the engine's stderr, kept for failures.
	StderrTail string    `json:"stderr_tail,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	// DurationNs is spawn → exit on the runner clock.
	DurationNs int64 `json:"duration_ns"`
	// ColdStartNs is spawn → loaded event on the runner clock.
	ColdStartNs int64 `json:"cold_start_ns,omitempty"`
	// Loaded is the engine's own cold-start breakdown.
	Loaded *protocol.Loaded `json:"loaded,omitempty"`
	// Iterations are every iteration received, warm-up ones included.
	Iterations []Iteration `json:"iterations"`
	// Telemetry is the GPU summary of this launch (absent without NVML).
	Telemetry json.RawMessage `json:"telemetry,omitempty"`
	// HostCPU is the host CPU the engine's process tree spent generating.
	HostCPU *HostCPU `json:"host_cpu,omitempty"`
	// SpawnMonoNs is CLOCK_MONOTONIC at spawn, the origin of ArrivedNs on
	// the clock GPU activity is stamped with.
	SpawnMonoNs int64 `json:"spawn_mono_ns,omitempty"`
	// Profiled marks a launch run under the kernel profiler (its label ends
	// in "+profile"); Profile is its profile.Launch.
	Profiled bool            `json:"profiled,omitempty"`
	Profile  json.RawMessage `json:"profile,omitempty"`
	// Warnings are caveats about this launch (hygiene timeouts, throttling…).
	Warnings []string `json:"warnings,omitempty"`
	// Card is the GPU this launch ran on in a multi-GPU run (runner bench
	// --gpus); absent in a one-device run.
	Card *Card `json:"card,omitempty"`
}

// Card is the GPU a launch of a multi-GPU run had to itself, and the host
// CPUs its process tree was pinned to.
type Card struct {
	// Index is the NVML index (PCI bus order) of the card; UUID is its NVML
	// UUID when known ("" for a fake card of the tests).
	Index int    `json:"index"`
	UUID  string `json:"uuid,omitempty"`
	// CPUs is the CPU list the engine was pinned to ("0-7,16"), the card's
	// NUMA-local cores when the topology says so.
	CPUs string `json:"cpus,omitempty"`
	// Round is the schedule round the launch ran in; the launches of one
	// round ran at the same time, one per card.
	Round int `json:"round"`
}

// HostCPU is the CPU time (user + system) of the engine's process tree from
// its loaded event to its done event (every iteration, warm-up included, no
// model load), against the wall time of that window: Cores = CPU / wall is
// how many host cores the engine kept busy while generating.
type HostCPU struct {
	CPUSeconds  float64 `json:"cpu_s"`
	WallSeconds float64 `json:"wall_s"`
}

// Cores is CPUSeconds / WallSeconds, 0 for an empty window.
func (h HostCPU) Cores() float64 {
	if h.WallSeconds <= 0 {
		return 0
	}
	return h.CPUSeconds / h.WallSeconds
}

// Iteration is one iteration event with its derived metrics.
type Iteration struct {
	// CaseName is Request.Cases[Raw.Case].Name.
	CaseName string `json:"case_name"`
	// ArrivedNs is when the event reached the runner, ns after spawn; with
	// Raw.EndNs it places the iteration on the runner's clock.
	ArrivedNs int64              `json:"arrived_ns"`
	Raw       protocol.Iteration `json:"raw"`
	Metrics   metrics.Iteration  `json:"metrics"`
}

// WindowNs returns the iteration's [start, first token, end] on the runner
// clock (ns after spawn), assuming the event was written as the iteration
// ended.
func (it *Iteration) WindowNs() (start, firstToken, end int64) {
	end = it.ArrivedNs
	start = end - it.Raw.EndNs
	firstToken = start
	if len(it.Raw.TokenNs) > 0 {
		firstToken = start + it.Raw.TokenNs[0]
	}
	return start, firstToken, end
}

// Writer appends records to runs.jsonl, one synced line per launch.
type Writer struct {
	dir string
	f   *os.File
}

// Create makes the results directory and opens runs.jsonl for appending.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create results dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, RunsFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", RunsFile, err)
	}
	return &Writer{dir: dir, f: f}, nil
}

// CreateNew makes a new results directory root/name, or root/name-2,
// root/name-3… when that exists (two benchmarks started in the same second
// with the same name), and opens its runs.jsonl. The directory is created
// exclusively, so concurrent runners never share one.
func CreateNew(root, name string) (*Writer, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create results root: %w", err)
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
			return nil, fmt.Errorf("create results dir: %w", err)
		}
		return Create(dir)
	}
	return nil, fmt.Errorf("create results dir: %s and 999 numbered ones exist", filepath.Join(root, name))
}

// Dir is the results directory.
func (w *Writer) Dir() string { return w.dir }

// Append writes one record and syncs it to disk.
func (w *Writer) Append(r *Record) error {
	r.Schema = Schema
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %s launch %d: %w", r.Engine, r.Launch, err)
	}
	if _, err := w.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append %s: %w", RunsFile, err)
	}
	return w.f.Sync()
}

// Close closes runs.jsonl.
func (w *Writer) Close() error { return w.f.Close() }

// ReadRuns reads every record of a runs.jsonl file. A truncated last line (an
// interrupted write) is skipped with a warning; any other bad line is an error.
func ReadRuns(path string) ([]Record, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read runs: %w", err)
	}
	defer f.Close()
	return DecodeRuns(f)
}

// DecodeRuns reads records from r, one JSON object per line.
func DecodeRuns(r io.Reader) ([]Record, []string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 512<<20)
	var out []Record
	var warnings []string
	var pendingErr error
	line := 0
	for sc.Scan() {
		line++
		if pendingErr != nil {
			return nil, nil, pendingErr
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			pendingErr = fmt.Errorf("runs line %d: %w", line, err)
			continue
		}
		if rec.Schema != Schema {
			return nil, nil, fmt.Errorf("runs line %d: schema %d, this runner reads %d", line, rec.Schema, Schema)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read runs: %w", err)
	}
	if pendingErr != nil {
		warnings = append(warnings, fmt.Sprintf("skipped a truncated last line in runs (%v)", pendingErr))
	}
	return out, warnings, nil
}

// WriteJSON writes v as indented JSON to dir/name atomically.
func WriteJSON(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return WriteFile(dir, name, append(b, '\n'))
}

// WriteFile writes b to dir/name through a temp file and rename. The file is
// readable by all (0644), like runs.jsonl; a temp file starts at 0600.
func WriteFile(dir, name string, b []byte) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// ReadJSON reads dir/name into v.
func ReadJSON(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// ErrNoRuns is returned when a results directory holds no launch at all.
var ErrNoRuns = errors.New("no launches recorded")
