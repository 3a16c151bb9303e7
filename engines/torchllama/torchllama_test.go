package torchllama

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

// TestWrite: an engine gets the embedded files as they are; Sum changes with any of them.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	b, err := os.ReadFile(filepath.Join(dir, "llama.py"))
	require.NoError(t, err)
	require.Equal(t, Source(), b)
	require.Contains(t, string(b), "class Llama(nn.Module)")
	k, err := os.ReadFile(filepath.Join(dir, "kernels.py"))
	require.NoError(t, err)
	require.Contains(t, string(k), "def kernel_configs(")
	// Sum is over what Write wrote: name and SHA-256 of each file, in name order.
	h := sha256.New()
	for _, n := range []string{"kernels.py", "llama.py"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(b))
	}
	sum := Sum()
	require.Equal(t, h.Sum(nil), sum[:])
}

// TestAOTIKernelConfigs: aoti_kernel_configs reads AOTInductor's kernel parameter cache (torch's own class, filled
// here as its Triton launcher would on a GPU: one entry per kernel, a later compilation replacing a name) and reports
// only what was compiled after the mark, in kernel_configs' format.
func TestAOTIKernelConfigs(t *testing.T) {
	script := `
import json, sys
from torch._inductor.codecache import CudaKernelParamCache as C
import kernels
C.cache.clear()
C.cache["triton_red_fused_mm_0"] = {"config": {"XBLOCK": 1, "R0_BLOCK": 2048, "num_warps": 16, "num_stages": 1}}
C.cache["triton_poi_fused_1"] = {"config": {"XBLOCK": 512, "num_warps": 4, "num_stages": 1}}
mark = kernels.aoti_mark()
C.cache["triton_red_fused_mm_0"] = {"config": {"XBLOCK": 2, "R0_BLOCK": 1024, "num_warps": 8, "num_stages": 1, "num_consumer_groups": 0, "num_buffers_warp_spec": 0}}
C.cache["triton_red_fused_add_2"] = {"config": {"XBLOCK": 1, "R0_BLOCK": 4096, "num_warps": 32, "num_stages": 2}}
print(kernels.aoti_kernel_configs(since=mark))
print(kernels.aoti_kernel_configs())
`
	out := runPython(t, script)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2, "%s", out)
	var since, all map[string]string
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &since))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &all))
	require.Equal(t, map[string]string{
		"triton_red_fused_mm_0":  "R0_BLOCK=1024,XBLOCK=2,num_warps=8,num_stages=1",
		"triton_red_fused_add_2": "R0_BLOCK=4096,XBLOCK=1,num_warps=32,num_stages=2",
	}, since)
	require.Len(t, all, 3)
	require.Equal(t, "XBLOCK=512,num_warps=4,num_stages=1", all["triton_poi_fused_1"])
}

// TestTuningCache: tuning_cache sorts the Triton kernels of Inductor's loaded modules (PyCodeCache's own list, given
// here modules whose autotuners stand in for the ones Triton builds on a GPU: a launcher config and Inductor's
// autotune_cache_info) by where their configuration came from — a cache hit kept, a hit tuned again, a miss tuned in
// the process, a kernel with one candidate, one with the autotune cache off — one graph's, and two graphs' added up.
func TestTuningCache(t *testing.T) {
	script := `
import json, types
from torch._inductor.codecache import PyCodeCache
import kernels

class Config:
    def __init__(self, kwargs, num_warps, num_stages):
        self.kwargs, self.num_warps, self.num_stages = kwargs, num_warps, num_stages

def kernel(name, state, cached=None, now=None):
    o = types.SimpleNamespace(fn=types.SimpleNamespace(__name__=name), launchers=[types.SimpleNamespace(config=now)],
                              autotune_cache_info={"autotune_cache_state": state})
    if cached is not None:
        o.autotune_cache_info["best_config"] = tuple(sorted(cached.kwargs.items())) + (("num_warps", cached.num_warps), ("num_stages", cached.num_stages))
    return o

a = Config({"XBLOCK": 4, "R0_BLOCK": 512}, 16, 1)
b = Config({"XBLOCK": 1, "R0_BLOCK": 2048}, 16, 1)
m1 = types.ModuleType("graph1")
m1.k_hit = kernel("triton_red_fused_mm_9", "hit", a, Config(dict(a.kwargs), 16, 1))
m1.k_retuned = kernel("triton_red_fused_mm_8", "hit", a, b)
m1.k_miss = kernel("triton_red_fused_mm_1", "miss", None, b)
m1.not_a_kernel = 3
m2 = types.ModuleType("graph2")
m2.k_one = kernel("triton_poi_fused_2", "only 1 config", None, a)
m2.k_miss = kernel("triton_red_fused_mm_1", "miss", None, a)
m2.k_off = kernel("triton_red_fused_mm_3", "miss", None, a)
m2.k_off.autotune_cache_info = {}  # Inductor's autotune cache off (tuning=per-process): no state at all
PyCodeCache.modules.extend([m1, m2])
print(kernels.tuning_cache([("b1-s384/", {id(m1)})]))
print(kernels.tuning_cache([("b1-s384/", {id(m1)}), ("b1-s2048/", {id(m2)})]))
`
	out := runPython(t, script)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 2, "%s", out)
	type cache struct {
		Hit     int            `json:"hit"`
		Retuned []string       `json:"retuned"`
		Tuned   []string       `json:"tuned"`
		Other   map[string]int `json:"other"`
	}
	var g1, all cache
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &g1))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &all))
	assert.Equal(t, cache{Hit: 1, Retuned: []string{"b1-s384/triton_red_fused_mm_8"}, Tuned: []string{"b1-s384/triton_red_fused_mm_1"},
		Other: map[string]int{}}, g1)
	assert.Equal(t, cache{Hit: 1, Retuned: []string{"b1-s384/triton_red_fused_mm_8"},
		Tuned: []string{"b1-s2048/triton_red_fused_mm_1", "b1-s384/triton_red_fused_mm_1"}, Other: map[string]int{"only 1 config": 1, "no autotune cache": 1}}, all)
}

// TestKeepCoordescMark: a launch configuration pickled the way Inductor's compile workers send kernels back loses
// the coordinate-descent mark under a __setstate__ that restores only its own fields, as Triton 3.6's Config does
// (the class here is that method's copy: the cpu venv has no Triton); keep_coordesc_mark mends the class once (a
// second call does not wrap it again), the mark then survives and an unmarked configuration stays unmarked; a class
// with default unpickling needs no mending; without Triton the default call says nothing was mended.
func TestKeepCoordescMark(t *testing.T) {
	script := `
import json, pickle
import llama

class Config:  # triton/runtime/autotuner.py, Triton 3.6.0: __init__ and __setstate__
    def __init__(self, kwargs, num_warps=4, num_stages=3, num_ctas=1, maxnreg=None, pre_hook=None, ir_override=None):
        self.kwargs, self.num_warps, self.num_stages, self.num_ctas = kwargs, num_warps, num_stages, num_ctas
        self.maxnreg, self.pre_hook, self.ir_override = maxnreg, pre_hook, ir_override
    def __setstate__(self, state):
        self.kwargs = state.get("kwargs", {})
        self.num_warps = state.get("num_warps", 4)
        self.num_stages = state.get("num_stages", 3)
        self.num_ctas = state.get("num_ctas", 1)
        self.maxnreg = state.get("maxnreg", None)
        self.pre_hook = state.get("pre_hook", None)
        self.ir_override = state.get("ir_override", None)

class Plain:
    def __init__(self):
        self.kwargs = {}

def trip(c):
    return pickle.loads(pickle.dumps(c))

out = {}
c = Config({"XBLOCK": 4, "R0_BLOCK": 512}, num_warps=16, num_stages=1)
c.found_by_coordesc = True
out["before"] = getattr(trip(c), "found_by_coordesc", False)
out["mended"] = llama.keep_coordesc_mark(Config)
wrapped = Config.__dict__["__setstate__"]
out["again"] = llama.keep_coordesc_mark(Config) and Config.__dict__["__setstate__"] is wrapped
r = trip(c)
out["after"] = getattr(r, "found_by_coordesc", False)
out["fields"] = [r.kwargs, r.num_warps, r.num_stages]
out["unmarked"] = getattr(trip(Config({"XBLOCK": 1})), "found_by_coordesc", False)
p = Plain()
p.found_by_coordesc = True
out["plain"] = [llama.keep_coordesc_mark(Plain), "__setstate__" in Plain.__dict__, trip(p).found_by_coordesc]
try:
    import triton
    out["triton"] = True
except ImportError:
    out["triton"] = False
    out["default"] = llama.keep_coordesc_mark()
print(json.dumps(out))
`
	out := runPython(t, script)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:], &got), "%s", out)
	assert.Equal(t, false, got["before"], "Triton 3.6's __setstate__ drops the mark: the mechanism this mends")
	assert.Equal(t, true, got["mended"])
	assert.Equal(t, true, got["again"], "mended once")
	assert.Equal(t, true, got["after"])
	assert.Equal(t, []any{map[string]any{"R0_BLOCK": float64(512), "XBLOCK": float64(4)}, float64(16), float64(1)}, got["fields"])
	assert.Equal(t, false, got["unmarked"])
	assert.Equal(t, []any{true, false, true}, got["plain"])
	if got["triton"] == false {
		assert.Equal(t, false, got["default"], "no Triton: nothing to mend")
	}
}

// TestSetTuning: what each tuning option sets in Inductor's config (fresh processes: it is process-wide) — cached
// leaves Triton kernels out of the FX graph bundle and keeps the autotune cache, and with refine=in-graph gets a cache
// of its own; per-process keeps the bundle and turns the autotune cache off (every process tunes every kernel: an
// independent draw that neither reads an earlier tuning nor leaves one for a later process); an unknown name is
// refused — and cache_namespace moves the process's Inductor cache into a subdirectory, where torch then files FX
// graphs and kernels, once however often it is called.
func TestSetTuning(t *testing.T) {
	script := `
import json, os, sys, tempfile
import torch, llama
from torch._inductor import config
from torch._inductor.runtime.cache_dir_utils import cache_dir
from torch._inductor.codecache import FxGraphCache
base = tempfile.mkdtemp()
os.environ["TORCHINDUCTOR_CACHE_DIR"] = base
own = llama.set_tuning(sys.argv[1], "in-graph")
out = {k: getattr(config, k) for k in ("bundle_triton_into_fx_graph_cache", "autotune_local_cache", "autotune_remote_cache")}
out["own"] = own and os.path.relpath(own, base)
d = llama.cache_namespace("refine-in-graph")
out["namespace"] = os.path.relpath(d, base)
out["again"] = os.path.relpath(llama.cache_namespace("refine-in-graph"), base)
out["cache_dir"] = os.path.relpath(cache_dir(), base)
out["fxgraph"] = os.path.relpath(FxGraphCache._get_tmp_dir(), base)
print(json.dumps(out))
`
	run := func(name string) map[string]any {
		out := runPython(t, script, name)
		var got map[string]any
		require.NoError(t, json.Unmarshal(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:], &got), "%s", out)
		return got
	}
	cached := run("cached")
	assert.Equal(t, false, cached["bundle_triton_into_fx_graph_cache"])
	assert.Equal(t, true, cached["autotune_local_cache"])
	per := run("per-process")
	assert.NotEqual(t, false, per["bundle_triton_into_fx_graph_cache"], "torch's default bundle")
	assert.Equal(t, false, per["autotune_local_cache"])
	assert.Equal(t, false, per["autotune_remote_cache"])
	assert.Equal(t, "refine-in-graph", cached["own"], "cached tuning with refine=in-graph: its own cache")
	assert.Nil(t, per["own"], "per-process reads and writes no tuning: no cache of its own")
	for _, got := range []map[string]any{cached, per} {
		assert.Equal(t, "refine-in-graph", got["namespace"])
		assert.Equal(t, "refine-in-graph", got["again"], "not refine-in-graph/refine-in-graph")
		assert.Equal(t, "refine-in-graph", got["cache_dir"])
		assert.Equal(t, filepath.Join("refine-in-graph", "fxgraph"), got["fxgraph"])
	}

	py, err := enginetest.TorchPython("torch")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	cmd := exec.Command(py, "-c", "import llama; llama.set_tuning('fresh')")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "tuning 'fresh': want one of cached, per-process")
}

// TestRefineKernels: refine_kernels' search, with the decode step's time given by a model of it (on a GPU it is a
// CUDA graph's replays) and kernels standing in for Inductor's (a launcher config and the autotune cache's save hook):
// per GEMV kernel, XBLOCK 1-8 then half and twice the warps, a change only when the step is faster by the gain
// (1 µs of 1000 is not), a configuration that fails to build passed over, kernels without "mm" left alone, each
// change kept as the kernel's launcher and saved marked as coordinate descent's own.
func TestRefineKernels(t *testing.T) {
	script := `
import json, types
import llama

class Config:
    def __init__(self, kwargs, num_warps=4, num_stages=1):
        self.kwargs, self.num_warps, self.num_stages = kwargs, num_warps, num_stages

saved = []
def kernel(x, r, w):
    o = types.SimpleNamespace(launchers=[types.SimpleNamespace(config=Config({"XBLOCK": x, "R0_BLOCK": r}, w))])
    o.save_cache_hook = lambda cfg, t, found_by_coordesc=False: saved.append((cfg.kwargs["XBLOCK"], cfg.num_warps, found_by_coordesc, getattr(cfg, "found_by_coordesc", False)))
    return o

down, qkv, norm, wo = kernel(1, 2048, 16), kernel(2, 1024, 8), kernel(1, 512, 4), kernel(2, 2048, 8)
cost = {  # µs each configuration adds to the step: down is best at XBLOCK 4 with 8 warps, qkv where it is
    "down": {(1, 16): 300, (2, 16): 250, (4, 16): 200, (8, 16): 260, (4, 8): 180, (4, 32): 220},
    "qkv": {(1, 8): 120, (2, 8): 100, (4, 8): 101, (2, 4): 130, (2, 16): 110},
    "wo": {(1, 8): 60, (2, 8): 60, (4, 8): 59.5, (2, 4): 61, (2, 16): 60.2},
}
objs = {"down": down, "qkv": qkv, "wo": wo}
def step():
    return 400 + sum(cost[n][(o.launchers[0].config.kwargs["XBLOCK"], o.launchers[0].config.num_warps)] for n, o in objs.items())
def build(obj, cfg):
    if cfg.kwargs["XBLOCK"] == 8 and obj is qkv:
        raise RuntimeError("out of resources: shared memory")
    return types.SimpleNamespace(config=cfg)
ks = [("triton_red_fused_mm_mul_silu_9", down), ("triton_red_fused__to_copy_mm_rsqrt_1", qkv),
      ("triton_red_fused_mean_pow_3", norm), ("triton_red_fused_add_mm_t_20", wo)]
changed = llama.refine_kernels(ks, step, build, Config, gain=0.005)
print(json.dumps({"changed": changed, "saved": saved, "step": step(),
    "down": [down.launchers[0].config.kwargs["XBLOCK"], down.launchers[0].config.num_warps],
    "qkv": [qkv.launchers[0].config.kwargs["XBLOCK"], qkv.launchers[0].config.num_warps],
    "wo": [wo.launchers[0].config.kwargs["XBLOCK"], wo.launchers[0].config.num_warps],
    "norm": norm.launchers[0].config.kwargs["XBLOCK"]}))
`
	out := runPython(t, script)
	var got struct {
		Changed map[string]string `json:"changed"`
		Saved   [][]any           `json:"saved"`
		Step    float64           `json:"step"`
		Down    []int             `json:"down"`
		Qkv     []int             `json:"qkv"`
		Wo      []int             `json:"wo"`
		Norm    int               `json:"norm"`
	}
	require.NoError(t, json.Unmarshal(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:], &got), "%s", out)
	assert.Equal(t, []int{4, 8}, got.Down, "XBLOCK 4, then half the warps")
	assert.Equal(t, []int{2, 8}, got.Qkv, "already best; XBLOCK 8 failed to build and was passed over")
	assert.Equal(t, []int{2, 8}, got.Wo, "0.5 µs of ~880 is under the gain")
	assert.Equal(t, 1, got.Norm, "no matmul: left alone")
	assert.Equal(t, 400.0+180+100+60, got.Step)
	assert.Equal(t, map[string]string{"triton_red_fused_mm_mul_silu_9": "R0_BLOCK=2048,XBLOCK=1,num_warps=16 -> R0_BLOCK=2048,XBLOCK=4,num_warps=8: step 860.0 -> 740.0 us"}, got.Changed)
	assert.Equal(t, [][]any{{float64(4), float64(8), true, true}}, got.Saved)
}

// TestCompileOptions: each compile setting's torch.compile arguments as llama.py builds them for a cuda device (a
// torch.device object needs no GPU): inductor-thorough is inductor plus the wider coordinate-descent search, the
// cpu gets no cuda-only Inductor options, and an unknown name is refused.
func TestCompileOptions(t *testing.T) {
	script := `
import json, torch, llama
cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
out = {n: llama.compile_options(cuda, n) for n in llama.COMPILE_SETTINGS}
out["cpu-inductor-thorough"] = llama.compile_options(cpu, "inductor-thorough")
out["cpu-inductor-pdl"] = llama.compile_options(cpu, "inductor-pdl")
try:
    llama.compile_options(cuda, "jit")
    out["unknown"] = "accepted"
except ValueError as e:
    out["unknown"] = str(e)
print(json.dumps(out))
`
	out := runPython(t, script)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:], &got), "%s", out)
	opts := func(name string) map[string]any {
		kw, ok := got[name].(map[string]any)
		require.True(t, ok, "%s: %v", name, got[name])
		o, _ := kw["options"].(map[string]any)
		return o
	}
	base := map[string]any{"coordinate_descent_tuning": true, "triton.unique_kernel_names": true}
	assert.Equal(t, base, opts("inductor"))
	assert.Equal(t, map[string]any{"coordinate_descent_tuning": true, "triton.unique_kernel_names": true,
		"coordinate_descent_check_all_directions": true, "coordinate_descent_search_radius": float64(2),
		"max_autotune_pointwise": true}, opts("inductor-thorough"))
	assert.Equal(t, map[string]any{"coordinate_descent_tuning": true, "triton.unique_kernel_names": true, "max_autotune": true}, opts("max-autotune"))
	assert.Equal(t, map[string]any{"coordinate_descent_tuning": true, "triton.unique_kernel_names": true, "triton.enable_pdl": true}, opts("inductor-pdl"))
	assert.Equal(t, false, opts("inductor-cublas")["coordinate_descent_tuning"])
	assert.Empty(t, opts("cpu-inductor-thorough"), "cuda-only Inductor options on the cpu")
	assert.Empty(t, opts("cpu-inductor-pdl"), "cuda-only Inductor options on the cpu")
	assert.Nil(t, got["none"])
	assert.Equal(t, "aot_eager", got["aot_eager"].(map[string]any)["backend"])
	assert.Contains(t, got["unknown"], "unknown compile setting")
}

// runPython runs script with the torch venv's Python in a directory holding the embedded modules (llama.py,
// kernels.py) and returns its output; it skips without torch, except under CI.
func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	py, err := enginetest.TorchPython("torch")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("under CI: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return out
}
