package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cuda-inference-benchmarks/cib/engines/libtorch/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/engines/libtorch/internal/export"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// maxBatch is the largest batch accepted; each batch size is its own exported package.
const maxBatch = 64

// seqAlign rounds the static KV cache length up, as the pytorch engine's compiled mode does (same attention
// work per token on both sides of a comparison).
const seqAlign = 64

const bestPractice = "PyTorch's own deployment path without Python: the pytorch engine's compiled-mode Llama " +
	"(gpt-fast style: fused qkv and gate/up weights, static KV cache written in place, SDPA, greedy argmax on " +
	"device) exported with torch.export and compiled ahead of time by AOTInductor " +
	"(torch._inductor.aot_compile + package_aoti: one .pt2 holding a prefill model with a dynamic prompt " +
	"length and a decode model, both with the KV cache length a dynamic dimension; on cuda with gpt-fast's Inductor settings, coordinate-descent " +
	"tuning), run from C++ through torch::inductor::AOTIModelPackageLoader. The C++ bridge owns the loop: " +
	"prefill, then one decode run per token reading its token and position on the device (replayed as one " +
	"at::cuda::CUDAGraph on cuda with cuda_graphs=on), one step of lookahead on cuda. The export runs once per " +
	"model, dtype, device/card, torch version and batch size, for every cache length (cached under <model>/.aoti; " +
	"cache_len=static: one per length, the fallback); when " +
	"it runs inside a launch its time is loaded.compile_ns, never load."

// engine implements serve.Engine over the C++ bridge.
type engine struct {
	env    []string
	exe    string
	stderr io.Writer
	// static makes Info answer without loading libtorch (usage messages).
	static bool

	once   sync.Once
	openNs int64
	info   runtimeInfo
	err    error
}

// runtimeInfo is the bridge's cib_lt_info object.
type runtimeInfo struct {
	Libtorch    string   `json:"libtorch"`
	Headers     string   `json:"headers"`
	CUDA        string   `json:"cuda"`
	CUDNN       string   `json:"cudnn"`
	CXX11ABI    bool     `json:"cxx11_abi"`
	BridgeCUDA  bool     `json:"bridge_cuda"`
	CUDADevices int      `json:"cuda_devices"`
	CUDANames   []string `json:"cuda_names"`
}

func newEngine(env []string, exe string, stderr io.Writer) *engine {
	return &engine{env: env, exe: exe, stderr: stderr}
}

func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok && v != "" {
			return v
		}
	}
	return ""
}

// python returns the interpreter for the export: $CIB_PYTHON, else the setup-torch.sh venv's, else python3.
func (e *engine) python() string {
	if p := lookupEnv(e.env, "CIB_PYTHON"); p != "" {
		return p
	}
	cache := lookupEnv(e.env, "CIB_CACHE")
	if cache == "" {
		if home := lookupEnv(e.env, "HOME"); home != "" {
			cache = filepath.Join(home, ".cache", "cib")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "torch-venv", "bin", "python")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "python3"
}

// paths finds the bridge and libtorch (see the command's doc).
func (e *engine) paths() bridge.Paths {
	p := bridge.Paths{Bridge: lookupEnv(e.env, "CIB_LIBTORCH_BRIDGE"), TorchLib: lookupEnv(e.env, "CIB_TORCH_LIB")}
	if p.Bridge == "" {
		p.Bridge = filepath.Join(filepath.Dir(e.exe), "libcib_libtorch.so")
	}
	if p.TorchLib == "" {
		py := e.python()
		if !strings.ContainsRune(py, '/') {
			py = lookPath(e.env, py)
		}
		// venv/bin/python -> venv/lib/python3.*/site-packages/torch/lib (no symlink resolution: a venv's
		// python links to the base interpreter).
		if py != "" {
			m, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(py)), "lib", "python3*", "site-packages", "torch", "lib"))
			if len(m) > 0 {
				p.TorchLib = m[len(m)-1]
			}
		}
	}
	return p
}

func lookPath(env []string, name string) string {
	for _, dir := range filepath.SplitList(lookupEnv(env, "PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// open loads libtorch and the bridge once; its time counts as context initialisation.
func (e *engine) open() error {
	e.once.Do(func() {
		t := time.Now()
		if e.err = bridge.Open(e.paths()); e.err != nil {
			return
		}
		var s string
		if s, e.err = bridge.Info(); e.err != nil {
			return
		}
		if e.err = json.Unmarshal([]byte(s), &e.info); e.err != nil {
			e.err = fmt.Errorf("bridge info %q: %w", s, e.err)
		}
		e.openNs = int64(time.Since(t))
	})
	return e.err
}

func (e *engine) Info() protocol.Info {
	info := protocol.Info{
		Name:    "libtorch",
		Library: "libtorch (AOTInductor)",
		Devices: []string{"cpu", "cuda"},
		DTypes:  []string{"f32", "f16", "bf16"},
		Options: map[string]string{
			"cuda_graphs": "on|off (default on for cuda): replay the decode model's run as one at::cuda::CUDAGraph captured at load",
			"cache_len":   "dynamic|static (default dynamic): the exported models take any KV cache length up to max_position_embeddings (one package per batch size), or exactly this request's (a package per length: the fallback)",
			"wait":        "spin|block (cuda; default spin, as CUDA's default event): how the host awaits each token — block sleeps on a cudaEventBlockingSync event, so host CPU time counts the loop's work, not the wait",
			"export":      "auto|never (default auto): run the AOTInductor export with $CIB_PYTHON when the package is missing, or fail",
			"weights":     "file|package (default file): the models' weights in one file per model, dtype and torch that every package (batch size, cache_len) and every model of the process shares, or inside each package's prefill .so (as before 2026-12-02)",
			"cache_dir":   "directory of exported packages (default <model>/.aoti; dot-names are outside the runner's model hash)",
			"prefill_attention": "masked|causal (default masked, as the pytorch engine's compiled mode): the exported prefill's attention — the " +
				"prompt over the whole KV cache under the bool causal mask, or over its own keys and values with is_causal=True and no mask " +
				"(a package of its own; not yet measured on a GPU)",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            maxBatch,
			StreamingTimestamps: true,
			AllocatorStats:      true,
			DeviceTimings:       true,
		},
		BestPractice: bestPractice,
		Versions:     map[string]string{"go": runtime.Version()},
	}
	if e.static {
		info.LibraryVersion = "unknown (not loaded)"
		return info
	}
	if err := e.open(); err != nil {
		info.LibraryVersion = "unavailable"
		info.Versions["error"] = firstLine(err.Error())
		return info
	}
	i := e.info
	info.LibraryVersion = i.Libtorch
	info.Versions["libtorch_headers"] = i.Headers
	info.Versions["cuda"] = i.CUDA
	info.Versions["cudnn"] = i.CUDNN
	info.Versions["cxx11_abi"] = strconv.FormatBool(i.CXX11ABI)
	if i.CUDADevices == 0 {
		info.Devices = []string{"cpu"}
	}
	return info
}

// modelConfig is what the engine reads from config.json itself (to size the cache and check prompts).
type modelConfig struct {
	Vocab   int64 `json:"vocab_size"`
	Dim     int64 `json:"hidden_size"`
	Inter   int64 `json:"intermediate_size"`
	Layers  int64 `json:"num_hidden_layers"`
	Heads   int64 `json:"num_attention_heads"`
	KVHeads int64 `json:"num_key_value_heads"`
	HeadDim int64 `json:"head_dim"`
	MaxPos  int   `json:"max_position_embeddings"`
	Tied    bool  `json:"tie_word_embeddings"`
}

func (c modelConfig) params() int64 {
	kv, hd := c.KVHeads, c.HeadDim
	if kv == 0 {
		kv = c.Heads
	}
	if hd == 0 && c.Heads > 0 {
		hd = c.Dim / c.Heads
	}
	heads := c.Vocab * c.Dim
	if !c.Tied {
		heads *= 2
	}
	layer := c.Dim*(c.Heads*hd+2*kv*hd) + c.Heads*hd*c.Dim + 3*c.Dim*c.Inter + 2*c.Dim
	return heads + c.Layers*layer + c.Dim
}

func readConfig(dir string) (modelConfig, error) {
	var c modelConfig
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s/config.json: %w", dir, err)
	}
	if c.MaxPos == 0 {
		c.MaxPos = 2048
	}
	return c, nil
}

// loadInfo is the bridge's cib_lt_load object.
type loadInfo struct {
	ContextInitNs   int64  `json:"context_init_ns"`
	PrefillLoadNs   int64  `json:"prefill_load_ns"`
	DecodeLoadNs    int64  `json:"decode_load_ns"`
	WarmupNs        int64  `json:"warmup_ns"`
	Libtorch        string `json:"libtorch"`
	CUDAGraph       string `json:"cuda_graph"`
	Wait            string `json:"wait"`
	Threads         int    `json:"threads"`
	SharedConstants int    `json:"shared_constants"`
	// WeightsToDeviceNs times the weights file: mapped, each tensor copied to the device (0 when the package
	// carries the weights or an earlier model of this process loaded the file: WeightsShared).
	WeightsToDeviceNs int64  `json:"weights_to_device_ns"`
	WeightsBytes      int64  `json:"weights_bytes"`
	WeightsShared     bool   `json:"weights_shared"`
	DeviceName        string `json:"device_name"`
}

func (e *engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	return e.load(ctx, req, nil)
}

// Prepare exports every package the request needs (one per batch size) and the weights file, as Load's first launch
// would, so the export's minutes are timed apart from every launch's cold start (`libtorch prepare`).
func (e *engine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	p := protocol.Prepared{Steps: map[string]string{}}
	_, _, err := e.load(ctx, req, &p)
	return p, err
}

// load is Load, or with prep set Prepare: the same options, checks and packages, without the bridge loading them.
func (e *engine) load(ctx context.Context, req *protocol.Request, prep *protocol.Prepared) (serve.Model, protocol.Loaded, error) {
	kind, idx, err := protocol.ParseDevice(req.Device)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	opt := func(k, def string, allowed ...string) (string, error) {
		v, ok := req.Options[k]
		if !ok {
			return def, nil
		}
		if len(allowed) > 0 && !slices.Contains(allowed, v) {
			return "", serve.BadRequest(fmt.Errorf("option %s=%q: want %s", k, v, strings.Join(allowed, " or ")))
		}
		return v, nil
	}
	graphs, err := opt("cuda_graphs", map[bool]string{true: "on", false: "off"}[kind == "cuda"], "on", "off")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	if graphs == "on" && kind != "cuda" {
		return nil, protocol.Loaded{}, serve.Unsupported(errors.New("option cuda_graphs=on needs a cuda device"))
	}
	wait, err := opt("wait", "spin", "spin", "block")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	if wait == "block" && kind != "cuda" {
		return nil, protocol.Loaded{}, serve.Unsupported(errors.New("option wait=block needs a cuda device"))
	}
	cacheLen, err := opt("cache_len", "dynamic", "dynamic", "static")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	mode, err := opt("export", "auto", "auto", "never")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	weightsMode, err := opt("weights", "file", "file", "package")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	prefillAttn, err := opt("prefill_attention", "masked", "masked", "causal")
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	cfg, err := readConfig(req.Model)
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	need := 0
	var batches []int
	for i, c := range req.Cases {
		for _, t := range c.PromptTokens {
			if t < 0 || int64(t) >= cfg.Vocab {
				return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("cases[%d]: prompt token id %d outside vocab size %d", i, t, cfg.Vocab))
			}
		}
		if c.MaxNewTokens < 1 || len(c.PromptTokens) == 0 {
			return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("cases[%d]: %d prompt tokens, max_new_tokens %d: want both >= 1", i, len(c.PromptTokens), c.MaxNewTokens))
		}
		n := len(c.PromptTokens) + c.MaxNewTokens
		if n > cfg.MaxPos {
			return nil, protocol.Loaded{}, serve.Unsupported(fmt.Errorf("cases[%d]: %d prompt + %d new tokens > max_position_embeddings %d", i, len(c.PromptTokens), c.MaxNewTokens, cfg.MaxPos))
		}
		need = max(need, n)
		if !slices.Contains(batches, c.BatchSize) {
			batches = append(batches, c.BatchSize)
		}
	}
	slices.Sort(batches)
	maxSeq := alignSeq(need)
	// The cache length of each case: its own need, rounded up, as gpt-fast (and the pytorch engine's compiled mode)
	// size the static cache per request — a short case does not decode over the launch's longest cache. With
	// cache_len=static the package has one length: every case uses maxSeq.
	caseLen := func(c protocol.Case) int {
		if cacheLen == "static" {
			return maxSeq
		}
		return alignSeq(len(c.PromptTokens) + c.MaxNewTokens)
	}
	lengths := map[int][]int{} // batch size → its cache lengths, ascending
	for _, c := range req.Cases {
		if n := caseLen(c); !slices.Contains(lengths[c.BatchSize], n) {
			lengths[c.BatchSize] = append(lengths[c.BatchSize], n)
		}
	}
	var sessions []string
	for _, b := range batches {
		slices.Sort(lengths[b])
		for _, n := range lengths[b] {
			sessions = append(sessions, fmt.Sprintf("batch %d: %d positions", b, n))
		}
	}

	if err := e.open(); err != nil {
		return nil, protocol.Loaded{}, serve.Unsupported(err)
	}
	device, card := "cpu", ""
	if kind == "cuda" {
		if idx >= e.info.CUDADevices {
			return nil, protocol.Loaded{}, serve.Unsupported(fmt.Errorf("device %s: libtorch sees %d cuda devices", req.Device, e.info.CUDADevices))
		}
		device = fmt.Sprintf("cuda:%d", idx)
		if idx < len(e.info.CUDANames) {
			card = e.info.CUDANames[idx]
		}
	}
	cacheDir, _ := opt("cache_dir", filepath.Join(req.Model, ".aoti"))
	l := protocol.Loaded{ContextInitNs: e.openNs, DType: req.DType, Params: cfg.params(), Settings: map[string]string{
		"runtime": "libtorch " + e.info.Libtorch + " via torch::inductor::AOTIModelPackageLoader (no Python in this process once the package exists)",
		"package": "one .pt2 per batch size for every request: models prefill (dynamic prompt length 2..S) and decode, both with the cache length S dynamic (2.." + strconv.Itoa(cfg.MaxPos) + ")",
		"kv_cache": fmt.Sprintf("static, written in place by both models, sized per request (prompt + new tokens rounded up to %d; "+
			"cache_len=static: the longest): one loaded model pair, caches and CUDA graph per batch size and cache length, here %s",
			seqAlign, strings.Join(sessions, ", ")),
		"decoding": "greedy argmax inside the compiled models, on device; the next decode step reads token and position on device",
		"prefill_attention": map[string]string{
			"masked": "masked: the prompt over the whole KV cache under the bool causal mask",
			"causal": "causal: the prompt over its own keys and values, is_causal=True, no mask",
		}[prefillAttn],
		"export_run": "cached",
	}}
	if cacheLen == "static" {
		l.Settings["package"] = fmt.Sprintf("one .pt2 per batch size and cache length (cache_len=static: %d positions): models prefill (dynamic prompt length 2..%d) and decode (static)", maxSeq, maxSeq)
	}
	if kind == "cuda" {
		// Read by the runner's report (analysis.SettingSharedTuning): every launch replays the export's one tuning draw.
		l.Settings["shared_tuning"] = "AOTInductor's Triton kernel tuning, made once by the export and replayed by every launch of its package"
		l.Settings["token_timing"] = "each token copied to pinned host memory behind a CUDA event, stamped (steady_clock) when the host has waited on it; the next step is queued first (1 step lookahead)"
		l.Settings["device_timing"] = "the same CUDA events, from an event recorded at the start of the iteration"
	} else {
		l.Settings["token_timing"] = "each token stamped (steady_clock) right after its step returns (ops are synchronous on cpu)"
	}
	m := &model{cuda: kind == "cuda", models: map[sessionKey]*bridge.Model{}, caseLen: caseLen}
	fail := func(err error) (serve.Model, protocol.Loaded, error) {
		m.Close()
		return nil, protocol.Loaded{}, err
	}
	weights := ""
	if weightsMode == "file" {
		wkey, err := export.WeightsKey(req.Model, req.DType, e.info.Libtorch)
		if err != nil {
			return fail(err)
		}
		weights = filepath.Join(cacheDir, wkey[:24]+".weights.safetensors")
		l.Settings["weights"] = "one safetensors file of the model's weights (tensors named by fqn, made by the export) that every package and model shares, mapped and copied to the device once per process (weights_file)"
		l.Settings["weights_file"] = weights
	} else {
		l.Settings["weights"] = "inside each package's prefill .so (weights=package); the decode model uses the prefill model's tensors"
	}
	copies, windex := 0, ""
	for _, b := range batches {
		spec := export.Spec{Model: req.Model, DType: req.DType, Device: device, Card: card, Torch: e.info.Libtorch, Batch: b, MaxPos: cfg.MaxPos,
			Static: cacheLen == "static", Weights: weights, PrefillAttention: prefillAttn}
		if spec.Static {
			spec.MaxPos = maxSeq
		}
		key, err := export.Key(spec)
		if err != nil {
			return fail(err)
		}
		pkg := filepath.Join(cacheDir, key[:24]+".pt2")
		for _, f := range []string{pkg, weights} {
			if _, err := os.Stat(f); f != "" && err != nil && mode == "never" {
				return fail(serve.Unsupported(fmt.Errorf("no exported %s for batch %d (option export=never)", f, b)))
			}
		}
		res, err := export.Ensure(ctx, e.python(), e.env, spec, pkg, e.stderr)
		if err != nil {
			var xe *export.Error
			if errors.As(err, &xe) && xe.Unsupported {
				return fail(serve.Unsupported(err))
			}
			return fail(err)
		}
		if prep != nil {
			how := "found in the cache: "
			switch {
			case res.WeightsOnly:
				how = fmt.Sprintf("found in the cache, its weights file written in %.1f s (no export): ", float64(res.Ns)/1e9)
				prep.Ran = true
			case res.Ran:
				how = fmt.Sprintf("exported in %.1f s: ", float64(res.Ns)/1e9)
				prep.Ran = true
			}
			prep.Steps[fmt.Sprintf("package_b%d", b)] = how + pkg
			continue
		}
		l.CompileNs += res.Ns
		if res.WeightsOnly {
			l.Settings["export_run"] = "the package was cached; its weights file was written in this launch (compile_ns)"
		} else if res.Ran {
			rep, _ := json.Marshal(res.Report)
			l.Settings["export_run"] = "ran in this launch (compile_ns)"
			l.Settings[fmt.Sprintf("export_b%d", b)] = string(rep)
		}
		l.Settings[fmt.Sprintf("package_b%d", b)] = pkg
		// The decode model's Triton kernels' launch configurations the export settled on (cuda; export.py writes them next to the
		// package), to set against pytorch compiled's kernel_configs.
		if kc, err := os.ReadFile(pkg + ".kernels.json"); err == nil {
			v := strings.TrimSpace(string(kc))
			if v == "{}" {
				v = "none found by the export (its Inductor kept no record of them)"
			}
			l.Settings[fmt.Sprintf("kernel_configs_b%d", b)] = v
		}
		if weights != "" && windex == "" {
			if windex, err = export.WeightsIndex(weights); err != nil {
				return fail(err)
			}
		}
		for _, n := range lengths[b] {
			bm, s, err := bridge.Load(pkg, weights, windex, device, b, n, graphs == "on", wait == "block", req.Threads)
			if err != nil {
				return fail(classify(err))
			}
			m.models[sessionKey{b, n}] = bm
			var li loadInfo
			if err := json.Unmarshal([]byte(s), &li); err != nil {
				return fail(fmt.Errorf("bridge load info %q: %w", s, err))
			}
			l.ContextInitNs += li.ContextInitNs
			// AOTI reads the package's weights straight to the device when it loads the prefill model: that is
			// both weights_to_host and weights_to_device, reported as the latter.
			l.WeightsToDeviceNs += li.PrefillLoadNs + li.DecodeLoadNs + li.WeightsToDeviceNs
			l.CompileNs += li.WarmupNs
			l.DeviceName = li.DeviceName
			l.Settings["cuda_graphs"] = li.CUDAGraph
			l.Settings["wait"] = li.Wait
			l.Settings["threads"] = strconv.Itoa(li.Threads)
			l.Settings["libtorch"] = li.Libtorch
			if weights != "" && !li.WeightsShared {
				copies++
			}
		}
	}
	if prep != nil {
		if weights != "" {
			prep.Steps["weights"] = "one file shared by every package: " + weights
		}
		return nil, l, nil
	}
	if weights != "" {
		l.Settings["weights_on_device"] = fmt.Sprintf("%d copy for %d package(s)", copies, len(batches))
	}
	l.Settings["load_split"] = "weights_to_device_ns = AOTIModelPackageLoader construction of both models (unpack, dlopen; weights=package: weights to device) " +
		"+ the weights file mapped and its tensors copied to the device; " +
		"compile_ns = export (when it ran here) + warm-up runs and CUDA graph capture"
	return m, l, nil
}

// classify maps a bridge error to the protocol's error classes; other failures stay plain so serve labels
// them by phase.
func classify(err error) error {
	var be *bridge.Error
	if !errors.As(err, &be) {
		return err
	}
	switch be.Code {
	case bridge.CodeBadArg:
		return serve.BadRequest(err)
	case bridge.CodeUnsupported, bridge.CodeOpen:
		return serve.Unsupported(err)
	case bridge.CodeOOM:
		return serve.OOM(err)
	}
	return err
}

// sessionKey names a loaded model pair: batch size and cache length.
type sessionKey struct{ batch, length int }

type model struct {
	cuda    bool
	models  map[sessionKey]*bridge.Model
	caseLen func(protocol.Case) int
}

// alignSeq rounds a cache length up to seqAlign.
func alignSeq(n int) int { return (n + seqAlign - 1) / seqAlign * seqAlign }

// Generate runs one generation in the bridge. Token times are offsets from the start of the C++ call, taken
// there; the (µs) time before the call is added so they count from this call's start.
func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	start := time.Now()
	bm := m.models[sessionKey{c.BatchSize, m.caseLen(*c)}]
	if bm == nil {
		return fmt.Errorf("no package loaded for batch %d and a %d-position cache", c.BatchSize, m.caseLen(*c))
	}
	prompt := make([]int64, len(c.PromptTokens))
	for i, t := range c.PromptTokens {
		prompt[i] = int64(t)
	}
	n, b := c.MaxNewTokens, c.BatchSize
	ids := make([]int64, n*b)
	hostNs := make([]int64, n)
	var devNs []int64
	if m.cuda {
		devNs = make([]int64, n)
	}
	sent := int64(time.Since(start))
	peak, err := bm.Generate(prompt, n, ids, hostNs, devNs)
	if err != nil {
		return classify(err)
	}
	row := make([]int, b)
	for i := range n {
		for r := range b {
			row[r] = int(ids[i*b+r])
		}
		rec.StepAt(sent+hostNs[i], row...)
	}
	if devNs != nil {
		for i := range devNs {
			devNs[i] += sent
		}
		rec.DeviceStepNs(devNs)
		rec.PeakAlloc(peak)
	}
	return nil
}

func (m *model) Close() error {
	for b, bm := range m.models {
		bm.Close()
		delete(m.models, b)
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
