package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cuda-inference-benchmarks/cib/engines/pytorch/internal/worker"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// maxBatch is the largest batch either mode accepts.
const maxBatch = 64

// helloTimeout bounds interpreter start and `import torch`.
const helloTimeout = 5 * time.Minute

// engine implements serve.Engine around one Python worker, started on first use: Info needs its versions
// and Load reuses the same process, so a run imports torch once.
type engine struct {
	python string
	env    []string
	stderr io.Writer
	// static makes Info answer without starting Python (usage messages).
	static bool

	once sync.Once
	w    *worker.Worker
	err  error
}

func (e *engine) worker() (*worker.Worker, error) {
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), helloTimeout)
		defer cancel()
		e.w, e.err = worker.Start(ctx, worker.Config{Python: e.python, Env: e.env, Stderr: e.stderr})
	})
	return e.w, e.err
}

func (e *engine) close() {
	if e.w != nil {
		e.w.Close()
	}
}

func (e *engine) Info() protocol.Info {
	info := protocol.Info{
		Name:    "pytorch",
		Library: "torch",
		Devices: []string{"cpu", "cuda"},
		DTypes:  []string{"f32", "f16", "bf16"},
		Options: map[string]string{
			"mode":       "eager|compiled (default eager): eager = transformers LlamaForCausalLM.generate (sdpa, dynamic cache); compiled = own gpt-fast-style loop with a static KV cache",
			"compile":    "compiled mode: inductor|inductor-thorough|inductor-realize|inductor-pdl|max-autotune|inductor-cublas|aot_eager|none (default inductor on cuda, none on cpu): torch.compile of the decode step (fullgraph, static shapes); inductor = gpt-fast's settings (coordinate-descent tuning turns M=1 matmuls into tuned Triton reductions), inductor-thorough = the same with a wider search (every direction at radius 2, the larger reduction config sets), inductor-realize = the same with a pointwise result that reads 2+ buffers written once instead of recomputed in each consumer (GEMV inputs: silu(gate)*up, the RMSNorm output; realize_acc_reads_threshold=1), inductor-pdl = the same with Programmatic Dependent Launch in the Triton kernels (triton.enable_pdl: each kernel launched while the one before runs, waiting only where it reads that one's output; Hopper+), inductor-cublas = Inductor's defaults (M=1 matmuls stay cuBLAS GEMV calls); aot_eager traces without code generation",
			"prefill":    "compiled mode: eager|compiled (default eager, as gpt-fast): whether prefill is torch.compiled too, once per prompt length",
			"cuda_graph": "compiled mode: on|off (default on for cuda): replay the decode step as one manually captured CUDA graph",
			"attention": "compiled mode: sdpa|flex|math (default sdpa, as gpt-fast): the decode step's attention — sdpa = F.scaled_dot_product_attention " +
				"with a bool causal mask over the static cache (cuDNN's kernel on the H200); flex = FlexAttention with native GQA and the causal " +
				"cut as a score_mod, which Inductor lowers to its flex-decoding Triton kernel; math = plain ops (q·K, fp32 masked softmax, " +
				"the weighted sum of V), which Inductor lowers to Triton reductions over the cache positions; prefill uses sdpa in every case",
			"wait":   "compiled mode, cuda: spin|block (default spin, CUDA's default event): how the host awaits each token — block sleeps on a cudaEventBlockingSync event, so host CPU time counts the loop's work (the Python interpreter's), not the wait",
			"tuning": "compiled mode: cached|per-process (default cached): cached = a launch reuses the coordinate-descent tuning an earlier launch saved in Inductor's cache (torch 2.11 re-tunes every process that hits its FX graph cache unless Triton kernels are left out of it: bundle_triton_into_fx_graph_cache off; and Triton 3.6 drops the mark of a tuned configuration when a compile worker sends a kernel back, which this mends); per-process = each process tunes every kernel itself, Inductor's autotune cache off (torch's default is no independent draw: it re-tunes kernels restored from its FX graph bundle and replays the others' saved tunings, any earlier process's)",
			"refine": "compiled mode, cuda graph: off|in-graph (default off; on the H200's 8B, 0.90× the TPOT of refine=off over 3 vs 3 per-process launches, not significant): in-graph = in a process that ran coordinate descent, each GEMV kernel's XBLOCK and warps are then re-chosen by timing the decode step's CUDA graph (coordinate descent times each kernel alone, and its choices moved the 8B's step by 27% between processes on the H200), saved to the autotune cache so later launches replay them (its own cache directory, refine-in-graph/ under Inductor's: the same kernel sources as refine=off, other tunings); loaded.settings.refined_kernels says what changed",
			"deterministic": "off|on (default off), both modes: on = torch.use_deterministic_algorithms(True, warn_only=True), CUBLAS_WORKSPACE_CONFIG=:4096:8, " +
				"cudnn.deterministic, and in compiled mode Inductor's deterministic mode (no tuning that changes numerics) — a diagnostic: if greedy outputs " +
				"agree between iterations and launches with it on, the differences came from nondeterministic kernels; ops with no deterministic " +
				"implementation are named in the loaded settings (nondeterministic_ops) and the engine's log. Slower; not the engine's best practice.",
			"mlp": "compiled mode: fused|split (default fused): the gate/up projection as one matmul over the concatenated weights, or as two " +
				"matmuls over views of them (gpt-fast's form); same weights, same arithmetic, other Inductor kernels (split measured slower on the H200's 8B)",
			"fusion": "compiled mode: gpt-fast|more (default gpt-fast): the small ops around attention — gpt-fast = a bool causal mask, made additive by " +
				"SDPA at every layer, and K and V written by two index_puts; more = the additive mask built once per step and K and V written by one " +
				"index_put into a stacked cache: the same arithmetic, fewer kernels a layer (not yet measured on a GPU)",
			"prefill_attention": "compiled mode: masked|causal (default masked, as gpt-fast): prefill's attention — masked = the prompt's queries " +
				"over the whole static cache under the bool causal mask; causal = over the prompt's own keys and values with is_causal=True and no " +
				"mask (prefill starts at position 0): the same result, the form fused attention kernels are built for (not yet measured on a GPU)",
			"lookahead": "compiled mode: 1|0 (default 1 on cuda, 0 on cpu): queue the next decode step before waiting for the current token (on cpu steps run synchronously, so 1 only delays the stamps)",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            maxBatch,
			StreamingTimestamps: true,
			AllocatorStats:      true,
			DeviceTimings:       true,
		},
		BestPractice: "eager: transformers generate as users run it (sdpa attention, dynamic cache, greedy). " +
			"compiled: gpt-fast recipe: static KV cache, fused qkv and gate/up weights, decode step under torch.compile(fullgraph=True) " +
			"with Inductor coordinate-descent tuning on cuda, replayed as one CUDA graph per token; compilation and capture happen at load (compile_ns). " +
			"Allocator stats and CUDA-event token times on cuda only.",
	}
	if e.static {
		return info
	}
	w, err := e.worker()
	if err != nil {
		info.LibraryVersion = "unavailable"
		info.Versions = map[string]string{"error": firstLine(err.Error())}
		return info
	}
	h := w.Hello()
	info.LibraryVersion = h.Versions["torch"]
	info.Versions = h.Versions
	if !h.CUDAAvailable {
		info.Devices = []string{"cpu"}
	}
	return info
}

type loadCase struct {
	Prompt []int `json:"prompt"`
	Batch  int   `json:"batch"`
	MaxNew int   `json:"max_new"`
}

func (e *engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	w, err := e.worker()
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	cases := make([]loadCase, len(req.Cases))
	for i, c := range req.Cases {
		cases[i] = loadCase{Prompt: c.PromptTokens, Batch: c.BatchSize, MaxNew: c.MaxNewTokens}
	}
	msg := map[string]any{
		"op": "load", "model": req.Model, "device": req.Device, "dtype": req.DType, "seed": req.Seed,
		"threads": req.Threads, "options": req.Options, "cases": cases,
	}
	var resp struct {
		Loaded protocol.Loaded `json:"loaded"`
	}
	if err := w.Call(ctx, msg, &resp); err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	l := resp.Loaded
	// Interpreter start and the torch import count as context initialisation.
	l.ContextInitNs += w.StartupNs()
	if l.Settings == nil {
		l.Settings = map[string]string{}
	}
	l.Settings["python"] = e.python
	return &model{w: w}, l, nil
}

// Prepare compiles, tunes and captures the compiled mode's decode step once on cuda — what the first launch on a
// machine does and later launches find in Inductor's cache (option tuning=cached) — so its cost is reported apart
// from every launch's cold start, as libtorch's export is. Other modes and devices have nothing to prepare (eager
// compiles nothing; on cpu the default is compile=none), nor has tuning=per-process (every launch tunes again).
func (e *engine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	kind, _, err := protocol.ParseDevice(req.Device)
	if err != nil {
		return protocol.Prepared{}, serve.BadRequest(err)
	}
	o := req.Options
	switch {
	case o["mode"] != "compiled":
		return nothing("mode " + cmp.Or(o["mode"], "eager") + " compiles nothing")
	case kind != "cuda":
		return nothing("Inductor's cache matters on cuda (cpu default compile=none)")
	case o["tuning"] == "per-process":
		return nothing("tuning=per-process: every launch compiles and tunes again")
	case o["compile"] == "none" || o["compile"] == "aot_eager":
		return nothing("compile=" + o["compile"] + " generates no kernels")
	}
	m, l, err := e.Load(ctx, req)
	if err != nil {
		return protocol.Prepared{}, err
	}
	defer m.Close()
	counters := l.Settings["inductor_counters"]
	var n map[string]int
	if err := json.Unmarshal([]byte(counters), &n); err != nil {
		return protocol.Prepared{}, fmt.Errorf("worker's inductor_counters %q: %w", counters, err)
	}
	// Something was made unless every graph came from the FX graph cache and no kernel was tuned.
	ran := n["fxgraph_cache_hit"] == 0 || n["fxgraph_cache_miss"] > 0 || n["coordesc_tuning_bench"] > 0
	steps := map[string]string{
		"inductor_cache": fmt.Sprintf("decode step compiled, tuned and captured in %.1f s; Inductor's counters %s", float64(l.CompileNs)/1e9, counters),
	}
	if o["refine"] == "in-graph" {
		s, err := refineStep(l.Settings)
		if err != nil {
			return protocol.Prepared{}, err
		}
		steps["refine"] = s
	}
	return protocol.Prepared{Ran: ran, Steps: steps}, nil
}

// refineStep says in words what refine=in-graph did in a preparation (the worker's refine_ran and refined_kernels
// settings): the launches replay it, so the preparation is where its choices are on record.
func refineStep(settings map[string]string) (string, error) {
	ran := settings["refine_ran"]
	if ran == "" {
		return "in-graph: not run (this process tuned no kernel: every one replayed a cached tuning, refined or not)", nil
	}
	var changed map[string]string
	if err := json.Unmarshal([]byte(settings["refined_kernels"]), &changed); err != nil {
		return "", fmt.Errorf("worker's refined_kernels %q: %w", settings["refined_kernels"], err)
	}
	if len(changed) == 0 {
		return fmt.Sprintf("in-graph (%s): no GEMV kernel re-chosen (no candidate made the step 0.5%% faster)", ran), nil
	}
	names := slices.Sorted(maps.Keys(changed))
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + " " + changed[k]
	}
	return fmt.Sprintf("in-graph (%s): %d GEMV kernel(s) re-chosen by the decode step's time: %s", ran, len(names), strings.Join(parts, "; ")), nil
}

func nothing(why string) (protocol.Prepared, error) {
	return protocol.Prepared{Steps: map[string]string{protocol.PreparedNothing: why}}, nil
}

type model struct {
	w *worker.Worker
}

type genReply struct {
	Steps         [][]int `json:"steps"`
	TokenNs       []int64 `json:"token_ns"`
	DeviceTokenNs []int64 `json:"device_token_ns"`
	PeakAlloc     int64   `json:"peak_alloc_bytes"`
}

// Generate asks the worker for one generation. The worker times each token from the moment it read the
// request; the time spent before the request was written is added, so offsets count from this call's
// start (one pipe transit, tens of µs, is not counted).
func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	start := time.Now()
	msg := map[string]any{"op": "generate", "prompt": c.PromptTokens, "batch": c.BatchSize, "max_new": c.MaxNewTokens}
	sent := int64(time.Since(start))
	var r genReply
	if err := m.w.Call(ctx, msg, &r); err != nil {
		return classify(err)
	}
	if len(r.Steps) != len(r.TokenNs) {
		return fmt.Errorf("worker reply: %d steps but %d times", len(r.Steps), len(r.TokenNs))
	}
	for i, ids := range r.Steps {
		if len(ids) != c.BatchSize {
			return fmt.Errorf("worker reply: step %d has %d ids, batch is %d", i, len(ids), c.BatchSize)
		}
		rec.StepAt(sent+r.TokenNs[i], ids...)
	}
	if r.DeviceTokenNs != nil {
		for i := range r.DeviceTokenNs {
			r.DeviceTokenNs[i] += sent
		}
		rec.DeviceStepNs(r.DeviceTokenNs)
	}
	if r.PeakAlloc > 0 {
		rec.PeakAlloc(r.PeakAlloc)
	}
	return nil
}

func (m *model) Close() error { return m.w.Close() }

// classify maps a worker-reported failure to the protocol's error classes.
func classify(err error) error {
	var we *worker.Error
	if !errors.As(err, &we) {
		return err
	}
	wrapped := fmt.Errorf("python worker: %s", we.Message)
	switch we.Code {
	case protocol.CodeBadRequest:
		return serve.BadRequest(wrapped)
	case protocol.CodeUnsupported:
		return serve.Unsupported(wrapped)
	case protocol.CodeOOM:
		return serve.OOM(wrapped)
	}
	return wrapped
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
