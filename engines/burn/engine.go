package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

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
		// A store of its own per level (cubecl environment <root>/autotune-LEVEL.db): cubecl's persistent autotune
		// keys do not name the level, so without it a minimal launch could replay results tuned at balanced.
		if os.Getenv("CUBECL_ENVIRONMENT") == "" {
			if err := os.Setenv("CUBECL_ENVIRONMENT", "autotune-"+lv); err != nil {
				return nil, protocol.Loaded{}, err
			}
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
		d.Settings["cubecl_environment"] = cmp.Or(os.Getenv("CUBECL_ENVIRONMENT"), "default") + " (cubecl's store: one per autotune_level)"
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

// Prepare runs burn's first pass on cuda with autotune, as a burn user's first run on a machine does: load, then two
// generations of each distinct case shape. The first JIT-compiles every kernel (NVRTC) and lets cubecl autotune
// every shape it meets, keeping the results in its persistent store; every launch after starts from that store. The
// first pass is the cost a fresh machine pays once (issue 16: burn's cold number next to its warm one), reported here
// per case, apart from every launch's figures, with the autotune keys each case added to cubecl's store (read
// through cubecl::environment, per operation): "ran" is whether any were added. On cpu (Burn's flex backend) and in builds without autotune nothing persists
// between processes: nothing to prepare.
func (e engine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	bi, err := bridge.Info()
	if err != nil {
		return protocol.Prepared{}, err
	}
	if !strings.HasPrefix(req.Device, "cuda") || !bi.CUDA || !bi.Autotune {
		return protocol.Prepared{Steps: map[string]string{protocol.PreparedNothing: "no autotune store on this device or build: every launch compiles what it needs"}}, nil
	}
	t0 := time.Now()
	sm, _, err := e.Load(ctx, req)
	if err != nil {
		return protocol.Prepared{}, err
	}
	defer sm.Close()
	m := sm.(*model).m
	p := protocol.Prepared{Steps: map[string]string{"load": fmt.Sprintf("%.1f s", time.Since(t0).Seconds())}}
	// What cubecl's store holds before and after each case: the autotune keys that case's first pass tuned.
	store, storeErr := bridge.Store()
	if storeErr != nil {
		p.Steps["store"] = "unreadable: " + storeErr.Error()
	}
	first := store
	seen := map[[2]int]bool{}
	for _, c := range req.Cases {
		shape := [2]int{len(c.PromptTokens), c.MaxNewTokens}
		if seen[shape] {
			continue
		}
		seen[shape] = true
		var took [2]time.Duration
		for i := range took {
			if err := ctx.Err(); err != nil {
				return protocol.Prepared{}, fmt.Errorf("interrupted: %w", err)
			}
			t := time.Now()
			if _, _, _, err := m.Generate(c.PromptTokens, c.MaxNewTokens); err != nil {
				return protocol.Prepared{}, classify(fmt.Errorf("case %s, generation %d: %w", c.Name, i+1, err))
			}
			took[i] = time.Since(t)
		}
		// Tuned: the store gained autotune keys; where it cannot be read, the times say it (a first generation more
		// than 3× the second plus 30 s: a warm store leaves only the per-process JIT, seconds).
		tuned := took[0] > 3*took[1]+30*time.Second
		keys := ""
		if storeErr == nil {
			after, err := bridge.Store()
			if err != nil {
				storeErr = err
				p.Steps["store"] = "unreadable: " + err.Error()
			} else {
				n, by := newKeys(store, after)
				tuned = n > 0
				keys = fmt.Sprintf("; %d autotune keys added to cubecl's store%s", n, by)
				store = after
			}
		}
		p.Ran = p.Ran || tuned
		what := "warm: the store held this shape's tuning"
		if tuned {
			what = "tuned: JIT compilation and cubecl's autotune of this shape, kept in its store"
		}
		p.Steps["case_"+c.Name] = fmt.Sprintf("first generation %.1f s, second %.1f s (%s)%s", took[0].Seconds(), took[1].Seconds(), what, keys)
	}
	if storeErr == nil {
		n, _ := newKeys(bridge.StoreSummary{}, first)
		m, _ := newKeys(bridge.StoreSummary{}, store)
		p.Steps["store"] = fmt.Sprintf("cubecl environment %q: %d autotune keys before, %d after", store.Environment, n, m)
	}
	return p, nil
}

// newKeys counts the autotune keys after holds beyond before, and names them by operation (the namespace's last
// part): " (matmul 7, reduce 2)"; "" when none.
func newKeys(before, after bridge.StoreSummary) (int64, string) {
	b, a := before.Autotune(), after.Autotune()
	byOp := map[string]int64{}
	var total int64
	for ns, n := range a {
		if d := n - b[ns]; d > 0 {
			total += d
			byOp[ns[strings.LastIndex(ns, "/")+1:]] += d
		}
	}
	if total == 0 {
		return 0, ""
	}
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(byOp)) {
		parts = append(parts, fmt.Sprintf("%s %d", op, byOp[op]))
	}
	return total, " (" + strings.Join(parts, ", ") + ")"
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
