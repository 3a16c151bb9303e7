package cli

import (
	"encoding/json"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// gpuMonitor is the runner's view of GPU telemetry for one benchmark.
type gpuMonitor interface {
	bench.Monitor
	DeviceRecord() json.RawMessage
	Close()
}

func openMonitor(c *ucli.Context, cfg *config.Config, e *env, model *workload.Model) (gpuMonitor, string, error) {
	return nil, "off (NVML telemetry not wired yet)", nil
}

func gpuCommand(e *env) *ucli.Command {
	return &ucli.Command{Name: "gpu", Usage: "GPU tools", Subcommands: []*ucli.Command{}}
}
