//go:build cgo

package telemetry

import (
	"encoding/binary"
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Lib is the part of NVML the package uses. nvml.Interface satisfies it, and
// so do go-nvml's fakes (mock/dgxh100), which the tests use.
type Lib interface {
	Init() nvml.Return
	Shutdown() nvml.Return
	SystemGetDriverVersion() (string, nvml.Return)
	SystemGetCudaDriverVersion() (int, nvml.Return)
	DeviceGetCount() (int, nvml.Return)
	DeviceGetHandleByIndex(int) (nvml.Device, nvml.Return)
}

var _ Lib = nvml.Interface(nil)

// device is the part of nvml.Device the package uses.
type device interface {
	GetName() (string, nvml.Return)
	GetUUID() (string, nvml.Return)
	GetPciInfo() (nvml.PciInfo, nvml.Return)
	GetMemoryInfo() (nvml.Memory, nvml.Return)
	GetMemoryBusWidth() (uint32, nvml.Return)
	GetMaxClockInfo(nvml.ClockType) (uint32, nvml.Return)
	GetClockInfo(nvml.ClockType) (uint32, nvml.Return)
	GetEnforcedPowerLimit() (uint32, nvml.Return)
	GetPersistenceMode() (nvml.EnableState, nvml.Return)
	GetComputeRunningProcesses() ([]nvml.ProcessInfo, nvml.Return)
	GetUtilizationRates() (nvml.Utilization, nvml.Return)
	GetPowerUsage() (uint32, nvml.Return)
	GetTotalEnergyConsumption() (uint64, nvml.Return)
	GetTemperature(nvml.TemperatureSensors) (uint32, nvml.Return)
	GetCurrentClocksEventReasons() (uint64, nvml.Return)
	GetCurrentClocksThrottleReasons() (uint64, nvml.Return)
	GetFieldValues([]nvml.FieldValue) nvml.Return
}

var _ device = nvml.Device(nil)

// OpenNVML opens the system's NVML library (libnvidia-ml.so.1 when path is
// ""). Where NVML cannot be used the error matches ErrUnavailable.
func OpenNVML(path string) (*Telemetry, error) {
	var opts []nvml.LibraryOption
	if path != "" {
		opts = append(opts, nvml.WithLibraryPath(path))
	}
	return Open(nvml.New(opts...))
}

// Open initializes lib and takes a handle on every device. Where NVML cannot
// be used (library or driver missing, no permission, no device) the error
// matches ErrUnavailable.
func Open(lib Lib) (*Telemetry, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, &UnavailableError{Reason: initReason(ret)}
	}
	shutdown := func() error {
		if ret := lib.Shutdown(); ret != nvml.SUCCESS {
			return errors.New("nvml shutdown: " + ret.Error())
		}
		return nil
	}
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		_ = shutdown()
		return nil, &UnavailableError{Reason: "nvml device count: " + ret.Error()}
	}
	if n == 0 {
		_ = shutdown()
		return nil, &UnavailableError{Reason: "NVML found no NVIDIA GPU"}
	}
	t := &Telemetry{close: shutdown, name: procComm}
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		t.driver = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		t.cuda = cudaVersion(v)
	}
	for i := 0; i < n; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			_ = shutdown()
			return nil, &UnavailableError{Reason: "nvml device " + strconv.Itoa(i) + " handle: " + ret.Error()}
		}
		t.devs = append(t.devs, &nvmlGPU{d: d})
	}
	return t, nil
}

func initReason(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVML library (libnvidia-ml.so.1) not found: no NVIDIA driver on this machine"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "NVIDIA driver not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to use NVML"
	}
	return "nvml init: " + ret.Error()
}

// Fields found unsupported on a device are not asked again.
const (
	unsupUtil uint32 = 1 << iota
	unsupPower
	unsupEnergy
	unsupTemp
	unsupClocks
	unsupEventReasons
	unsupThrottleReasons
	unsupPowerInstant
)

type nvmlGPU struct {
	d     device
	unsup atomic.Uint32
}

// ok reports whether ret is success, remembering an unsupported field.
func (g *nvmlGPU) ok(ret nvml.Return, field uint32) bool {
	if ret == nvml.SUCCESS {
		return true
	}
	if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.ERROR_FUNCTION_NOT_FOUND {
		g.unsup.Or(field)
	}
	return false
}

func (g *nvmlGPU) skip(field uint32) bool { return g.unsup.Load()&field != 0 }

func retErr(ret nvml.Return) error { return errors.New(ret.Error()) }

func (g *nvmlGPU) static(d *Device) {
	warn := func(what string, ret nvml.Return) {
		d.Warnings = append(d.Warnings, what+": "+ret.Error())
	}
	var ret nvml.Return
	if d.Name, ret = g.d.GetName(); ret != nvml.SUCCESS {
		warn("name", ret)
	}
	if d.UUID, ret = g.d.GetUUID(); ret != nvml.SUCCESS {
		warn("uuid", ret)
	}
	if pci, ret := g.d.GetPciInfo(); ret == nvml.SUCCESS {
		d.PCIBusID = cString(pci.BusId[:])
	} else {
		warn("pci info", ret)
	}
	if d.MemoryBusWidth, ret = g.d.GetMemoryBusWidth(); ret != nvml.SUCCESS {
		warn("memory bus width", ret)
	}
	if d.MaxMemClockMHz, ret = g.d.GetMaxClockInfo(nvml.CLOCK_MEM); ret != nvml.SUCCESS {
		warn("max memory clock", ret)
	}
	if d.MaxSMClockMHz, ret = g.d.GetMaxClockInfo(nvml.CLOCK_SM); ret != nvml.SUCCESS {
		warn("max sm clock", ret)
	}
	if d.PowerLimitMW, ret = g.d.GetEnforcedPowerLimit(); ret != nvml.SUCCESS {
		warn("power limit", ret)
	}
	switch mode, ret := g.d.GetPersistenceMode(); {
	case ret != nvml.SUCCESS:
		warn("persistence mode", ret)
	case mode == nvml.FEATURE_ENABLED:
		d.Persistence = "enabled"
	default:
		d.Persistence = "disabled"
	}
}

func (g *nvmlGPU) memory() (total, used uint64, err error) {
	m, ret := g.d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return 0, 0, retErr(ret)
	}
	return m.Total, m.Used, nil
}

// notAvailable is NVML_VALUE_NOT_AVAILABLE as an unsigned long long.
const notAvailable = ^uint64(0)

func (g *nvmlGPU) processes() ([]Process, error) {
	ps, ret := g.d.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, retErr(ret)
	}
	out := make([]Process, 0, len(ps))
	for _, p := range ps {
		used := p.UsedGpuMemory
		if used == notAvailable {
			used = 0
		}
		out = append(out, Process{Pid: p.Pid, UsedBytes: used})
	}
	return out, nil
}

func (g *nvmlGPU) energy() (uint64, error) {
	if g.skip(unsupEnergy) {
		return 0, retErr(nvml.ERROR_NOT_SUPPORTED)
	}
	e, ret := g.d.GetTotalEnergyConsumption()
	if !g.ok(ret, unsupEnergy) {
		return 0, retErr(ret)
	}
	return e, nil
}

func (g *nvmlGPU) read(s *Sample) {
	if m, ret := g.d.GetMemoryInfo(); ret == nvml.SUCCESS {
		s.DevMemUsed = m.Used
		s.Valid |= FieldDevMem
	}
	if !g.skip(unsupUtil) {
		if u, ret := g.d.GetUtilizationRates(); g.ok(ret, unsupUtil) {
			s.SMUtil, s.MemUtil = u.Gpu, u.Memory
			s.Valid |= FieldUtil
		}
	}
	g.readPower(s, true)
	if !g.skip(unsupTemp) {
		if c, ret := g.d.GetTemperature(nvml.TEMPERATURE_GPU); g.ok(ret, unsupTemp) {
			s.TempC = c
			s.Valid |= FieldTemp
		}
	}
	if !g.skip(unsupClocks) {
		sm, ret1 := g.d.GetClockInfo(nvml.CLOCK_SM)
		mem, ret2 := g.d.GetClockInfo(nvml.CLOCK_MEM)
		if g.ok(ret1, unsupClocks) && g.ok(ret2, unsupClocks) {
			s.SMClockMHz, s.MemClockMHz = sm, mem
			s.Valid |= FieldClocks
		}
	}
	// Drivers before 535 know only the older name of the same call.
	if !g.skip(unsupEventReasons) {
		if r, ret := g.d.GetCurrentClocksEventReasons(); g.ok(ret, unsupEventReasons) {
			s.Reasons = Reasons(r)
			s.Valid |= FieldReasons
		}
		return
	}
	if !g.skip(unsupThrottleReasons) {
		if r, ret := g.d.GetCurrentClocksThrottleReasons(); g.ok(ret, unsupThrottleReasons) {
			s.Reasons = Reasons(r)
			s.Valid |= FieldReasons
		}
	}
}

// readPower reads the instantaneous power and, when avg is set or the
// instantaneous reading is not supported, NVML's (averaged) power usage.
func (g *nvmlGPU) readPower(s *Sample, avg bool) {
	g.readInstantPower(s)
	if (avg || g.skip(unsupPowerInstant)) && !g.skip(unsupPower) {
		if p, ret := g.d.GetPowerUsage(); g.ok(ret, unsupPower) {
			s.PowerMW = p
			s.Valid |= FieldPower
		}
	}
}

func (g *nvmlGPU) readInstantPower(s *Sample) {
	if !g.skip(unsupPowerInstant) {
		fv := [1]nvml.FieldValue{{FieldId: nvml.FI_DEV_POWER_INSTANT}}
		if ret := g.d.GetFieldValues(fv[:]); g.ok(ret, unsupPowerInstant) && g.ok(nvml.Return(fv[0].NvmlReturn), unsupPowerInstant) {
			if v, ok := fieldUint(fv[0]); ok {
				s.PowerInstantMW = uint32(v)
				s.Valid |= FieldPowerInstant
			}
		}
	}
}

// fieldUint decodes an unsigned NVML field value.
func fieldUint(fv nvml.FieldValue) (uint64, bool) {
	v := fv.Value
	switch nvml.ValueType(fv.ValueType) {
	case nvml.VALUE_TYPE_UNSIGNED_INT:
		return uint64(binary.LittleEndian.Uint32(v[:4])), true
	case nvml.VALUE_TYPE_UNSIGNED_LONG, nvml.VALUE_TYPE_UNSIGNED_LONG_LONG:
		return binary.LittleEndian.Uint64(v[:]), true
	}
	return 0, false
}

// cString converts a NUL-terminated C char array.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
