// Command llamacpp is the benchmark engine for llama.cpp (ggml-org/llama.cpp),
// run the way llama-bench runs it. It serves the protocol (protocol/serve)
// and calls llama.cpp's C API through cgo (internal/bridge), linked
// statically against llama.cpp built from the sources the crates.io crate
// llama-cpp-sys-2 vendors.
//
// llama.cpp reads GGUF: the model may be a .gguf file, a directory holding
// one, or an HF Llama directory, which the engine converts once (ggufw) into
// a cache and reuses.
//
// Build with scripts/build-llamacpp.sh (CPU) or scripts/build-llamacpp.sh
// --cuda (CUDA 13.0, sm_90, into .gpu/bin/llamacpp).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/engines/llamacpp/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "gguf" {
		os.Exit(ggufMain(context.Background(), os.Args[2:], os.Stdout, os.Stderr, cacheDir()))
	}
	serve.Run(engine{cacheDir: cacheDir()})
}

// ggufMain is `llamacpp gguf MODEL [--type T]`: it resolves MODEL as a run
// would (converting an HF directory into the cache when needed) and prints the
// GGUF file's path, for llamacpp-bench and scripts.
func ggufMain(ctx context.Context, args []string, stdout, stderr io.Writer, cache string) int {
	fs := flag.NewFlagSet("gguf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "bf16", "GGUF weight type for an HF directory: f32|f16|bf16|q8_0|q4_k")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: llamacpp gguf MODEL [--type T]\n  prints the GGUF file the engine runs for MODEL (.gguf, a directory holding one, or an HF directory, converted once into "+cache+")")
		fs.PrintDefaults()
	}
	// Flags may follow the model.
	var model string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return 64
		}
		if rest = fs.Args(); len(rest) > 0 {
			if model != "" {
				fs.Usage()
				return 64
			}
			model, rest = rest[0], rest[1:]
		}
	}
	if model == "" {
		fs.Usage()
		return 64
	}
	src, err := resolve(ctx, model, strings.ToLower(*typ), cache)
	if err != nil {
		fmt.Fprintf(stderr, "llamacpp gguf: %v\n", err)
		return 1
	}
	if src.convertNs > 0 {
		fmt.Fprintf(stderr, "llamacpp gguf: converted %s in %.1f s\n", model, float64(src.convertNs)/1e9)
	}
	for _, w := range src.warnings {
		fmt.Fprintf(stderr, "llamacpp gguf: warning: %s\n", w)
	}
	fmt.Fprintln(stdout, src.path)
	return 0
}

// cacheDir is where converted GGUF files live: $CIB_CACHE/gguf, else the
// user cache directory's cib/gguf.
func cacheDir() string {
	if d := os.Getenv("CIB_CACHE"); d != "" {
		return filepath.Join(d, "gguf")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "cib", "gguf")
	}
	return filepath.Join(os.TempDir(), "cib-gguf")
}

// maxBatch is the largest batch the engine accepts: each row is its own
// llama.cpp sequence (seq_id) in one llama_batch.
const maxBatch = 32

// vendored names the llama.cpp sources this engine is built from. The crate
// carries no git tree, so llama.cpp's build number is 0 and ggml_commit
// "unknown"; the crate's own commit (.cargo_vcs_info.json) is in the
// llama-cpp-rs repository, whose llama.cpp submodule pins the sources.
const vendored = "vendored by llama-cpp-sys-2 0.1.161 (crates.io; llama-cpp-rs git e7af607ebd5e)"

const bestPractice = "llama.cpp run as llama-bench runs it: llama_model_load_from_file with n_gpu_layers = all on " +
	"CUDA (0 on the CPU, no GPU device listed), split_mode none; one context per launch sized to the request's " +
	"longest case (n_ctx = batch × (prompt + new tokens), one sequence per batch row), n_batch and n_ubatch at least the " +
	"whole prompt batch (llama.cpp's 2048/512 otherwise), flash attention llama.cpp's default (auto), f16 KV cache; " +
	"each iteration clears the memory (llama_memory_clear, data = false, before the clock starts, as llama-bench), decodes the prompt in one llama_decode, then one token per " +
	"sequence per llama_decode, greedy argmax of llama_get_logits_ith (lowest id on ties), exactly N tokens, EOS ignored. " +
	"n_threads = request threads (0: all cores). Weights are the GGUF's own type: an HF directory is converted once " +
	"(ggufw, option type, default the request dtype) into a cache and the conversion time is loaded.compile_ns. " +
	"CUDA build: ggml-cuda for sm_90 by nvcc 13.0.88, llama.cpp's default CMake options (CUDA graphs on, flash-attention kernels built)."

// bridgeLib is the hash of llama.cpp's libraries and cib_llama.c linked in, set by scripts/build-llamacpp.sh (-X)
// and checked there through `llamacpp info`, so a binary linked against older libraries cannot ship unnoticed.
var bridgeLib string

type engine struct {
	cacheDir string
}

func (e engine) Info() protocol.Info {
	info := protocol.Info{
		Name:         "llamacpp",
		Library:      "llama.cpp",
		Devices:      []string{},
		DTypes:       []string{"f32", "f16", "bf16"},
		BestPractice: bestPractice,
		Options: map[string]string{
			"n_threads":  "CPU threads for decode and prompt batches (default: request threads, else all cores)",
			"flash_attn": "auto|on|off: llama.cpp's flash attention (default auto, llama.cpp's default)",
			"n_ubatch":   "llama.cpp's physical batch size (default: the largest prompt batch, at least 512)",
			"type_k":     "K cache type: f16 (default), f32, bf16, q8_0, q4_0, q4_1, q5_0, q5_1",
			"type_v":     "V cache type: f16 (default), f32, bf16, q8_0, q4_0, q4_1, q5_0, q5_1 (quantized needs flash attention)",
			"type":       "GGUF weight type when the model is an HF directory: f32|f16|bf16|q8_0|q4_k (default: the request dtype); a GGUF keeps its own",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            maxBatch,
			StreamingTimestamps: true,
		},
		Versions: map[string]string{"go": runtime.Version(), "llama.cpp source": vendored},
	}
	if bridgeLib != "" {
		info.Versions["bridge_lib_sha256"] = bridgeLib
	}
	v, err := bridge.Versions()
	if err != nil {
		info.LibraryVersion = "unavailable: " + err.Error()
		return info
	}
	// The crate ships no git tree: llama.cpp's build number is 0 and its
	// commit is the name scripts/build-llamacpp-lib.sh gives it.
	info.LibraryVersion = v["llama_version"] + " (" + vendored + ")"
	info.Devices = []string{"cpu"}
	if bridge.CUDA {
		info.Devices = append(info.Devices, "cuda")
	}
	for k, val := range v {
		if k != "llama_version" {
			info.Versions[k] = val
		}
	}
	info.Versions["build"] = "cpu"
	if bridge.CUDA {
		info.Versions["build"] = "cuda (ggml-cuda, sm_90, nvcc 13.0.88)"
	}
	return info
}

// options are the parsed request options.
type options struct {
	threads, ubatch int
	flashAttn       int
	typeK, typeV    int
	weights         string // GGUF type for an HF directory
}

func parseOptions(req *protocol.Request) (options, error) {
	o := options{threads: req.Threads, flashAttn: bridge.FlashAttnAuto, typeK: -1, typeV: -1, weights: req.DType}
	if o.threads <= 0 {
		o.threads = runtime.NumCPU()
	}
	positive := func(k string) (int, error) {
		n, err := strconv.Atoi(req.Options[k])
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("option %s %q: want a positive integer", k, req.Options[k])
		}
		return n, nil
	}
	var err error
	if _, ok := req.Options["n_threads"]; ok {
		if o.threads, err = positive("n_threads"); err != nil {
			return o, err
		}
	}
	if _, ok := req.Options["n_ubatch"]; ok {
		if o.ubatch, err = positive("n_ubatch"); err != nil {
			return o, err
		}
	}
	if s, ok := req.Options["flash_attn"]; ok {
		switch s {
		case "auto":
		case "on":
			o.flashAttn = bridge.FlashAttnOn
		case "off":
			o.flashAttn = bridge.FlashAttnOff
		default:
			return o, fmt.Errorf("option flash_attn %q: want auto, on or off", s)
		}
	}
	for _, kv := range []struct {
		key string
		dst *int
	}{{"type_k", &o.typeK}, {"type_v", &o.typeV}} {
		if s, ok := req.Options[kv.key]; ok {
			if *kv.dst, err = bridge.CacheType(s); err != nil {
				return o, fmt.Errorf("option %s: %w", kv.key, err)
			}
		}
	}
	if s, ok := req.Options["type"]; ok {
		o.weights = strings.ToLower(s)
	}
	return o, nil
}

// Prepare converts an HF directory into the GGUF cache for the request's weight type (what Load would do on its
// first launch and find cached after), so the conversion is timed apart from every launch's cold start.
func (e engine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	o, err := parseOptions(req)
	if err != nil {
		return protocol.Prepared{}, serve.BadRequest(err)
	}
	src, err := resolve(ctx, req.Model, o.weights, e.cacheDir)
	if err != nil {
		return protocol.Prepared{}, err
	}
	step := map[string]string{
		"file":      "the model is a GGUF file: ",
		"dir":       "the model directory holds a GGUF: ",
		"cache":     "converted earlier, found in the cache: ",
		"converted": fmt.Sprintf("converted (ggufw) in %.1f s: ", float64(src.convertNs)/1e9),
	}[src.how] + src.path
	for _, w := range src.warnings {
		step += "; warning: " + w
	}
	return protocol.Prepared{Ran: src.how == "converted", Steps: map[string]string{"gguf_" + o.weights: step}}, nil
}

func (e engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	kind, ord, err := protocol.ParseDevice(req.Device)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	o, err := parseOptions(req)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	dev := -1
	if kind == "cuda" {
		dev = ord
	}
	seqs, prompt, ctxSeq := 1, 1, 2
	for _, c := range req.Cases {
		seqs = max(seqs, c.BatchSize)
		prompt = max(prompt, len(c.PromptTokens))
		ctxSeq = max(ctxSeq, len(c.PromptTokens)+c.MaxNewTokens)
	}

	src, err := resolve(ctx, req.Model, o.weights, e.cacheDir)
	if err != nil {
		return nil, protocol.Loaded{}, err
	}
	m, l, err := bridge.Load(bridge.Params{
		Path: src.path, Device: dev, Threads: o.threads, FlashAttn: o.flashAttn, UBatch: o.ubatch,
		TypeK: o.typeK, TypeV: o.typeV, CtxSeq: ctxSeq, Seqs: seqs, Prompt: prompt,
	})
	if err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	if l.CtxTrain > 0 && int64(ctxSeq) > l.CtxTrain {
		m.Close()
		return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("a case needs %d positions (prompt + new tokens), the model was trained for %d", ctxSeq, l.CtxTrain))
	}
	l.Settings["requested_dtype"] = req.DType
	l.Settings["gguf"] = src.path
	l.Settings["gguf_source"] = src.how
	if src.convertNs > 0 {
		l.Settings["gguf_convert_ns"] = strconv.FormatInt(src.convertNs, 10)
	}
	if len(src.warnings) > 0 {
		l.Settings["gguf_warnings"] = strings.Join(src.warnings, "; ")
	}
	loaded := protocol.Loaded{
		ContextInitNs: l.ContextInitNs,
		CompileNs:     src.convertNs,
		DeviceName:    l.DeviceName,
		DType:         dtypeOf(l.FType),
		Params:        l.Params,
		Settings:      l.Settings,
	}
	// llama.cpp reads (mmaps) the file and uploads each tensor in one pass:
	// on a GPU the whole load is weights-to-device, on the CPU weights-to-host.
	if dev >= 0 {
		loaded.WeightsToDeviceNs = l.ModelLoadNs
	} else {
		loaded.WeightsToHostNs = l.ModelLoadNs
	}
	return &model{m: m, vocab: l.Vocab}, loaded, nil
}

// dtypeOf names a llama_ftype_name the way requests name dtypes: "all F32"
// is f32, "Q4_K - Medium" q4_k_m, "(guessed) Q8_0" q8_0.
func dtypeOf(ftype string) string {
	s := strings.ToLower(strings.TrimPrefix(ftype, "(guessed) "))
	s = strings.TrimPrefix(s, "all ")
	if base, size, ok := strings.Cut(s, " - "); ok {
		switch size {
		case "small", "medium", "large":
			return base + "_" + size[:1]
		}
		return base
	}
	return s
}

// classify maps a bridge error to the protocol's error classes; load and
// runtime failures stay plain so serve labels them by phase.
func classify(err error) error {
	var be *bridge.Error
	if !errors.As(err, &be) {
		return err
	}
	switch be.Code {
	case bridge.CodeBadArg:
		return serve.BadRequest(err)
	case bridge.CodeUnsupported:
		return serve.Unsupported(err)
	case bridge.CodeOOM:
		return serve.OOM(err)
	}
	return err
}

type model struct {
	m      *bridge.Model
	vocab  int64
	prompt []int32
	ids    []int32
	ns     []int64
}

func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	m.prompt = m.prompt[:0]
	for i, t := range c.PromptTokens {
		if t < 0 || int64(t) >= m.vocab || t > math.MaxInt32 {
			return serve.BadRequest(fmt.Errorf("prompt_tokens[%d] = %d is outside the vocabulary of %d", i, t, m.vocab))
		}
		m.prompt = append(m.prompt, int32(t))
	}
	n, b := c.MaxNewTokens, c.BatchSize
	if cap(m.ids) < n*b {
		m.ids = make([]int32, n*b)
	}
	if cap(m.ns) < n {
		m.ns = make([]int64, n)
	}
	ids, ns := m.ids[:n*b], m.ns[:n]
	stop := context.AfterFunc(ctx, m.m.Cancel)
	err := m.m.Generate(m.prompt, n, b, ids, ns)
	stop()
	if err != nil {
		return classify(err)
	}
	row := make([]int, b)
	for i := range n {
		for r := range b {
			row[r] = int(ids[i*b+r])
		}
		rec.StepAt(ns[i], row...)
	}
	return nil
}

func (m *model) Close() error { return m.m.Close() }
