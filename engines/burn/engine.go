package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/engines/burn/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// bestPractice says how the engine runs Burn, as its authors recommend.
const bestPractice = "Burn 0.22 tensor API (dispatch Device), HF safetensors loaded with burn-store's SafetensorsStore " +
	"(FloatCastAdapter to the compute dtype). CUDA: cubecl CUDA backend with the fusion and autotune features " +
	"(burn-cuda's defaults), kernels generated as CUDA C++ and JIT-compiled by NVRTC on first use (cubecl-cuda's cpp " +
	"compiler; 0.11's default LLVM compiler needs a build-time LLVM download) and autotuned at cubecl's default level; " +
	"warm-up iterations absorb compilation and autotune. CPU: Burn's flex backend (pure Rust, simd + rayon; " +
	"ndarray is deprecated in 0.22), f32. Weights kept in HF [out,in] layout and multiplied as x·Wᵀ, the layout " +
	"cubecl's vec-mat autotune prefers; RMSNorm and softmax in f32; preallocated KV cache updated with slice_assign; " +
	"greedy argmax on device with one host read per token."

// bridgeLib is the hash of the linked static library (set by scripts/build-burn.sh).
var bridgeLib = "unknown"

type engine struct{}

func (engine) Info() protocol.Info {
	info := protocol.Info{
		Name:    "burn",
		Library: "burn",
		Devices: []string{"cpu"},
		DTypes:  []string{"f32"},
		Options: map[string]string{
			"attention": "grouped|padded|fused: grouped (default) = grouped-query matmuls over the KV cache with f32 softmax; " +
				"padded = the same over the whole fixed-size cache with a position mask (every decode step has one shape); " +
				"fused = burn::tensor::module::attention (flash attention on CUDA) with K/V heads repeated",
			"autotune_level": "minimal|balanced|extensive|full (cuda builds with autotune; default: cubecl's, balanced, or " +
				"$CUBECL_AUTOTUNE_LEVEL): cubecl's [autotune] level — minimal is what burn users pick for short first runs",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            1,
			StreamingTimestamps: true,
		},
		BestPractice: bestPractice,
		Versions:     map[string]string{"go": runtime.Version()},
	}
	bi, err := bridge.Info()
	if err != nil {
		info.LibraryVersion = "unavailable: " + err.Error()
		return info
	}
	info.LibraryVersion = bi.Burn
	info.Versions["cubecl"] = bi.CubeCL
	info.Versions["rustc"] = bi.Rustc
	info.Versions["bridge_lib_sha256"] = bridgeLib
	if bi.CUDA {
		info.Devices = append(info.Devices, "cuda")
		info.DTypes = append(info.DTypes, "f16", "bf16")
		info.Capabilities.AllocatorStats = true
	}
	return info
}

// autotuneLevels are cubecl's [autotune] levels (cubecl-runtime config/autotune.rs).
var autotuneLevels = []string{"minimal", "balanced", "extensive", "full"}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	if lv, ok := req.Options["autotune_level"]; ok {
		if !slices.Contains(autotuneLevels, lv) {
			return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("option autotune_level=%q: want %s", lv, strings.Join(autotuneLevels, ", ")))
		}
		if bi, err := bridge.Info(); err != nil || !bi.CUDA || !bi.Autotune || !strings.HasPrefix(req.Device, "cuda") {
			return nil, protocol.Loaded{}, serve.Unsupported(errors.New("option autotune_level needs a cuda device and a build with autotune (scripts/build-burn.sh --cuda)"))
		}
		// cubecl reads its config, this variable included, when the runtime starts: in bridge.Load below.
		if err := os.Setenv("CUBECL_AUTOTUNE_LEVEL", lv); err != nil {
			return nil, protocol.Loaded{}, err
		}
	}
	m, l, err := bridge.Load(req.Model, req.Device, req.DType, req.Threads, req.Options["attention"])
	if err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	d, err := m.Describe()
	if err != nil {
		m.Close()
		return nil, protocol.Loaded{}, err
	}
	if bi, err := bridge.Info(); err == nil && bi.Autotune && strings.HasPrefix(req.Device, "cuda") {
		// Read by the runner's report (analysis.SettingSharedTuning): launches after the first reuse cubecl's stored tuning.
		if d.Settings == nil {
			d.Settings = map[string]string{}
		}
		d.Settings["shared_tuning"] = "cubecl's autotune results, made by the first process that meets each shape and kept in its persistent store"
	}
	return &model{m: m}, protocol.Loaded{
		ContextInitNs:     l.ContextInitNs,
		WeightsToHostNs:   l.WeightsToHostNs,
		WeightsToDeviceNs: l.WeightsToDeviceNs,
		CompileNs:         l.CompileNs,
		DeviceName:        d.DeviceName,
		DType:             d.DType,
		Params:            l.Params,
		Settings:          d.Settings,
	}, nil
}

// classify maps a bridge error onto the protocol's error classes.
func classify(err error) error {
	var be *bridge.Error
	if !errors.As(err, &be) {
		return err
	}
	switch {
	case be.BadRequest():
		return serve.BadRequest(err)
	case be.Unsupported():
		return serve.Unsupported(err)
	case be.OOM():
		return serve.OOM(err)
	}
	return err
}

type model struct {
	m *bridge.Model
}

func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	if !c.Greedy {
		return serve.Unsupported(fmt.Errorf("case %s: only greedy decoding is implemented", c.Name))
	}
	ids, offsets, reserved, err := m.m.Generate(c.PromptTokens, c.MaxNewTokens)
	if err != nil {
		return classify(fmt.Errorf("generate: %w", err))
	}
	for i, id := range ids {
		rec.StepAt(offsets[i], id)
	}
	rec.PeakAlloc(reserved)
	return nil
}

func (m *model) Close() error { return m.m.Close() }
