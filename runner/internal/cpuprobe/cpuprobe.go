// Package cpuprobe measures the host's memory bandwidth, the roofline of CPU
// decoding (every weight is read once per token), the way roofline.Probe
// measures a GPU's: a buffer far larger than the caches, streamed by every
// thread at once, the median of several timed passes after warm-up ones.
package cpuprobe

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"
)

// Defaults.
const (
	DefaultBytes  = 2 << 30
	DefaultIters  = 10
	DefaultWarmup = 2
)

// Options configure Probe.
type Options struct {
	// Threads streaming the buffer, runtime.NumCPU() when 0.
	Threads int
	// Bytes is the buffer size, DefaultBytes when 0.
	Bytes int64
	// Iters and Warmup count timed and untimed passes.
	Iters, Warmup int
}

// Measurement is one probe's result. Bandwidths are in bytes/s.
type Measurement struct {
	Threads int   `json:"threads"`
	Bytes   int64 `json:"bytes"`
	Iters   int   `json:"iters"`
	// ReadBytesPerSec is the buffer size over the median time of a pass that
	// reads every byte (each thread sums its share): the decode roofline.
	ReadBytesPerSec float64 `json:"read_bytes_per_s"`
	// CopyBytesPerSec counts read plus written bytes of a copy (2 × size over
	// the median), as roofline.Probe counts a device copy.
	CopyBytesPerSec float64 `json:"copy_bytes_per_s"`
	// ReadMinMs and ReadMaxMs bound the timed read passes, in ms.
	ReadMinMs float64 `json:"read_min_ms"`
	ReadMaxMs float64 `json:"read_max_ms"`
}

// Probe runs the measurement.
func Probe(ctx context.Context, o Options) (Measurement, error) {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.Bytes <= 0 {
		o.Bytes = DefaultBytes
	}
	if o.Iters <= 0 {
		o.Iters = DefaultIters
	}
	if o.Warmup < 0 {
		o.Warmup = DefaultWarmup
	}
	words := int(o.Bytes / 8 / int64(o.Threads) / 8 * 8)
	if words < 1<<16 {
		return Measurement{}, fmt.Errorf("cpu probe: %d bytes over %d threads is too small to leave the caches", o.Bytes, o.Threads)
	}
	src := make([][]uint64, o.Threads)
	dst := make([][]uint64, o.Threads)
	parallel(o.Threads, func(t int) {
		// Each thread touches its own share first, so pages land on its node.
		src[t], dst[t] = make([]uint64, words), make([]uint64, words)
		for i := range src[t] {
			src[t][i] = uint64(i) * 0x9e3779b97f4a7c15
		}
		copy(dst[t], src[t])
	})
	total := int64(words) * 8 * int64(o.Threads)
	var sink uint64
	var mu sync.Mutex
	read := func() {
		parallel(o.Threads, func(t int) {
			s := sum(src[t])
			mu.Lock()
			sink ^= s
			mu.Unlock()
		})
	}
	cp := func() { parallel(o.Threads, func(t int) { copy(dst[t], src[t]) }) }
	rt, err := timeIt(ctx, o, read)
	if err != nil {
		return Measurement{}, err
	}
	ct, err := timeIt(ctx, o, cp)
	if err != nil {
		return Measurement{}, err
	}
	runtime.KeepAlive(sink)
	return Measurement{
		Threads: o.Threads, Bytes: total, Iters: o.Iters,
		ReadBytesPerSec: float64(total) / median(rt).Seconds(),
		CopyBytesPerSec: 2 * float64(total) / median(ct).Seconds(),
		ReadMinMs:       ms(slices.Min(rt)), ReadMaxMs: ms(slices.Max(rt)),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func timeIt(ctx context.Context, o Options, f func()) ([]time.Duration, error) {
	var out []time.Duration
	for i := range o.Warmup + o.Iters {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("cpu probe: %w", err)
		}
		t := time.Now()
		f()
		if i >= o.Warmup {
			out = append(out, time.Since(t))
		}
	}
	return out, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func parallel(n int, f func(t int)) {
	var wg sync.WaitGroup
	for t := range n {
		wg.Go(func() { f(t) })
	}
	wg.Wait()
}

// sum reads every word with eight independent accumulators, enough loads in
// flight that one core outruns its share of DRAM bandwidth.
func sum(v []uint64) uint64 {
	var a, b, c, d, e, f, g, h uint64
	for i := 0; i+8 <= len(v); i += 8 {
		w := (*[8]uint64)(unsafe.Pointer(&v[i]))
		a += w[0]
		b += w[1]
		c += w[2]
		d += w[3]
		e += w[4]
		f += w[5]
		g += w[6]
		h += w[7]
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h
}
