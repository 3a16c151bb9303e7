//go:build cgo

package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
)

// The TestGPU* tests run against the real NVML and torch on a GPU host
// (scripts/gpu/telemetry.sh sets CIB_GPU_TEST=1). They write what they saw to
// $CIB_GPU_OUT/telemetry-gpu.json when that is set.

func gpuOnly(t *testing.T) *Telemetry {
	t.Helper()
	if os.Getenv("CIB_GPU_TEST") != "1" {
		t.Skip("real-GPU test: set CIB_GPU_TEST=1 on a host with an NVIDIA GPU")
	}
	tel, err := OpenNVML("")
	require.NoError(t, err, "NVML must open on the GPU host")
	t.Cleanup(func() { assert.NoError(t, tel.Close()) })
	return tel
}

// gpuReport collects the findings of the GPU tests.
var gpuReport = map[string]any{}

func writeGPUReport(t *testing.T) {
	dir := os.Getenv("CIB_GPU_OUT")
	if dir == "" {
		return
	}
	b, err := json.MarshalIndent(gpuReport, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "telemetry-gpu.json"), b, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(gpuSummary()), 0o644))
}

// gpuSummary is the short table the GPU script prints last.
func gpuSummary() string {
	var b strings.Builder
	if env, ok := gpuReport["env"].(Device); ok {
		fmt.Fprintf(&b, "gpu             %s %s, driver %s, CUDA %s\n", env.Name, env.UUID, env.DriverVersion, env.CUDADriverVersion)
		fmt.Fprintf(&b, "bandwidth       datasheet %.0f GB/s (%d-bit, %d MHz)", env.TheoreticalBandwidth/1e9, env.MemoryBusWidth, env.MaxMemClockMHz)
		if m, ok := gpuReport["probe"].(roofline.Measurement); ok {
			fmt.Fprintf(&b, ", probe %.0f GB/s (%.1f%%)", m.BytesPerSec/1e9, 100*m.BytesPerSec/env.TheoreticalBandwidth)
		}
		b.WriteString("\n")
	}
	for _, k := range []string{"idle_sampling", "load_sampling"} {
		if s, ok := gpuReport[k].(map[string]any); ok {
			fmt.Fprintf(&b, "%-15s %v samples in %.1f s, cost per sample median %v us p99 %v us, busy %.3f%%, energy counter changed %v times\n",
				k, s["samples"], s["span_s"], s["cost_us_median"], s["cost_us_p99"], 100*s["busy_fraction"].(float64), s["energy_changes"])
		}
	}
	if c, ok := gpuReport["sampler_cost"].(map[string]any); ok {
		fmt.Fprintf(&b, "sampler on/off  %.2f / %.2f tok/s (medians, torch decode-like loop, ABBA x3) -> cost %.3f%%\n",
			c["on_median_tok_s"], c["off_median_tok_s"], c["cost_pct"])
	}
	if trials, ok := gpuReport["trials"].([]trial); ok && len(trials) > 0 && trials[0].Summary != nil {
		s := trials[0].Summary
		fmt.Fprintf(&b, "loaded trial    %.1f W mean, %.4f J/token, proc mem peak %.2f GiB (%s), util %.0f%%, SM %.0f MHz, max %d C, reasons %v\n",
			s.PowerMeanW, s.EnergyPerTokenJ, float64(s.ProcMemPeak)/(1<<30), s.ProcMemSource, s.SMUtilMean, s.SMClockMeanMHz, s.TempMaxC, s.ReasonNames)
	}
	for _, k := range []string{"idle_wait_worker_alive", "idle_wait_after_exit"} {
		if r, ok := gpuReport[k].(IdleReport); ok {
			fmt.Fprintf(&b, "%-23s idle=%v after %v, last %+v %v\n", k, r.Idle, r.Waited.Round(time.Millisecond), r.Last, r.Warnings)
		}
	}
	return b.String()
}

func TestGPUEnvAndIdleSampling(t *testing.T) {
	tel := gpuOnly(t)
	env, err := tel.Env(0)
	require.NoError(t, err)
	b, _ := json.MarshalIndent(env, "", "  ")
	t.Logf("env: %s", b)
	gpuReport["env"] = env
	assert.NotEmpty(t, env.Name)
	assert.True(t, strings.HasPrefix(env.UUID, "GPU-"))
	assert.NotEmpty(t, env.DriverVersion)
	assert.NotEmpty(t, env.CUDADriverVersion)
	assert.Greater(t, env.TheoreticalBandwidth, 1e12)
	assert.Empty(t, env.Warnings)

	s, err := tel.NewSampler(0, SamplerOptions{Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	s.Start()
	time.Sleep(2 * time.Second)
	samples := s.Stop()
	st := samplerStats(samples)
	t.Logf("idle sampling: %+v", st)
	gpuReport["idle_sampling"] = st
	assert.Greater(t, len(samples), 100)
	assert.Equal(t, len(samples), st["valid_energy"])
	writeGPUReport(t)
}

// samplerStats describes a run of samples: cost per sample and how often the
// energy counter and power reading change.
func samplerStats(samples []Sample) map[string]any {
	costs := make([]float64, 0, len(samples))
	var energyChanges, powerChanges, validEnergy, validProc int
	var total time.Duration
	for k, s := range samples {
		costs = append(costs, float64(s.Cost.Nanoseconds())/1e3)
		total += s.Cost
		if s.Valid.Has(FieldEnergy) {
			validEnergy++
		}
		if s.Valid.Has(FieldProcMem) {
			validProc++
		}
		if k > 0 && s.EnergyMJ != samples[k-1].EnergyMJ {
			energyChanges++
		}
		if k > 0 && s.PowerMW != samples[k-1].PowerMW {
			powerChanges++
		}
	}
	slices.Sort(costs)
	span := samples[len(samples)-1].T - samples[0].T
	q := func(p float64) float64 { return costs[int(p*float64(len(costs)-1))] }
	return map[string]any{
		"samples": len(samples), "span_s": span.Seconds(),
		"cost_us_median": q(0.5), "cost_us_p99": q(0.99), "cost_us_max": costs[len(costs)-1],
		"busy_fraction":  total.Seconds() / span.Seconds(),
		"energy_changes": energyChanges, "power_changes": powerChanges,
		"valid_energy": validEnergy, "valid_proc_mem": validProc,
	}
}

// decodeLoop is a memory-bound stand-in for a decode loop: 16 bf16 GEMVs over
// 2 GiB of weights and a host sync per token, run in trials on request.
const decodeLoop = `
import sys, time, torch
d = torch.device("cuda", 0)
torch.manual_seed(0)
h, L = 8192, 16
W = [torch.randn(h, h, device=d, dtype=torch.bfloat16) * h ** -0.5 for _ in range(L)]
x0 = torch.randn(1, h, device=d, dtype=torch.bfloat16)
def run(seconds):
    n, t0 = 0, time.perf_counter()
    while True:
        x = x0
        for w in W:
            x = x @ w
        int(x.argmax())
        n += 1
        el = time.perf_counter() - t0
        if el >= seconds:
            return n, el
run(2.0)
print("ready", flush=True)
for line in sys.stdin:
    k, secs = line.split()
    print("start", k, flush=True)
    n, el = run(float(secs))
    print("done", k, n, el, flush=True)
`

type trial struct {
	On      bool     `json:"sampler_on"`
	Tokens  int      `json:"tokens"`
	Seconds float64  `json:"seconds"`
	TokPerS float64  `json:"tok_per_s"`
	Samples int      `json:"samples,omitempty"`
	Summary *Summary `json:"summary,omitempty"`
}

func TestGPUSamplerCostAndRunFigures(t *testing.T) {
	tel := gpuOnly(t)
	rest, err := tel.State(0)
	require.NoError(t, err)
	gpuReport["rest"] = rest

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", decodeLoop)
	cmd.Env = append(os.Environ(), "CUDA_DEVICE_ORDER=PCI_BUS_ID")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = stdin.Close(); cancel(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	next := func() []string {
		require.True(t, lines.Scan(), "worker ended: %v", lines.Err())
		return strings.Fields(lines.Text())
	}
	require.Equal(t, []string{"ready"}, next())

	busy, err := tel.Busy(0)
	require.NoError(t, err)
	t.Logf("busy while the worker runs: %+v (worker pid %d)", busy, cmd.Process.Pid)
	gpuReport["busy_with_worker"] = busy
	assert.NotEmpty(t, busy)

	epoch := time.Now()
	// ABBA order cancels a linear drift (clocks, temperature).
	order := []bool{true, false, false, true, true, false, false, true, true, false, false, true}
	var trials []trial
	for k, on := range order {
		var s *Sampler
		if on {
			s, err = tel.NewSampler(0, SamplerOptions{Epoch: epoch, Pids: ProcTree(cmd.Process.Pid)})
			require.NoError(t, err)
			s.Start()
		}
		_, err := io.WriteString(stdin, fmt.Sprintf("%d 3\n", k))
		require.NoError(t, err)
		require.Equal(t, "start", next()[0])
		start := time.Since(epoch)
		f := next()
		end := time.Since(epoch)
		require.Equal(t, "done", f[0])
		n, _ := strconv.Atoi(f[2])
		el, _ := strconv.ParseFloat(f[3], 64)
		tr := trial{On: on, Tokens: n, Seconds: el, TokPerS: float64(n) / el}
		if on {
			samples := s.Stop()
			sum := Aggregate(samples, []Window{{Start: start, End: end, Tokens: n}}, AggregateOptions{})
			tr.Samples, tr.Summary = len(samples), &sum
			if k == 0 {
				gpuReport["load_sampling"] = samplerStats(samples)
			}
		}
		t.Logf("trial %d sampler=%v: %.1f tok/s", k, on, tr.TokPerS)
		trials = append(trials, tr)
	}
	var onRates, offRates []float64
	for _, tr := range trials {
		if tr.On {
			onRates = append(onRates, tr.TokPerS)
		} else {
			offRates = append(offRates, tr.TokPerS)
		}
	}
	onMed, offMed := median(onRates), median(offRates)
	costPct := (offMed - onMed) / offMed * 100
	t.Logf("decode-like loop: sampler on %.2f tok/s, off %.2f tok/s (medians), cost %.3f%%", onMed, offMed, costPct)
	gpuReport["trials"] = trials
	gpuReport["sampler_cost"] = map[string]any{
		"interval": "10ms", "on_median_tok_s": onMed, "off_median_tok_s": offMed, "cost_pct": costPct,
	}
	sum := trials[0].Summary
	b, _ := json.MarshalIndent(sum, "", "  ")
	t.Logf("summary of trial 0: %s", b)
	assert.Greater(t, sum.EnergyJ, 0.0)
	assert.Equal(t, "counter", sum.EnergySource)
	assert.Greater(t, sum.PowerMeanW, rest.PowerW, "loaded power above rest")
	assert.Greater(t, sum.ProcMemPeak, uint64(2<<30), "2 GiB of weights")
	assert.Greater(t, sum.SMUtilMean, 50.0)

	rep, err := tel.WaitIdle(ctx, 0, IdleOptions{Baseline: rest, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Logf("wait for idle with the worker still holding memory: %+v", rep)
	gpuReport["idle_wait_worker_alive"] = rep
	assert.False(t, rep.Idle, "the worker still holds 2 GiB")

	_ = stdin.Close()
	require.NoError(t, cmd.Wait())
	rep, err = tel.WaitIdle(ctx, 0, IdleOptions{Baseline: rest, Timeout: 60 * time.Second})
	require.NoError(t, err)
	t.Logf("wait for idle after the worker exited: %+v", rep)
	gpuReport["idle_wait_after_exit"] = rep
	writeGPUReport(t)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func TestGPUProbe(t *testing.T) {
	tel := gpuOnly(t)
	env, err := tel.Env(0)
	require.NoError(t, err)
	cache := filepath.Join(t.TempDir(), "bandwidth.json")
	m, cached, err := roofline.Measured(context.Background(), cache, roofline.ProbeOptions{Device: 0, UUID: env.UUID}, false)
	require.NoError(t, err)
	assert.False(t, cached)
	ratio := m.BytesPerSec / env.TheoreticalBandwidth
	t.Logf("probe: %.0f GB/s measured, %.0f GB/s theoretical (%.1f%%): %+v", m.BytesPerSec/1e9, env.TheoreticalBandwidth/1e9, ratio*100, m)
	gpuReport["probe"] = m
	gpuReport["probe_over_theoretical"] = ratio
	assert.Greater(t, ratio, 0.5)
	assert.Less(t, ratio, 1.0)
	_, cached, err = roofline.Measured(context.Background(), cache, roofline.ProbeOptions{Device: 0, UUID: env.UUID}, false)
	require.NoError(t, err)
	assert.True(t, cached)
	writeGPUReport(t)
}

// TestGPUCallCost times each NVML call the sampler makes (40 calls each,
// median and p90), at rest and while a torch loop keeps the GPU busy: what a
// sample costs, call by call, and so which calls a fast sample can afford.
func TestGPUCallCost(t *testing.T) {
	tel := gpuOnly(t)
	dev, err := tel.dev(0)
	require.NoError(t, err)
	g, ok := dev.(*nvmlGPU)
	require.True(t, ok, "device 0 is an NVML device")
	calls := []struct {
		name string
		call func()
	}{
		{"energy", func() { g.d.GetTotalEnergyConsumption() }},
		{"power_instant", func() {
			fv := [1]nvml.FieldValue{{FieldId: nvml.FI_DEV_POWER_INSTANT}}
			g.d.GetFieldValues(fv[:])
		}},
		{"power_avg", func() { g.d.GetPowerUsage() }},
		{"memory", func() { g.d.GetMemoryInfo() }},
		{"utilization", func() { g.d.GetUtilizationRates() }},
		{"temperature", func() { g.d.GetTemperature(nvml.TEMPERATURE_GPU) }},
		{"clock_sm", func() { g.d.GetClockInfo(nvml.CLOCK_SM) }},
		{"reasons", func() { g.d.GetCurrentClocksEventReasons() }},
		{"processes", func() { g.d.GetComputeRunningProcesses() }},
	}
	measure := func(phase string) map[string]any {
		out := map[string]any{}
		for _, c := range calls {
			us := make([]float64, 40)
			for i := range us {
				t0 := time.Now()
				c.call()
				us[i] = float64(time.Since(t0).Nanoseconds()) / 1e3
				time.Sleep(2 * time.Millisecond)
			}
			slices.Sort(us)
			out[c.name] = map[string]float64{"median_us": us[len(us)/2], "p90_us": us[len(us)*9/10]}
			t.Logf("%s %-14s median %8.1f us  p90 %8.1f us", phase, c.name, us[len(us)/2], us[len(us)*9/10])
		}
		return out
	}
	gpuReport["call_cost_idle"] = measure("idle")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", "import torch\n"+
		"a = torch.randn(4096, 4096, device='cuda', dtype=torch.bfloat16)\n"+
		"torch.cuda.synchronize(); print('ready', flush=True)\n"+
		"while True:\n    b = a @ a\n    torch.cuda.synchronize()\n")
	cmd.Env = append(os.Environ(), "CUDA_DEVICE_ORDER=PCI_BUS_ID")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { cancel(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "load worker ended: %v", lines.Err())
	require.Equal(t, "ready", lines.Text())
	time.Sleep(500 * time.Millisecond)
	gpuReport["call_cost_load"] = measure("load")
	writeGPUReport(t)
}
