//go:build cgo

package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/gpus"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenUnavailable(t *testing.T) {
	tests := []struct {
		name string
		open func() (*Telemetry, error)
		want string
	}{
		{
			name: "no library",
			open: func() (*Telemetry, error) { return OpenNVML("/nonexistent/libnvidia-ml.so.1") },
			want: "telemetry off: NVML library (libnvidia-ml.so.1) not found: no NVIDIA driver on this machine",
		},
		{
			name: "driver not loaded",
			open: func() (*Telemetry, error) {
				srv := dgxh100.New()
				srv.InitFunc = func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }
				return Open(srv)
			},
			want: "telemetry off: NVIDIA driver not loaded",
		},
		{
			name: "no gpu",
			open: func() (*Telemetry, error) { return Open(dgxh100.NewWithGPUs()) },
			want: "telemetry off: NVML found no NVIDIA GPU",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := tt.open()
			require.Error(t, err)
			assert.Nil(t, tel)
			assert.True(t, errors.Is(err, ErrUnavailable), "errors.Is(%v, ErrUnavailable) = false", err)
			var ue *UnavailableError
			assert.True(t, errors.As(err, &ue))
			assert.Equal(t, tt.want, err.Error())
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestEnv(t *testing.T) {
	tel, srv, f := openFake(t)
	f.set(func(f *fakeGPU) { f.procs = []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 1 << 30}} })
	require.Equal(t, 8, tel.Count())

	d, err := tel.Env(3)
	require.NoError(t, err)
	assert.Equal(t, 3, d.Index)
	assert.Equal(t, "NVIDIA H100 80GB HBM3", d.Name)
	assert.True(t, strings.HasPrefix(d.UUID, "GPU-"), "UUID = %q", d.UUID)
	assert.Equal(t, srv.Devices[3].(*server.Device).UUID, d.UUID)
	assert.Equal(t, "0000:03:00.0", d.PCIBusID)
	assert.Equal(t, "550.54.15", d.DriverVersion)
	assert.Equal(t, "12.4", d.CUDADriverVersion)
	assert.Equal(t, uint64(80<<30), d.MemoryTotal)
	assert.Equal(t, uint64(600<<20), d.MemoryUsed)
	assert.Equal(t, uint32(5120), d.MemoryBusWidth)
	assert.Equal(t, uint32(2619), d.MaxMemClockMHz)
	assert.Equal(t, uint32(1980), d.MaxSMClockMHz)
	assert.InDelta(t, 3.35232e12, d.TheoreticalBandwidth, 1)
	assert.Equal(t, uint32(700_000), d.PowerLimitMW)
	assert.Equal(t, "enabled", d.Persistence)
	assert.Equal(t, uint32(345), d.SMClockMHz)
	assert.Equal(t, uint32(2619), d.MemClockMHz)
	assert.Equal(t, uint32(32), d.TempC)
	assert.Equal(t, uint32(70_000), d.PowerMW)
	assert.Equal(t, []Process{{Pid: 4242, UsedBytes: 1 << 30, Name: "python3"}}, d.Processes)
	assert.Empty(t, d.Warnings)

	_, err = tel.Env(8)
	assert.EqualError(t, err, "gpu 8: no such device (have 8)")

	all, err := tel.Envs()
	require.NoError(t, err)
	require.Len(t, all, 8)
	assert.NotEqual(t, all[0].UUID, all[1].UUID)
}

func TestEnvWarnsOnUnreadableFields(t *testing.T) {
	srv := dgxh100.NewWithGPUs(gpus.H100_SXM5_80GB)
	dev := srv.Devices[0].(*server.Device)
	install(dev, &fakeGPU{})
	dev.GetMemoryBusWidthFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	tel, err := Open(srv)
	require.NoError(t, err)
	env, err := tel.Env(0)
	require.NoError(t, err)
	assert.Equal(t, []string{"memory bus width: ERROR_NOT_SUPPORTED"}, env.Warnings)
	assert.Zero(t, env.TheoreticalBandwidth)
}

func TestBandwidth(t *testing.T) {
	tests := []struct {
		name     string
		bus, clk uint32
		want     float64
	}{
		{"H100 SXM HBM3", 5120, 2619, 3.35232e12},
		{"A100 80GB HBM2e", 5120, 1593, 2.03904e12},
		{"unknown", 0, 2619, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Bandwidth(tt.bus, tt.clk)
			assert.InDelta(t, tt.want, got, 1, "Bandwidth(%d, %d) = %g, want %g", tt.bus, tt.clk, got, tt.want)
		})
	}
}

func TestReasonConstantsMatchNVML(t *testing.T) {
	pairs := []struct {
		ours   Reasons
		theirs uint64
	}{
		{ReasonGPUIdle, nvml.ClocksEventReasonGpuIdle},
		{ReasonAppClocksSetting, nvml.ClocksEventReasonApplicationsClocksSetting},
		{ReasonSWPowerCap, nvml.ClocksEventReasonSwPowerCap},
		{ReasonHWSlowdown, nvml.ClocksThrottleReasonHwSlowdown},
		{ReasonSyncBoost, nvml.ClocksEventReasonSyncBoost},
		{ReasonSWThermalSlowdown, nvml.ClocksEventReasonSwThermalSlowdown},
		{ReasonHWThermalSlowdown, nvml.ClocksThrottleReasonHwThermalSlowdown},
		{ReasonHWPowerBrake, nvml.ClocksThrottleReasonHwPowerBrakeSlowdown},
		{ReasonDisplayClock, nvml.ClocksEventReasonDisplayClockSetting},
		{ReasonBoardLimit, nvml.ClocksEventReasonBoardLimit},
		{ReasonReliability, nvml.ClocksEventReasonReliability},
	}
	for _, p := range pairs {
		assert.Equal(t, p.theirs, uint64(p.ours), "reason %s", p.ours)
	}
}

func TestSampler(t *testing.T) {
	tel, _, f := openFake(t)
	pidCalls := 0
	// Engine: Go binary 100 with a python child 101; 999 is someone else.
	pids := func() []uint32 { pidCalls++; return []uint32{100, 101} }
	epoch := time.Now()
	s, err := tel.NewSampler(0, SamplerOptions{Epoch: epoch, Pids: pids, FullEvery: 1})
	require.NoError(t, err)

	steps := []struct {
		name   string
		change func(f *fakeGPU)
		check  func(t *testing.T, x Sample)
	}{
		{
			name:   "at rest, no process",
			change: func(f *fakeGPU) {},
			check: func(t *testing.T, x Sample) {
				assert.False(t, x.Valid.Has(FieldProcMem), "no engine process: ProcMem not valid")
				assert.True(t, x.Valid.Has(FieldAllProcMem|FieldDevMem|FieldUtil|FieldPower|FieldPowerInstant|FieldEnergy|FieldTemp|FieldClocks|FieldReasons))
				assert.Equal(t, uint64(1_000_000), x.EnergyMJ)
				assert.Equal(t, uint32(68_000), x.PowerInstantMW)
				assert.Equal(t, ReasonGPUIdle, x.Reasons)
			},
		},
		{
			name: "engine parent loads",
			change: func(f *fakeGPU) {
				f.procs = []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 500 << 20}, {Pid: 999, UsedGpuMemory: 1 << 30}}
				f.energyMJ += 3_000
				f.powerMW, f.tempC, f.smUtil, f.memUtil, f.smClock = 300_000, 45, 97, 88, 1980
				f.instantMW = 310_000
				f.reasons = uint64(ReasonSWPowerCap)
				f.memUsed = 2 << 30
			},
			check: func(t *testing.T, x Sample) {
				assert.Equal(t, uint64(500<<20), x.ProcMem)
				assert.Equal(t, uint64(500<<20+1<<30), x.AllProcMem)
				assert.Equal(t, uint64(2<<30), x.DevMemUsed)
				assert.Equal(t, uint64(1_003_000), x.EnergyMJ)
				assert.Equal(t, uint32(300_000), x.PowerMW)
				assert.Equal(t, uint32(310_000), x.PowerInstantMW)
				assert.Equal(t, uint32(45), x.TempC)
				assert.Equal(t, uint32(97), x.SMUtil)
				assert.Equal(t, uint32(88), x.MemUtil)
				assert.Equal(t, uint32(1980), x.SMClockMHz)
				assert.Equal(t, uint32(2619), x.MemClockMHz)
				assert.Equal(t, ReasonSWPowerCap, x.Reasons)
			},
		},
		{
			name: "python child joins",
			change: func(f *fakeGPU) {
				f.procs = append(f.procs, nvml.ProcessInfo{Pid: 101, UsedGpuMemory: 3 << 30})
				f.energyMJ += 3_000
			},
			check: func(t *testing.T, x Sample) {
				assert.Equal(t, uint64(500<<20+3<<30), x.ProcMem)
			},
		},
		{
			name: "energy counter and instant power unsupported",
			change: func(f *fakeGPU) {
				f.energyRet = nvml.ERROR_NOT_SUPPORTED
				f.instantRet = nvml.ERROR_NOT_SUPPORTED
			},
			check: func(t *testing.T, x Sample) {
				assert.False(t, x.Valid.Has(FieldEnergy))
				assert.False(t, x.Valid.Has(FieldPowerInstant))
				assert.True(t, x.Valid.Has(FieldPower))
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			f.set(st.change)
			s.sample()
			st.check(t, s.samples[len(s.samples)-1])
		})
	}
	// Pids runs once per unseen NVML pid: 100 and 999 (one call), then 101.
	assert.Equal(t, 2, pidCalls)

	got := s.Stop()
	require.Len(t, got, len(steps)+1)
	for k := 1; k < len(got); k++ {
		assert.Greater(t, got[k].T, got[k-1].T, "sample %d time", k)
		assert.Positive(t, got[k].Cost)
	}
	assert.False(t, got[len(got)-1].Valid.Has(FieldEnergy), "unsupported energy counter is not asked again")
	assert.False(t, got[len(got)-1].Valid.Has(FieldPowerInstant), "unsupported instant power is not asked again")
	assert.Equal(t, got, s.Stop(), "Stop twice returns the same samples")
}

func TestSamplerRunsUntilStop(t *testing.T) {
	tel, _, f := openFake(t)
	reads := make(chan struct{}, 1)
	f.set(func(f *fakeGPU) {
		f.onRead = func(f *fakeGPU) {
			f.energyMJ += 10
			if f.reads == 4 {
				reads <- struct{}{}
			}
		}
	})
	s, err := tel.NewSampler(0, SamplerOptions{Interval: time.Millisecond, FullEvery: 1})
	require.NoError(t, err)
	s.Start()
	s.Start()
	<-reads // the goroutine has taken samples on its own
	got := s.Stop()
	require.GreaterOrEqual(t, len(got), 5)
	for k := 1; k < len(got); k++ {
		assert.Greater(t, got[k].EnergyMJ, got[k-1].EnergyMJ)
		assert.GreaterOrEqual(t, got[k].T, got[k-1].T)
	}
}

func TestNewSamplerErrors(t *testing.T) {
	tel, _, _ := openFake(t)
	_, err := tel.NewSampler(9, SamplerOptions{})
	assert.EqualError(t, err, "gpu 9: no such device (have 8)")
	_, err = tel.NewSampler(0, SamplerOptions{Interval: -time.Second})
	assert.EqualError(t, err, "sampler: negative interval -1s")
}

func TestReasonsFallBackToThrottleCall(t *testing.T) {
	tel, _, f := openFake(t)
	f.set(func(f *fakeGPU) {
		f.reasonsRet = nvml.ERROR_FUNCTION_NOT_FOUND
		f.reasons = uint64(ReasonHWThermalSlowdown)
	})
	s, err := tel.NewSampler(0, SamplerOptions{})
	require.NoError(t, err)
	got := s.Stop()
	require.Len(t, got, 1)
	// First sample: event-reasons call fails and is marked missing.
	assert.False(t, got[0].Valid.Has(FieldReasons))
	s2, err := tel.NewSampler(0, SamplerOptions{})
	require.NoError(t, err)
	got = s2.Stop()
	assert.True(t, got[0].Valid.Has(FieldReasons))
	assert.Equal(t, ReasonHWThermalSlowdown, got[0].Reasons)
}

func TestBusy(t *testing.T) {
	tests := []struct {
		name   string
		procs  []nvml.ProcessInfo
		ignore []uint32
		want   []Process
	}{
		{name: "idle", want: nil},
		{
			name:  "other process",
			procs: []nvml.ProcessInfo{{Pid: 4242, UsedGpuMemory: 2 << 30}},
			want:  []Process{{Pid: 4242, UsedBytes: 2 << 30, Name: "python3"}},
		},
		{
			name:   "own process ignored",
			procs:  []nvml.ProcessInfo{{Pid: 7, UsedGpuMemory: 1 << 20}, {Pid: 8, UsedGpuMemory: ^uint64(0)}},
			ignore: []uint32{7},
			want:   []Process{{Pid: 8, UsedBytes: 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, _, f := openFake(t)
			f.set(func(f *fakeGPU) { f.procs = tt.procs })
			got, err := tel.Busy(0, tt.ignore...)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCheckFreeMemory(t *testing.T) {
	tests := []struct {
		name    string
		used    uint64
		need    uint64
		wantErr string
	}{
		{name: "fits", used: 1 << 30, need: 16 << 30},
		{name: "exact", used: 64 << 30, need: 16 << 30},
		{name: "too big", used: 70 << 30, need: 16 << 30, wantErr: "gpu 0: need 16.00 GiB of device memory, 10.00 GiB free of 80.00 GiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, _, f := openFake(t)
			f.set(func(f *fakeGPU) { f.memUsed = tt.used })
			err := tel.CheckFreeMemory(0, tt.need)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.wantErr)
			var im *InsufficientMemoryError
			require.True(t, errors.As(err, &im))
			assert.Equal(t, uint64(10<<30), im.Free)
		})
	}
}

func TestWaitIdle(t *testing.T) {
	rest := State{TempC: 32, PowerW: 70, MemUsed: 600 << 20}
	tests := []struct {
		name     string
		hotReads int // reads before the device is back at rest; -1 never
		timeout  time.Duration
		wantIdle bool
		wantWarn []string
	}{
		{name: "already idle", hotReads: 0, timeout: time.Minute, wantIdle: true},
		{name: "cools down", hotReads: 3, timeout: time.Minute, wantIdle: true},
		{
			name: "stays hot", hotReads: -1, timeout: 20 * time.Millisecond,
			wantWarn: []string{
				"gpu 0 not idle after 20ms: temperature 60 °C > 35 °C (rest 32 + 3)",
				"gpu 0 not idle after 20ms: power 250.0 W > 80.0 W (rest 70.0 + 10.0)",
				"gpu 0 not idle after 20ms: sm utilization 40% > 0%",
				"gpu 0 not idle after 20ms: memory used 4.00 GiB > 0.84 GiB (rest 0.59 GiB + 0.25 GiB)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, _, f := openFake(t)
			f.set(func(f *fakeGPU) {
				f.onRead = func(f *fakeGPU) {
					hot := tt.hotReads < 0 || f.reads <= tt.hotReads
					if hot {
						f.tempC, f.powerMW, f.smUtil, f.memUsed = 60, 250_000, 40, 4<<30
					} else {
						f.tempC, f.powerMW, f.smUtil, f.memUsed = 33, 72_000, 0, 600<<20
					}
				}
			})
			rep, err := tel.WaitIdle(context.Background(), 0, IdleOptions{Baseline: rest, Timeout: tt.timeout, Poll: time.Millisecond})
			require.NoError(t, err)
			assert.Equal(t, tt.wantIdle, rep.Idle)
			assert.Equal(t, tt.wantWarn, rep.Warnings)
		})
	}
}

func TestWaitIdleCancelled(t *testing.T) {
	tel, _, f := openFake(t)
	f.set(func(f *fakeGPU) { f.powerMW = 300_000 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tel.WaitIdle(ctx, 0, IdleOptions{Baseline: State{PowerW: 70}})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestState(t *testing.T) {
	tel, _, _ := openFake(t)
	st, err := tel.State(0)
	require.NoError(t, err)
	assert.Equal(t, State{TempC: 32, PowerW: 70, Util: 0, MemUsed: 600 << 20}, st)
}

// BenchmarkSample measures the sampler's own cost per sample on the fake
// device, with two processes on the GPU. Real NVML calls cost more (each is an
// ioctl); the GPU check measures those through Sample.Cost.
func BenchmarkSample(b *testing.B) {
	tel, _, f := openFake(b)
	f.set(func(f *fakeGPU) {
		f.procs = []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 1 << 30}, {Pid: 101, UsedGpuMemory: 2 << 30}}
	})
	s, err := tel.NewSampler(0, SamplerOptions{Pids: func() []uint32 { return []uint32{100, 101} }})
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		s.sample()
		if len(s.samples) == cap(s.samples) {
			s.samples = s.samples[:0]
		}
	}
}

// TestSamplerFullEvery: only every n-th sample reads the slow fields and the
// averaged power; the others carry the energy counter and the instantaneous
// power alone.
func TestSamplerFullEvery(t *testing.T) {
	t.Run("default: one full sample a second", func(t *testing.T) {
		tel, _, _ := openFake(t)
		for _, c := range []struct {
			interval time.Duration
			every    int
		}{{0, 10}, {10 * time.Millisecond, 100}, {300 * time.Millisecond, 3}, {2 * time.Second, 1}} {
			s, err := tel.NewSampler(0, SamplerOptions{Interval: c.interval})
			require.NoError(t, err)
			assert.Equal(t, c.every, s.every, "interval %v", c.interval)
		}
	})
	tel, _, _ := openFake(t)
	s, err := tel.NewSampler(0, SamplerOptions{FullEvery: 3, Pids: func() []uint32 { return nil }})
	require.NoError(t, err)
	for range 7 {
		s.sample()
	}
	got := s.Stop()
	require.Len(t, got, 8)
	for k, x := range got[:7] {
		full := k%3 == 0
		assert.Equal(t, full, x.Valid.Has(FieldDevMem|FieldUtil|FieldTemp|FieldClocks|FieldReasons|FieldAllProcMem|FieldPower), "sample %d full", k)
		assert.True(t, x.Valid.Has(FieldEnergy|FieldPowerInstant), "sample %d has energy and instantaneous power", k)
	}
}

// TestSamplerPowerInterval: with PowerInterval under Interval the sampler
// ticks at PowerInterval reading the instantaneous power (µs a call), the
// energy counter (ms a call) only every Interval/PowerInterval-th tick and a
// full sample once a second.
func TestSamplerPowerInterval(t *testing.T) {
	tel, _, _ := openFake(t)
	s, err := tel.NewSampler(0, SamplerOptions{Interval: 100 * time.Millisecond, PowerInterval: 10 * time.Millisecond, Pids: func() []uint32 { return nil }})
	require.NoError(t, err)
	assert.Equal(t, 10*time.Millisecond, s.interval)
	assert.Equal(t, 10, s.energy)
	assert.Equal(t, 100, s.every)
	for range 24 {
		s.sample()
	}
	got := s.Stop()
	require.Len(t, got, 25)
	assert.True(t, got[24].Valid.Has(FieldEnergy), "the last sample, Stop's, reads the energy counter")
	for k, x := range got[:24] {
		assert.Equal(t, k%10 == 0, x.Valid.Has(FieldEnergy), "sample %d reads the energy counter", k)
		assert.Equal(t, k == 0, x.Valid.Has(FieldDevMem|FieldUtil|FieldAllProcMem|FieldPower), "sample %d full", k)
		assert.True(t, x.Valid.Has(FieldPowerInstant), "sample %d has instantaneous power", k)
		if k > 0 {
			assert.Greater(t, x.T, got[k-1].T, "sample %d time", k)
		}
	}

	// Not finer than Interval: the option changes nothing.
	s, err = tel.NewSampler(0, SamplerOptions{Interval: 100 * time.Millisecond, PowerInterval: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 100*time.Millisecond, s.interval)
	assert.Equal(t, 1, s.energy)
	assert.Equal(t, 10, s.every)
	_, err = tel.NewSampler(0, SamplerOptions{PowerInterval: -time.Millisecond})
	assert.EqualError(t, err, "sampler: negative power interval -1ms")
}
