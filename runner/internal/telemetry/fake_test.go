//go:build cgo

package telemetry

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/require"
)

// fakeGPU is the state behind one dgxh100 fake device. Tests change its
// fields between samples; the device's function fields read them.
type fakeGPU struct {
	mu          sync.Mutex
	energyMJ    uint64
	powerMW     uint32
	instantMW   uint32
	instantRet  nvml.Return
	tempC       uint32
	smUtil      uint32
	memUtil     uint32
	smClock     uint32
	memClock    uint32
	reasons     uint64
	memUsed     uint64
	procs       []nvml.ProcessInfo
	energyRet   nvml.Return
	reasonsRet  nvml.Return
	reads       int
	onRead      func(f *fakeGPU) // called under mu at each power read
	persistence nvml.EnableState
}

// newFake returns a fake 8-GPU DGX H100 with device 0 driven by the returned
// fakeGPU, at rest.
func newFake(t testing.TB) (*server.Server, *fakeGPU) {
	t.Helper()
	srv := dgxh100.New()
	f := &fakeGPU{
		energyMJ: 1_000_000, powerMW: 70_000, instantMW: 68_000, tempC: 32, smClock: 345, memClock: 2619,
		reasons: uint64(ReasonGPUIdle), memUsed: 600 << 20, persistence: nvml.FEATURE_ENABLED,
	}
	for _, d := range srv.Devices {
		install(d.(*server.Device), f)
	}
	return srv, f
}

func install(d *server.Device, f *fakeGPU) {
	d.GetMemoryBusWidthFunc = func() (uint32, nvml.Return) { return 5120, nvml.SUCCESS }
	d.GetMaxClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		switch c {
		case nvml.CLOCK_MEM:
			return 2619, nvml.SUCCESS
		case nvml.CLOCK_SM:
			return 1980, nvml.SUCCESS
		}
		return 0, nvml.ERROR_INVALID_ARGUMENT
	}
	d.GetEnforcedPowerLimitFunc = func() (uint32, nvml.Return) { return 700_000, nvml.SUCCESS }
	d.GetPersistenceModeFunc = func() (nvml.EnableState, nvml.Return) { return f.persistence, nvml.SUCCESS }
	d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		total := d.MemoryInfo.Total
		return nvml.Memory{Total: total, Used: f.memUsed, Free: total - f.memUsed}, nvml.SUCCESS
	}
	d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return append([]nvml.ProcessInfo(nil), f.procs...), nvml.SUCCESS
	}
	d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return nvml.Utilization{Gpu: f.smUtil, Memory: f.memUtil}, nvml.SUCCESS
	}
	d.GetPowerUsageFunc = func() (uint32, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reads++
		if f.onRead != nil {
			f.onRead(f)
		}
		return f.powerMW, nvml.SUCCESS
	}
	d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.energyRet != nvml.SUCCESS {
			return 0, f.energyRet
		}
		return f.energyMJ, nvml.SUCCESS
	}
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.tempC, nvml.SUCCESS
	}
	d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if c == nvml.CLOCK_MEM {
			return f.memClock, nvml.SUCCESS
		}
		return f.smClock, nvml.SUCCESS
	}
	d.GetCurrentClocksEventReasonsFunc = func() (uint64, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.reasonsRet != nvml.SUCCESS {
			return 0, f.reasonsRet
		}
		return f.reasons, nvml.SUCCESS
	}
	d.GetCurrentClocksThrottleReasonsFunc = func() (uint64, nvml.Return) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.reasons, nvml.SUCCESS
	}
	d.GetFieldValuesFunc = func(fv []nvml.FieldValue) nvml.Return {
		f.mu.Lock()
		defer f.mu.Unlock()
		for k := range fv {
			if fv[k].FieldId != nvml.FI_DEV_POWER_INSTANT {
				fv[k].NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
				continue
			}
			fv[k].NvmlReturn = uint32(f.instantRet)
			fv[k].ValueType = uint32(nvml.VALUE_TYPE_UNSIGNED_INT)
			binary.LittleEndian.PutUint32(fv[k].Value[:4], f.instantMW)
		}
		return nvml.SUCCESS
	}
	d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
		var p nvml.PciInfo
		for i, c := range []byte(d.PciBusID) {
			p.BusId[i] = int8(c)
		}
		return p, nvml.SUCCESS
	}
}

func (f *fakeGPU) set(fn func(f *fakeGPU)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func openFake(t testing.TB) (*Telemetry, *server.Server, *fakeGPU) {
	t.Helper()
	srv, f := newFake(t)
	tel, err := Open(srv)
	require.NoError(t, err)
	tel.name = func(pid uint32) string { return map[uint32]string{4242: "python3"}[pid] }
	t.Cleanup(func() { _ = tel.Close() })
	return tel, srv, f
}
