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
	py, err := enginetest.TorchPython("torch")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("under CI: %v", err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	require.NoError(t, Write(dir))
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
	cmd := exec.Command(py, "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
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
