package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// gpuMonitor is the runner's view of GPU telemetry for one benchmark.
type gpuMonitor interface {
	bench.Monitor
	DeviceRecord() json.RawMessage
	MeasuredBandwidth() *roofline.Measurement
	Close()
}

// openMonitor opens NVML for a CUDA benchmark. No NVML (a CPU machine, CI) or
// a CPU benchmark means telemetry off with one line saying why, never an
// error; a GPU held by another process or without room for the model is an
// error unless --allow-busy.
// checkGPUPresent refuses a CUDA device on a machine with no NVIDIA GPU (no
// /dev/nvidia* device node and no NVML) before any expensive work, such as
// synthesizing a 16 GB model.
func checkGPUPresent(device string) error {
	kind, _, _ := protocol.ParseDevice(device)
	if kind != "cuda" {
		return nil
	}
	if nodes, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(nodes) > 0 {
		return nil
	}
	t, err := telemetry.OpenNVML("")
	if err == nil {
		t.Close()
		return nil
	}
	return usageError("device %s: no NVIDIA GPU on this machine (no /dev/nvidia* and %v); use --device cpu --dtype f32, or run where the GPU is", device, err)
}

func openMonitor(c *ucli.Context, cfg *config.Config, e *env, model *workload.Model) (gpuMonitor, string, error) {
	if c.Bool("no-telemetry") {
		return nil, "off (--no-telemetry)", nil
	}
	kind, ord, _ := protocol.ParseDevice(cfg.Device)
	if kind != "cuda" {
		return nil, "off (CPU benchmark)", nil
	}
	t, err := telemetry.OpenNVML("")
	if errors.Is(err, telemetry.ErrUnavailable) {
		return nil, err.Error(), nil
	} else if err != nil {
		return nil, "", fmt.Errorf("open NVML: %w", err)
	}
	if ord >= t.Count() {
		t.Close()
		return nil, "", withCode(ExitUsage, fmt.Errorf("device %s: NVML sees %d GPU(s)", cfg.Device, t.Count()))
	}
	dev, err := t.Env(ord)
	if err != nil {
		t.Close()
		return nil, "", fmt.Errorf("read GPU %d: %w", ord, err)
	}
	rec, _ := json.Marshal(dev)
	m := &nvmlMonitor{t: t, idx: ord, interval: c.Duration("telemetry-interval"), power: c.Duration("power-interval"), idle: c.Duration("idle-timeout"), record: rec}
	if busy, err := t.Busy(ord); err == nil && len(busy) > 0 && !c.Bool("allow-busy") {
		t.Close()
		return nil, "", withCode(ExitUsage, fmt.Errorf("GPU %d (%s) is in use by %d other process(es) (%v); wait, or pass --allow-busy to measure anyway", ord, dev.Name, len(busy), busy))
	}
	need := uint64(model.Config.Params()) * uint64(dtypeBytes(cfg.DType))
	if err := t.CheckFreeMemory(ord, need+need/10); err != nil && !c.Bool("allow-busy") {
		t.Close()
		return nil, "", withCode(ExitUsage, fmt.Errorf("model %s does not fit: %w", cfg.Model, err))
	}
	if m.baseline, err = t.State(ord); err != nil {
		t.Close()
		return nil, "", fmt.Errorf("read GPU %d state: %w", ord, err)
	}
	note := fmt.Sprintf("on: NVML, %s (%s), sampling every %s", dev.Name, dev.UUID, m.interval)
	if m.power > 0 && m.power < m.interval {
		note += fmt.Sprintf(" (instantaneous power every %s)", m.power)
	}
	if cache, err := roofline.LoadCache(roofline.CachePath(e.getenv)); err == nil {
		if bw, ok := cache.Get(dev.UUID); ok {
			m.bandwidth = &bw
		}
	}
	if m.bandwidth == nil {
		note += "; no measured bandwidth for this GPU yet (run `runner gpu probe`), roofline uses the datasheet figure"
	}
	return m, note, nil
}

func dtypeBytes(d string) int {
	if d == "f32" {
		return 4
	}
	return 2
}

type nvmlMonitor struct {
	t        *telemetry.Telemetry
	idx      int
	interval time.Duration
	// power, when set, is the finer interval of instantaneous power reads.
	power    time.Duration
	idle     time.Duration
	baseline telemetry.State
	record   json.RawMessage
	// bandwidth is this GPU's cached measured bandwidth, if any.
	bandwidth *roofline.Measurement
}

func (m *nvmlMonitor) DeviceRecord() json.RawMessage { return m.record }

// MeasuredBandwidth is the cached `runner gpu probe` result for this GPU.
func (m *nvmlMonitor) MeasuredBandwidth() *roofline.Measurement { return m.bandwidth }
func (m *nvmlMonitor) Close()                                   { _ = m.t.Close() }

// BeforeLaunch waits for the GPU to return to its resting state (fairness
// rule 5); a timeout becomes a warning on the launch, not an error.
func (m *nvmlMonitor) BeforeLaunch(ctx context.Context) ([]string, error) {
	rep, err := m.t.WaitIdle(ctx, m.idx, telemetry.IdleOptions{Baseline: m.baseline, Timeout: m.idle})
	if err != nil {
		return nil, err
	}
	return rep.Warnings, nil
}

func (m *nvmlMonitor) Watch(pid int, spawn time.Time) bench.Watch {
	s, err := m.t.NewSampler(m.idx, telemetry.SamplerOptions{Interval: m.interval, PowerInterval: m.power, Epoch: spawn, Pids: telemetry.ProcTree(pid)})
	if err != nil {
		return failedWatch{err}
	}
	s.Start()
	return &nvmlWatch{s: s}
}

type nvmlWatch struct{ s *telemetry.Sampler }

// Stop ends sampling and summarises the timed iterations of the launch.
func (w *nvmlWatch) Stop(its []results.Iteration) (json.RawMessage, []string) {
	samples := w.s.Stop()
	var windows []telemetry.Window
	for _, it := range its {
		if it.Raw.Warmup {
			continue
		}
		windows = append(windows, telemetry.WindowFromIteration(time.Duration(it.ArrivedNs), it.Raw.TokenNs, it.Raw.EndNs,
			len(it.Raw.TokenNs)*len(it.Raw.OutputTokens)))
	}
	sum := telemetry.Aggregate(samples, windows, telemetry.AggregateOptions{})
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, []string{fmt.Sprintf("telemetry summary: %v", err)}
	}
	var warnings []string
	if sum.Throttled {
		warnings = append(warnings, fmt.Sprintf("GPU throttled during timed iterations: %v", sum.ReasonNames))
	}
	return b, warnings
}

type failedWatch struct{ err error }

func (f failedWatch) Stop([]results.Iteration) (json.RawMessage, []string) {
	return nil, []string{fmt.Sprintf("telemetry sampler: %v", f.err)}
}

func gpuCommand(e *env) *ucli.Command {
	return &ucli.Command{Name: "gpu", Usage: "GPU tools", Subcommands: []*ucli.Command{gpuInfoCommand(e), gpuProbeCommand(e)}}
}

func gpuInfoCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "info",
		Usage: "print each GPU's environment record (NVML) as JSON",
		Action: func(c *ucli.Context) error {
			t, err := telemetry.OpenNVML("")
			if err != nil {
				return err
			}
			defer t.Close()
			devs, err := t.Envs()
			if err != nil {
				return err
			}
			b, _ := json.MarshalIndent(devs, "", "  ")
			fmt.Fprintf(e.stdout, "%s\n", b)
			return nil
		},
	}
}

func gpuProbeCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "probe",
		Usage: "measure device memory bandwidth (a large device-to-device copy through torch, CUDA events), cached per GPU UUID",
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "device", Usage: "GPU index (NVML order)"},
			&ucli.BoolFlag{Name: "refresh", Usage: "measure again even if cached"},
			&ucli.StringFlag{Name: "python", Value: "python3", Usage: "interpreter with torch (env CIB_PYTHON)", EnvVars: []string{"CIB_PYTHON"}},
		},
		Action: func(c *ucli.Context) error {
			t, err := telemetry.OpenNVML("")
			if err != nil {
				return err
			}
			dev, err := t.Env(c.Int("device"))
			t.Close()
			if err != nil {
				return err
			}
			path := roofline.CachePath(e.getenv)
			m, cached, err := roofline.Measured(c.Context, path, roofline.ProbeOptions{
				Python: c.String("python"), Env: e.environ, Device: c.Int("device"), UUID: dev.UUID,
			}, c.Bool("refresh"))
			if err != nil {
				return err
			}
			from := "measured now"
			if cached {
				from = "cached in " + path
			}
			fmt.Fprintf(e.stdout, "%s (%s): %.0f GB/s device-to-device (read+write bytes / median of %d copies of %.1f GiB; %s); datasheet %.0f GB/s\n",
				m.Name, m.UUID, m.BytesPerSec/1e9, m.Iters, float64(m.CopyBytes)/(1<<30), from, dev.TheoreticalBandwidth/1e9)
			return nil
		},
	}
}
