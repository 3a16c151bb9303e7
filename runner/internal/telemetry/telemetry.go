// Package telemetry watches NVIDIA GPUs through NVML: an environment record per
// device, a background sampler per run (memory, utilization, power, energy,
// temperature, clocks, throttle reasons), aggregation of samples over the timed
// windows of a run, and launch hygiene (wait for idle, refuse a busy GPU, check
// free memory).
//
// NVML is optional. Where it cannot be used (no driver, no GPU, a runner built
// without cgo) the open functions return an error that matches ErrUnavailable
// and whose text is one line for the user; the runner then goes on without
// telemetry.
package telemetry

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// ErrUnavailable matches (errors.Is) every error saying that NVML cannot be
// used on this machine. Callers print the error, one line, and run without
// telemetry.
var ErrUnavailable = errors.New("telemetry unavailable")

// UnavailableError says why NVML cannot be used, in one line.
type UnavailableError struct {
	// Reason is a short lower-case explanation, e.g. "NVML library not found".
	Reason string
}

func (e *UnavailableError) Error() string { return "telemetry off: " + e.Reason }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// InsufficientMemoryError is returned by CheckFreeMemory when the device has
// less free memory than a run needs.
type InsufficientMemoryError struct {
	Device int
	// Need, Free and Total are in bytes.
	Need, Free, Total uint64
}

func (e *InsufficientMemoryError) Error() string {
	return fmt.Sprintf("gpu %d: need %s of device memory, %s free of %s",
		e.Device, gib(e.Need), gib(e.Free), gib(e.Total))
}

func gib(b uint64) string { return strconv.FormatFloat(float64(b)/(1<<30), 'f', 2, 64) + " GiB" }

// Process is one process holding a GPU context.
type Process struct {
	Pid uint32 `json:"pid"`
	// UsedBytes is the device memory NVML attributes to the process, in bytes
	// (0 when NVML cannot tell).
	UsedBytes uint64 `json:"used_bytes"`
	// Name is the process's command name when the runner can see it.
	Name string `json:"name,omitempty"`
}

// Device is the environment record of one GPU, written into every result.
type Device struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	UUID     string `json:"uuid"`
	PCIBusID string `json:"pci_bus_id,omitempty"`
	// DriverVersion is the kernel driver version, e.g. "580.159.04".
	DriverVersion string `json:"driver_version"`
	// CUDADriverVersion is the CUDA version the driver supports, e.g. "13.0".
	CUDADriverVersion string `json:"cuda_driver_version"`
	// MemoryTotal is the device memory in bytes.
	MemoryTotal uint64 `json:"memory_total_bytes"`
	// MemoryUsed is the device memory in use when the record was taken, in bytes.
	MemoryUsed uint64 `json:"memory_used_bytes"`
	// MemoryBusWidth is the memory bus width in bits.
	MemoryBusWidth uint32 `json:"memory_bus_width_bits"`
	// MaxMemClockMHz and MaxSMClockMHz are the maximum clocks in MHz.
	MaxMemClockMHz uint32 `json:"max_mem_clock_mhz"`
	MaxSMClockMHz  uint32 `json:"max_sm_clock_mhz"`
	// TheoreticalBandwidth is MemoryBusWidth/8 × MaxMemClockMHz × 1e6 × 2
	// (double data rate), in bytes/s; 0 when either input is unknown.
	TheoreticalBandwidth float64 `json:"theoretical_bandwidth_bytes_per_s"`
	// PowerLimitMW is the enforced power limit in mW.
	PowerLimitMW uint32 `json:"power_limit_mw"`
	// Persistence is "enabled", "disabled" or "" when unknown.
	Persistence string `json:"persistence_mode"`
	// SMClockMHz and MemClockMHz are the clocks when the record was taken.
	SMClockMHz  uint32 `json:"sm_clock_mhz"`
	MemClockMHz uint32 `json:"mem_clock_mhz"`
	// TempC is the temperature when the record was taken, in °C.
	TempC uint32 `json:"temperature_c"`
	// PowerMW is the power draw when the record was taken, in mW.
	PowerMW uint32 `json:"power_mw"`
	// Processes are the compute processes holding the device.
	Processes []Process `json:"processes"`
	// Warnings name the fields NVML could not read.
	Warnings []string `json:"warnings,omitempty"`
}

// Bandwidth returns the theoretical DRAM bandwidth in bytes/s of a bus of
// busBits bits at a memory clock of memClockMHz, counting two transfers per
// clock. For an H100 SXM (5120 bits, 2619 MHz) it is 3.352e12.
func Bandwidth(busBits, memClockMHz uint32) float64 {
	return float64(busBits) / 8 * float64(memClockMHz) * 1e6 * 2
}

// Telemetry is an open NVML session. Its methods are safe for concurrent use
// by different goroutines on different devices.
type Telemetry struct {
	driver  string
	cuda    string
	devs    []gpu
	close   func() error
	name    func(pid uint32) string
	closeMu sync.Once
}

// gpu is what the rest of the package needs from one device. The cgo build
// adapts NVML to it; tests reach it through go-nvml's fake devices.
type gpu interface {
	// static fills the fields of the environment record that need no
	// sampling, adding a warning per field it could not read.
	static(d *Device)
	memory() (total, used uint64, err error)
	processes() ([]Process, error)
	// read fills the dynamic fields of s except T, Cost and the process
	// fields, setting Valid for each it could read.
	read(s *Sample)
	// readPower fills only the power fields of s (the cheap part of read):
	// the instantaneous power, and the averaged one when avg is set or the
	// instantaneous one is not supported.
	readPower(s *Sample, avg bool)
	energy() (uint64, error)
}

// Count returns the number of devices.
func (t *Telemetry) Count() int { return len(t.devs) }

// Close releases NVML. Samplers must be stopped first.
func (t *Telemetry) Close() error {
	var err error
	t.closeMu.Do(func() {
		if t.close != nil {
			err = t.close()
		}
	})
	return err
}

func (t *Telemetry) dev(i int) (gpu, error) {
	if i < 0 || i >= len(t.devs) {
		return nil, fmt.Errorf("gpu %d: no such device (have %d)", i, len(t.devs))
	}
	return t.devs[i], nil
}

// Env returns the environment record of device i.
func (t *Telemetry) Env(i int) (Device, error) {
	g, err := t.dev(i)
	if err != nil {
		return Device{}, err
	}
	d := Device{Index: i, DriverVersion: t.driver, CUDADriverVersion: t.cuda}
	g.static(&d)
	if total, used, err := g.memory(); err != nil {
		d.Warnings = append(d.Warnings, "memory info: "+err.Error())
	} else {
		d.MemoryTotal, d.MemoryUsed = total, used
	}
	var s Sample
	g.read(&s)
	d.SMClockMHz, d.MemClockMHz, d.TempC, d.PowerMW = s.SMClockMHz, s.MemClockMHz, s.TempC, s.PowerMW
	d.TheoreticalBandwidth = Bandwidth(d.MemoryBusWidth, d.MaxMemClockMHz)
	procs, err := g.processes()
	if err != nil {
		d.Warnings = append(d.Warnings, "compute processes: "+err.Error())
	}
	d.Processes = t.named(procs)
	if d.Processes == nil {
		d.Processes = []Process{}
	}
	return d, nil
}

// Envs returns the environment record of every device.
func (t *Telemetry) Envs() ([]Device, error) {
	out := make([]Device, 0, len(t.devs))
	for i := range t.devs {
		d, err := t.Env(i)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Busy lists the processes other than the runner's own that hold a context on
// device i. The runner refuses to launch on a busy GPU unless --allow-busy.
// ignore lists pids that do not count (e.g. an engine the runner owns).
func (t *Telemetry) Busy(i int, ignore ...uint32) ([]Process, error) {
	g, err := t.dev(i)
	if err != nil {
		return nil, err
	}
	procs, err := g.processes()
	if err != nil {
		return nil, fmt.Errorf("gpu %d: list processes: %w", i, err)
	}
	var out []Process
	for _, p := range procs {
		skip := false
		for _, pid := range ignore {
			skip = skip || p.Pid == pid
		}
		if !skip {
			out = append(out, p)
		}
	}
	return t.named(out), nil
}

// CheckFreeMemory returns an *InsufficientMemoryError when device i has less
// than need bytes free.
func (t *Telemetry) CheckFreeMemory(i int, need uint64) error {
	g, err := t.dev(i)
	if err != nil {
		return err
	}
	total, used, err := g.memory()
	if err != nil {
		return fmt.Errorf("gpu %d: memory info: %w", i, err)
	}
	free := uint64(0)
	if total > used {
		free = total - used
	}
	if free < need {
		return &InsufficientMemoryError{Device: i, Need: need, Free: free, Total: total}
	}
	return nil
}

func (t *Telemetry) named(procs []Process) []Process {
	if t.name == nil {
		return procs
	}
	for k := range procs {
		if procs[k].Name == "" {
			procs[k].Name = t.name(procs[k].Pid)
		}
	}
	return procs
}

// procComm reads a process's command name from /proc; "" when it cannot (the
// pid may live in another pid namespace).
func procComm(pid uint32) string {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// cudaVersion formats NVML's CUDA driver version (e.g. 13000) as "13.0".
func cudaVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}
