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
func runPython(t *testing.T, script string) []byte {
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
	cmd := exec.Command(py, "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return out
}
