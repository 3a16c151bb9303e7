//go:build cgo

package telemetry

import (
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPerCardSampling: a multi-GPU run (runner bench --gpus) samples every
// card with its own sampler, at the same time. Each card of the fake DGX H100
// has its own state; every sample of a card's sampler, and its identity,
// idle state and busy check, must come from that card and no other: its
// power, energy, temperature and clocks, and the memory of the engine that
// runs on it (engine 100 on card 1, engine 200 on card 3, a foreign process
// on card 3 too).
func TestPerCardSampling(t *testing.T) {
	srv := dgxh100.New()
	fakes := make([]*fakeGPU, len(srv.Devices))
	for i, d := range srv.Devices {
		fakes[i] = &fakeGPU{
			energyMJ: uint64(1_000_000 * (i + 1)), powerMW: uint32(100_000 + 1_000*i), instantMW: uint32(110_000 + 1_000*i),
			tempC: uint32(30 + i), smClock: uint32(1000 + i), memClock: 2619, reasons: uint64(ReasonGPUIdle),
			memUsed: uint64(i+1) << 30, persistence: nvml.FEATURE_ENABLED,
		}
		install(d.(*server.Device), fakes[i])
	}
	fakes[1].procs = []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 500 << 20}}
	fakes[3].procs = []nvml.ProcessInfo{{Pid: 200, UsedGpuMemory: 700 << 20}, {Pid: 999, UsedGpuMemory: 1 << 30}}
	tel, err := Open(srv)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Close() })

	cards := []struct {
		index   int
		engine  uint32
		procMem uint64
		allMem  uint64
		busy    []uint32
	}{
		{index: 1, engine: 100, procMem: 500 << 20, allMem: 500 << 20, busy: []uint32{100}},
		{index: 3, engine: 200, procMem: 700 << 20, allMem: 700<<20 + 1<<30, busy: []uint32{200, 999}},
	}
	samplers := make([]*Sampler, len(cards))
	for k, c := range cards {
		pid := c.engine
		samplers[k], err = tel.NewSampler(c.index, SamplerOptions{Interval: time.Millisecond, FullEvery: 1, Pids: func() []uint32 { return []uint32{pid} }})
		require.NoError(t, err)
	}
	for _, s := range samplers {
		s.Start()
	}
	time.Sleep(30 * time.Millisecond)
	for k, c := range cards {
		got := samplers[k].Stop()
		require.GreaterOrEqual(t, len(got), 3, "card %d: samples", c.index)
		f := fakes[c.index]
		for n, x := range got {
			assert.Equal(t, f.powerMW, x.PowerMW, "card %d sample %d: power", c.index, n)
			assert.Equal(t, f.energyMJ, x.EnergyMJ, "card %d sample %d: energy", c.index, n)
			assert.Equal(t, f.tempC, x.TempC, "card %d sample %d: temperature", c.index, n)
			assert.Equal(t, f.smClock, x.SMClockMHz, "card %d sample %d: SM clock", c.index, n)
			assert.Equal(t, f.memUsed, x.DevMemUsed, "card %d sample %d: device memory", c.index, n)
			assert.Equal(t, c.procMem, x.ProcMem, "card %d sample %d: its engine's memory", c.index, n)
			assert.Equal(t, c.allMem, x.AllProcMem, "card %d sample %d: every process on it", c.index, n)
		}

		dev, err := tel.Env(c.index)
		require.NoError(t, err)
		assert.Equal(t, srv.Devices[c.index].(*server.Device).UUID, dev.UUID, "card %d: identity", c.index)
		st, err := tel.State(c.index)
		require.NoError(t, err)
		assert.Equal(t, f.tempC, st.TempC, "card %d: state", c.index)
		busy, err := tel.Busy(c.index)
		require.NoError(t, err)
		var pids []uint32
		for _, p := range busy {
			pids = append(pids, p.Pid)
		}
		assert.ElementsMatch(t, c.busy, pids, "card %d: busy with its own processes only", c.index)
	}
	idle, err := tel.Busy(0)
	require.NoError(t, err)
	assert.Empty(t, idle, "card 0 runs nothing")
}
