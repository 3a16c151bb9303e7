// Command lmrs is the benchmark engine in the style of lm.rs
// (samuel-vitorino/lm.rs): a minimal CPU Llama in Rust with no ML framework
// underneath and its own group-quantized model file. It is written here, not
// upstream lm.rs, which is not on crates.io. It serves the protocol
// (protocol/serve) and runs the Rust crate in bridge/ through a C ABI, linked
// statically through internal/bridge.
//
// Build with scripts/build-lmrs.sh. Convert models with
// `runner models convert --to lmrs --quant q8_0 …`, or let the engine convert
// an HF directory in memory at load (option quant).
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"

	"github.com/cuda-inference-benchmarks/cib/engines/lmrs/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() { serve.Run(engine{}) }

// maxBatch is the largest batch the engine accepts: rows share each weight
// read in every matmul, so the limit only bounds memory.
const maxBatch = 32

const bestPractice = "lm.rs-style engine written here (upstream samuel-vitorino/lm.rs is not on crates.io): " +
	"plain Rust, no ML framework, CPU only. Weights in its own lmrs file (runner models convert --to lmrs), " +
	"f32 or lm.rs's group-wise q8_0/q4_0 (one f32 scale per group along a row); an HF directory is converted " +
	"in memory at load (option quant; the conversion is loaded.compile_ns). Quantized matmuls quantize their " +
	"input to int8 per group and take integer dot products, as lm.rs does (q4_0 too, where lm.rs packs the " +
	"input to 4 bits). Matmuls split weight rows over a rayon pool of request.threads (0 = all cores); " +
	"kernels are chosen at run time for AVX-512, AVX2 or baseline. f32 KV cache; prompt prefilled in " +
	"batched chunks, then one token per step, greedy argmax (lowest index on ties). All activations are f32 " +
	"whatever dtype the request names (settings.requested_dtype)."

// bridgeLib is the hash of the Rust static library linked in, set by scripts/build-lmrs.sh (-X): it is also what
// makes Go relink when only the library changed (Go does not track files named in #cgo LDFLAGS, and a binary it
// considers up to date is not rewritten).
var bridgeLib string

type engine struct{}

func (engine) Info() protocol.Info {
	info := protocol.Info{
		Name:         "lmrs",
		Library:      "lmrs (lm.rs-style, written here)",
		Devices:      []string{},
		DTypes:       []string{"f32", "f16", "bf16"},
		BestPractice: bestPractice,
		Options: map[string]string{
			"quant":      "weights when the model is an HF directory: f32 (default), q8_0 or q4_0; an lmrs file keeps its own",
			"group_size": "quantization group size for an HF directory (multiple of 16; default 64, else 32 or 16)",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            maxBatch,
			StreamingTimestamps: true,
		},
		Versions: map[string]string{"go": runtime.Version()},
	}
	if bridgeLib != "" {
		info.Versions["bridge_lib_sha256"] = bridgeLib
	}
	v, err := bridge.Versions()
	if err != nil {
		info.LibraryVersion = "unavailable: " + err.Error()
		return info
	}
	info.LibraryVersion = "cib_lmrs " + v["bridge"] + " (format v" + v["format"] + ")"
	info.Devices = []string{"cpu"}
	for k, val := range v {
		info.Versions[k] = val
	}
	return info
}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	kind, _, err := protocol.ParseDevice(req.Device)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	if kind != "cpu" {
		return nil, protocol.Loaded{}, serve.Unsupported(fmt.Errorf("device %q: lmrs runs on the CPU only", req.Device))
	}
	gs := 0
	if s, ok := req.Options["group_size"]; ok {
		if gs, err = strconv.Atoi(s); err != nil || gs <= 0 {
			return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("option group_size %q: want a positive integer", s))
		}
	}
	m, l, err := bridge.Load(req.Model, req.Options["quant"], gs, req.Threads)
	if err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	l.Settings["requested_dtype"] = req.DType
	return &model{m: m, vocab: l.Vocab}, protocol.Loaded{
		ContextInitNs:   l.ContextInitNs,
		WeightsToHostNs: l.WeightsToHostNs,
		CompileNs:       l.ConvertNs,
		DeviceName:      "cpu",
		DType:           "f32",
		Params:          l.Params,
		Settings:        l.Settings,
	}, nil
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
	prompt []uint32
	ids    []uint32
	ns     []int64
}

func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	m.prompt = m.prompt[:0]
	for i, t := range c.PromptTokens {
		if t < 0 || int64(t) >= m.vocab || t > math.MaxUint32 {
			return serve.BadRequest(fmt.Errorf("prompt_tokens[%d] = %d is outside the vocabulary of %d", i, t, m.vocab))
		}
		m.prompt = append(m.prompt, uint32(t))
	}
	n, b := c.MaxNewTokens, c.BatchSize
	if cap(m.ids) < n*b {
		m.ids = make([]uint32, n*b)
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
