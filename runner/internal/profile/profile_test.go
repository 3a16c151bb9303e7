package profile

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

var update = flag.Bool("update", false, "rewrite the synthetic activity files in testdata/synthetic")

// encoder writes the format of profiler/README.md, for synthetic fixtures.
type encoder struct{ b bytes.Buffer }

func newEncoder(pid, ppid int, exe string) *encoder {
	e := &encoder{}
	e.b.WriteString(Magic)
	p := le(uint32(FormatVersion), uint32(pid), uint32(ppid), uint32(130001), uint64(1e9), uint64(1.7e18))
	e.rec(recHeader, 0, append(p, exe...))
	return e
}

func le(vs ...any) []byte {
	var b bytes.Buffer
	for _, v := range vs {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

func (e *encoder) rec(typ, sub byte, p []byte) {
	e.b.Write([]byte{typ, sub, 0, 0})
	e.b.Write(le(uint32(len(p))))
	e.b.Write(p)
}

func (e *encoder) name(id uint32, s string) { e.rec(recName, 0, append(le(id), s...)) }
func (e *encoder) kernel(start, end int64, name, stream, corr, graph uint32) {
	e.rec(recKernel, 0, le(uint64(start), uint64(end), name, stream, corr, graph))
}
func (e *encoder) copy(typ, kind byte, start, end int64, bytes uint64, corr uint32) {
	e.rec(typ, kind, le(uint64(start), uint64(end), bytes, uint32(7), corr, uint32(0), uint32(0)))
}

const (
	ms = int64(1e6)
	t0 = int64(1e9) // iteration start on CLOCK_MONOTONIC
)

const (
	silu      = "_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11silu_kernelEEEvv"
	gemv      = "gemv2T_kernel_bf16"
	norm      = "_Z11rmsnorm_fwdPKfPf"
	tritonAdd = "triton_poi_fused_add_0"
)

// fixtures builds two processes of one launch: pid 1000 exits cleanly and
// does all the work of one iteration (prefill copy and gemm, 3 decode steps of
// elementwise + gemv on two streams + a graph-launched norm, a DtoH per
// step); pid 1001 (a child, Go-style exit: no trailer, last flush at t0+400
// ms) adds one kernel to decode step 0.
func fixtures() map[string][]byte {
	a := newEncoder(1000, 999, "/opt/torch/.venv/bin/python3.12")
	a.name(1, silu)
	a.name(2, gemv)
	a.name(3, norm)
	a.copy(recMemcpy, CopyHtoD, t0+ms/2, t0+ms, 1<<20, 1)
	a.kernel(t0+1*ms, t0+9*ms, 2, 7, 2, 0) // prefill gemv
	for j := int64(0); j < 3; j++ {
		s := t0 + 10*ms + j*10*ms
		a.kernel(s+1*ms, s+3*ms, 1, 7, uint32(10+j), 0)
		a.kernel(s+2*ms, s+6*ms, 2, 8, uint32(20+j), 0)
		a.kernel(s+7*ms, s+8*ms, 3, 7, uint32(100+j), 5)
		a.copy(recMemcpy, CopyDtoH, s+9*ms, s+9*ms+ms/10, 8, uint32(30+j))
	}
	a.copy(recMemset, 0, t0+12*ms, t0+12*ms+ms/10, 64, 40)
	a.rec(recFlush, 0, le(uint64(t0+50*ms)))
	a.rec(recDropped, 1, le(uint64(3)))
	a.rec(recTrailer, 0, le(uint64(t0+60*ms), uint64(15)))

	b := newEncoder(1001, 1000, "/opt/torch/.venv/bin/python3.12")
	b.rec(recWarning, 0, []byte("libcupti API version 130001, built against 130001: fine"))
	b.name(1, tritonAdd)
	b.kernel(t0+16*ms, t0+17*ms, 1, 9, 1, 0)
	b.rec(recFlush, 0, le(uint64(t0+400*ms)))
	return map[string][]byte{"cupti-1000.bin": a.b.Bytes(), "cupti-1001.bin": b.b.Bytes()}
}

func TestFixturesUpToDate(t *testing.T) {
	dir := filepath.Join("testdata", "synthetic")
	for name, want := range fixtures() {
		path := filepath.Join(dir, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the test's encoder: run go test -update", path)
		}
	}
}

func TestReadDir(t *testing.T) {
	ts, err := ReadDir(filepath.Join("testdata", "synthetic"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("ReadDir = %d traces, want 2", len(ts))
	}
	a, b := ts[0], ts[1]
	if a.PID != 1000 || a.PPID != 999 || a.CUPTIVersion != 130001 || !a.Clean || a.Exe != "/opt/torch/.venv/bin/python3.12" {
		t.Errorf("trace 0 header = pid %d ppid %d cupti %d clean %v exe %q", a.PID, a.PPID, a.CUPTIVersion, a.Clean, a.Exe)
	}
	if len(a.Kernels) != 10 || len(a.Memcpys) != 4 || len(a.Memsets) != 1 || a.Names[1] != silu || a.Dropped["pool"] != 3 {
		t.Errorf("trace 0 = %d kernels, %d memcpys, %d memsets, name 1 %q, dropped %v", len(a.Kernels), len(a.Memcpys), len(a.Memsets), a.Names[1], a.Dropped)
	}
	if b.Clean || b.LastFlushNs != t0+400*ms || len(b.Warnings) != 1 || b.Truncated {
		t.Errorf("trace 1 = clean %v, last flush %d, warnings %v, truncated %v", b.Clean, b.LastFlushNs, b.Warnings, b.Truncated)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := fixtures()["cupti-1000.bin"]
	tests := []struct {
		name string
		in   []byte
		ok   bool
		torn bool
	}{
		{name: "complete", in: good, ok: true},
		{name: "torn last record", in: good[:len(good)-3], ok: true, torn: true},
		{name: "bad magic", in: append([]byte("XXXXXXXX"), good[8:]...)},
		{name: "no header", in: []byte(Magic)},
		{name: "kernel first", in: append([]byte(Magic), good[len(good)-24:]...)},
		{name: "empty", in: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := DecodeTrace(bytes.NewReader(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("DecodeTrace() error = %v, want ok %v", err, tt.ok)
			}
			if err == nil && tr.Truncated != tt.torn {
				t.Errorf("DecodeTrace().Truncated = %v, want %v", tr.Truncated, tt.torn)
			}
		})
	}
}

func TestAnalyze(t *testing.T) {
	ts, err := ReadDir(filepath.Join("testdata", "synthetic"))
	if err != nil {
		t.Fatal(err)
	}
	ws := []Window{
		{Case: 0, Start: t0, FirstToken: t0 + 10*ms, LastToken: t0 + 40*ms, End: t0 + 41*ms, Steps: 4, Batch: 1},
		// ends after pid 1001's last flush − FlushGrace: left out
		{Case: 0, Start: t0 + 100*ms, FirstToken: t0 + 110*ms, LastToken: t0 + 140*ms, End: t0 + 160*ms, Steps: 4, Batch: 1},
	}
	l := Analyze(ts, ws)
	if len(l.Cases) != 1 {
		t.Fatalf("Analyze() cases = %d, want 1", len(l.Cases))
	}
	c := l.Cases[0]
	if c.Iterations != 1 || c.Uncovered != 1 {
		t.Errorf("iterations %d uncovered %d, want 1 and 1", c.Iterations, c.Uncovered)
	}
	// Decode [t0+10, t0+40) ms, 3 steps: step 0 busy [11,18] = 7 ms (silu
	// [11,13], gemv [12,16], add [16,17], norm [17,18]); steps 1, 2: [1,6] ∪ [7,8] = 6 ms.
	d := c.Decode
	want := Phase{Steps: 3, WallNs: 30 * ms, BusyNs: 19 * ms, Kernels: 10, KernelNs: 22 * ms, GraphLaunches: 3, GraphKernels: 3,
		Memcpys: 3, MemcpyBytes: 24, MemcpyNs: 3 * ms / 10, DtoH: 3, Memsets: 1}
	got := d
	got.Top = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode phase =\n%+v\nwant\n%+v", got, want)
	}
	if d.IdleNs() != 11*ms || d.PerStep(d.Kernels) != 10.0/3 {
		t.Errorf("idle %d, kernels per step %v", d.IdleNs(), d.PerStep(d.Kernels))
	}
	wantTop := []string{"gemv2T_kernel_bf16", "vectorized_elementwise_kernel<silu_kernel>", "rmsnorm_fwd", "triton_poi_fused_add_0"}
	var names []string
	for _, s := range d.Top {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, wantTop) || d.Top[0].Ns != 12*ms || d.Top[0].Count != 3 {
		t.Errorf("decode top = %+v, want names %v, gemv 12 ms × 3", d.Top, wantTop)
	}
	it := c.Iteration
	if it.Steps != 4 || it.WallNs != 41*ms || it.BusyNs != 27*ms || it.Kernels != 11 || it.Memcpys != 4 || it.HtoD != 1 || it.MemcpyBytes != 1<<20+24 {
		t.Errorf("iteration phase = %+v", it)
	}
	if len(l.Processes) != 2 || l.Processes[0].Dropped["pool"] != 3 || len(l.Warnings) != 3 {
		t.Errorf("processes %+v, warnings %q (want the drop, the library warning, the left-out iteration)", l.Processes, l.Warnings)
	}
}

func TestAnalyzeNothing(t *testing.T) {
	l := Analyze(nil, []Window{{Start: 0, End: 10, FirstToken: 1, LastToken: 9, Steps: 2}})
	if len(l.Warnings) != 1 || len(l.Cases) != 1 || l.Cases[0].Iterations != 1 || l.Cases[0].Decode.BusyNs != 0 {
		t.Errorf("Analyze(nil) = %+v", l)
	}
}

func TestWindows(t *testing.T) {
	mk := func(warm bool, start, end, arrived int64) results.Iteration {
		return results.Iteration{ArrivedNs: arrived, Raw: protocol.Iteration{Warmup: warm, StartNs: start, EndNs: end, TokenNs: []int64{2, 5, end}, OutputTokens: [][]int{{1, 2, 3}}}}
	}
	// The engine clock runs 1000 ns behind the runner's (after spawn): lag
	// is 1000 + 30 for the first, 1000 + 10 (the smallest) for the second.
	its := []results.Iteration{mk(true, 100, 50, 1180), mk(false, 200, 40, 1250), mk(false, 300, 60, 1400)}
	got := Windows(its, 5000)
	want := []Window{
		{Start: 6210, FirstToken: 6212, LastToken: 6250, End: 6250, Steps: 3, Batch: 1},
		{Start: 6310, FirstToken: 6312, LastToken: 6370, End: 6370, Steps: 3, Batch: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Windows() = %+v, want %+v", got, want)
	}
}

func TestShortName(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "generic template gets its functor", in: silu, want: "vectorized_elementwise_kernel<silu_kernel>"},
		{name: "pytorch lambda functor", in: "_ZN2at6native29vectorized_elementwise_kernelILi4EZZZNS0_16silu_kernel_cudaERNS_18TensorIteratorBaseEENKUlvE_clEvENKUlvE2_clEvEUlN3c108BFloat16EE_St5arrayIPcLm2EEEEviT0_T1_", want: "vectorized_elementwise_kernel<silu_kernel_cuda>"},
		{name: "pytorch reduce", in: "_ZN2at6native13reduce_kernelILi512ELi1ENS0_8ReduceOpIN3c108BFloat16ENS0_14func_wrapper_tIS4_ZNS0_11sum_functorIS4_fS4_EclERNS_14TensorIteratorEEUlffE_EEjS4_Li4ELi4EEEEEvT1_", want: "reduce_kernel<sum_functor>"},
		{name: "flash attention", in: "_ZN5flash24flash_fwd_splitkv_kernelI23Flash_fwd_kernel_traitsILi64ELi64ELi256ELi4ELb0ELb0EN7cutlass10bfloat16_tE19Flash_kernel_traitsILi64ELi64ELi256ELi4ES2_EELb1ELb0ELb0ELb0ELb1ELb1ELb0ELb0EEEv16Flash_fwd_params", want: "flash::flash_fwd_splitkv_kernel"},
		{name: "plain function", in: norm, want: "rmsnorm_fwd"},
		{name: "nested with anonymous namespace", in: "_ZN5flash12_GLOBAL__N_116flash_fwd_kernelILi128EEEvNS_6ParamsE", want: "flash::flash_fwd_kernel"},
		{name: "std scope", in: "_ZNSt6vectorIiE4sortEv", want: "vector::sort"},
		{name: "unmangled cuBLAS", in: "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas", want: "sm90_xmma_gemm_bf16bf16_bf16f32_f32_t…_kernel__5x_cublas"},
		// Two of Inductor's kernels on the Llama-3-8B (H200, 2026-12-02): the same first 60 characters, different
		// kernels (a cut at the end grouped them as one).
		{name: "triton, long", in: "triton_red_fused__to_copy__unsafe_view_add_mean_mm_mul_pow_rsqrt_t_view_16",
			want: "triton_red_fused__to_copy__unsafe_vie…ow_rsqrt_t_view_16"},
		{name: "triton, long, another", in: "triton_red_fused__to_copy__unsafe_view_add_mean_mm_mul_pow_rsqrt_view_17",
			want: "triton_red_fused__to_copy__unsafe_vie…_pow_rsqrt_view_17"},
		{name: "triton", in: tritonAdd, want: tritonAdd},
		{name: "empty", in: "", want: "(unknown)"},
		{name: "garbage after _Z", in: "_Z999", want: "_Z999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ShortName(tt.in); got != tt.want {
				t.Errorf("ShortName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
