package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/bench"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/roofline"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// FakeGPUsEnv is the test hook that lets --gpus run a CPU benchmark on N fake
// cards: each is an index the child sees in CUDA_VISIBLE_DEVICES, with its
// own CPUs, and no NVML. It exists so CI can drive the parallel scheduler
// with CPU engines; a real multi-GPU run needs a CUDA device.
const FakeGPUsEnv = "CIB_FAKE_GPUS"

func gpusFlag() ucli.Flag {
	return &ucli.StringFlag{Name: "gpus", Usage: "run on several GPUs at once, one engine process per card, balanced over cards (`LIST`: 0,1,2,3 or all); statistics block by card"}
}

// parseGPUs reads --gpus against count cards: "all" or a comma-separated
// list of distinct indices below count.
func parseGPUs(v string, count int) ([]int, error) {
	if v == "all" {
		if count == 0 {
			return nil, fmt.Errorf("--gpus all: no GPU found")
		}
		out := make([]int, count)
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(v, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 0 {
			return nil, fmt.Errorf("--gpus %q: %q is not a GPU index", v, f)
		}
		if i >= count {
			return nil, fmt.Errorf("--gpus %q: GPU %d does not exist (%d found)", v, i, count)
		}
		if seen[i] {
			return nil, fmt.Errorf("--gpus %q: GPU %d given twice (a card never runs two engines)", v, i)
		}
		seen[i] = true
		out = append(out, i)
	}
	return out, nil
}

// cardsRun is what --gpus sets up: the cards with their monitors, and what
// the environment record keeps of them.
type cardsRun struct {
	cards []bench.Card
	// records are the cards' NVML environment records, bandwidth their
	// measured bandwidths by UUID (when probed).
	records   []json.RawMessage
	bandwidth map[string]*roofline.Measurement
	note      string
	close     func()
}

// openCards prepares a --gpus run. A CUDA benchmark opens NVML, checks every
// card as a one-GPU run checks its GPU (busy, memory) and gives each card a
// monitor; a CPU benchmark is refused unless FakeGPUsEnv is set. Every card
// gets its own CPUs (its NUMA-local ones where sysfs names them).
func openCards(c *ucli.Context, cfg *config.Config, e *env, model *workload.Model) (*cardsRun, error) {
	v := c.String("gpus")
	kind, _, _ := protocol.ParseDevice(cfg.Device)
	avail, err := spawn.Affinity()
	if err != nil {
		return nil, err
	}
	run := &cardsRun{close: func() {}, bandwidth: map[string]*roofline.Measurement{}}
	if kind != "cuda" {
		n, err := strconv.Atoi(e.getenv(FakeGPUsEnv))
		if err != nil || n <= 0 {
			return nil, usageError("--gpus: device %s is not a GPU (--gpus runs CUDA benchmarks; %s=N fakes N cards for tests)", cfg.Device, FakeGPUsEnv)
		}
		idx, err := parseGPUs(v, n)
		if err != nil {
			return nil, withCode(ExitUsage, err)
		}
		cpus := bench.SplitCPUs(avail, make([][]int, len(idx)))
		for i, ix := range idx {
			run.cards = append(run.cards, bench.Card{Index: ix, CPUs: cpus[i], Env: bench.VisibleEnv(ix, "")})
		}
		run.note = fmt.Sprintf("off (CPU benchmark on %d fake cards, %s)", len(idx), FakeGPUsEnv)
		return run, nil
	}
	t, err := telemetry.OpenNVML("")
	if err != nil {
		return nil, withCode(ExitUsage, fmt.Errorf("--gpus needs NVML to find the cards: %w", err))
	}
	run.close = func() { _ = t.Close() }
	fail := func(err error) (*cardsRun, error) { t.Close(); return nil, err }
	idx, err := parseGPUs(v, t.Count())
	if err != nil {
		return fail(withCode(ExitUsage, err))
	}
	cache, _ := roofline.LoadCache(roofline.CachePath(e.getenv))
	local := make([][]int, len(idx))
	var devs []telemetry.Device
	need := uint64(model.Config.Params()) * uint64(dtypeBytes(cfg.DType))
	for i, ix := range idx {
		dev, err := t.Env(ix)
		if err != nil {
			return fail(fmt.Errorf("read GPU %d: %w", ix, err))
		}
		devs = append(devs, dev)
		if busy, err := t.Busy(ix); err == nil && len(busy) > 0 && !c.Bool("allow-busy") {
			return fail(withCode(ExitUsage, fmt.Errorf("GPU %d (%s) is in use by %d other process(es) (%v); wait, or pass --allow-busy to measure anyway", ix, dev.Name, len(busy), busy)))
		}
		if err := t.CheckFreeMemory(ix, need+need/10); err != nil && !c.Bool("allow-busy") {
			return fail(withCode(ExitUsage, fmt.Errorf("GPU %d: model %s does not fit: %w", ix, cfg.Model, err)))
		}
		local[i] = localCPUs(dev.PCIBusID)
		rec, _ := json.Marshal(dev)
		run.records = append(run.records, rec)
	}
	cpus := bench.SplitCPUs(avail, local)
	for i, ix := range idx {
		dev := devs[i]
		var mon bench.Monitor
		if !c.Bool("no-telemetry") {
			m := &nvmlMonitor{t: t, idx: ix, interval: c.Duration("telemetry-interval"), power: c.Duration("power-interval"), idle: c.Duration("idle-timeout"), record: run.records[i]}
			if m.baseline, err = t.State(ix); err != nil {
				return fail(fmt.Errorf("read GPU %d state: %w", ix, err))
			}
			if cache != nil {
				if bw, ok := cache.Get(dev.UUID); ok {
					m.bandwidth = &bw
					run.bandwidth[dev.UUID] = &bw
				}
			}
			mon = m
		}
		run.cards = append(run.cards, bench.Card{Index: ix, UUID: dev.UUID, CPUs: cpus[i], Env: bench.VisibleEnv(ix, dev.UUID), Monitor: mon})
	}
	run.note = fmt.Sprintf("on: NVML, %d cards, sampling every %s", len(idx), c.Duration("telemetry-interval"))
	if c.Bool("no-telemetry") {
		run.note = "off (--no-telemetry); NVML used to find the cards"
	}
	return run, nil
}

// localCPUs reads the CPUs local to a PCI device from sysfs (NVML writes the
// bus id with an 8-digit domain, sysfs with 4); nil when unknown.
func localCPUs(busID string) []int {
	if len(busID) < 12 {
		return nil
	}
	id := strings.ToLower(busID[len(busID)-12:])
	b, err := os.ReadFile(filepath.Join("/sys/bus/pci/devices", id, "local_cpulist"))
	if err != nil {
		return nil
	}
	cpus, err := bench.ParseCPUList(string(b))
	if err != nil {
		return nil
	}
	return cpus
}
