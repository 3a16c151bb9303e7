package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	ucli "github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// ConfigFile is the resolved config a benchmark writes into its results
// directory, so `runner bench --resume DIR` can finish it.
const ConfigFile = "config.yaml"

func resumeFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "resume", Usage: "finish an interrupted benchmark in results `DIR`: the launches in its runs.jsonl count as done, the same config and request go on from where it stopped"}
}

// errOtherMachine is the error of a resume on another machine (another GPU, or another host without one) than the
// run's recorded launches: their figures would be pooled under one environment record.
var errOtherMachine = errors.New("another machine")

// resumed is what an interrupted results directory holds.
type resumed struct {
	dir  string
	cfg  *config.Config
	req  protocol.Request
	env  envinfo.Env
	prev []results.Record
}

// openResume reads the results directory of --resume, or returns nil when
// the flag is not given. The config, request and environment are the run's
// own; flags that would change the workload are refused.
func openResume(c *ucli.Context) (*resumed, error) {
	dir := c.String("resume")
	if dir == "" {
		return nil, nil
	}
	for _, f := range []string{"config", "engines", "model", "device", "dtype", "launches", "iterations", "warmup", "baseline", "prompt-len", "new-tokens", "batch", "set"} {
		if c.IsSet(f) {
			return nil, usageError("--resume %s: --%s would change the benchmark being finished; resume it as it was", dir, f)
		}
	}
	r := &resumed{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("--resume %s: no %s there (a results directory from runner bench, written since resume exists?)", dir, ConfigFile)
	} else if err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if r.cfg, err = config.Parse(b); err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("resume %s: %s: %w", dir, ConfigFile, err))
	}
	if err := results.ReadJSON(dir, "request.json", &r.req); err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if err := results.ReadJSON(dir, results.EnvFile, &r.env); err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	prev, _, err := results.ReadRuns(filepath.Join(dir, results.RunsFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if prev, err = dropInterrupted(dir, prev); err != nil {
		return nil, err
	}
	labels := map[string]bool{}
	for _, s := range r.cfg.Engines {
		labels[s.DisplayLabel()] = true
	}
	for _, rec := range prev {
		if !labels[rec.Engine] {
			return nil, usageError("resume %s: runs.jsonl has launches of %q, which its config does not list", dir, rec.Engine)
		}
	}
	r.prev = prev
	return r, nil
}

// writeConfig saves the resolved config next to the results.
func writeConfig(dir string, cfg *config.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return results.WriteFile(dir, ConfigFile, b)
}

// dropInterrupted removes from runs.jsonl the launches an interrupt cut short
// (Error bench.InterruptedError): they are not results, and the resume runs
// them again, under the same launch number. The file is rewritten through a
// temporary file and a rename, so a crash leaves the old one or the new one.
func dropInterrupted(dir string, prev []results.Record) ([]results.Record, error) {
	var keep []results.Record
	for _, r := range prev {
		if r.Status == results.StatusOK || r.Error != bench.InterruptedError {
			keep = append(keep, r)
		}
	}
	if len(keep) == len(prev) {
		return prev, nil
	}
	var buf bytes.Buffer
	for i := range keep {
		b, err := json.Marshal(&keep[i])
		if err != nil {
			return nil, fmt.Errorf("resume %s: %w", dir, err)
		}
		buf.Write(append(b, '\n'))
	}
	path := filepath.Join(dir, results.RunsFile)
	tmp := path + ".resume"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("resume %s: %w", dir, err)
	}
	return keep, nil
}
