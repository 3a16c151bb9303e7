// Command candle is the benchmark engine for Hugging Face candle: it serves the
// protocol (protocol/serve) and runs candle-transformers' Llama through a small
// Rust bridge (bridge/, C ABI, linked statically through internal/bridge).
//
// Build with scripts/build-candle.sh (CPU) or scripts/build-candle.sh --cuda
// (CUDA 13.0, sm_90, into .gpu/bin/candle).
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"

	"github.com/cuda-inference-benchmarks/cib/engines/candle/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

func main() { serve.Run(engine{}) }

// maxBatch is the largest batch the engine accepts: rows run together through
// one forward with candle's own KV cache.
const maxBatch = 32

// bestPractice says how candle is run, following candle-examples' llama.
const bestPractice = "candle-transformers models::llama::Llama loaded with VarBuilder::from_mmaped_safetensors; " +
	"KV cache on (Cache::new(true, …)); prompt prefilled in one forward, then one token per forward, " +
	"greedy argmax on device read back with to_scalar (the loop of candle-examples/examples/llama); " +
	"f32 on CPU, bf16/f16 on CUDA with cuBLAS and candle's PTX kernels built for sm_90 by nvcc 13.0; " +
	"no flash-attn (needs a separate multi-hour kernel build), no CUDA graphs (candle has none for llama)."

type engine struct{}

// bridgeLib is the hash of the Rust static library linked in, set by scripts/build-candle.sh (-X) and checked
// there through `candle info`, so a binary linked against an older library cannot ship unnoticed.
var bridgeLib string

func (engine) Info() protocol.Info {
	info := protocol.Info{
		Name:         "candle",
		Library:      "candle-core",
		Devices:      []string{},
		DTypes:       []string{"f32", "f16", "bf16"},
		BestPractice: bestPractice,
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
	info.LibraryVersion = v["candle-core"]
	info.Devices = []string{"cpu"}
	if v["cuda"] == "true" {
		info.Devices = append(info.Devices, "cuda")
	}
	for k, val := range v {
		if k != "candle-core" && k != "cuda" {
			info.Versions[k] = val
		}
	}
	return info
}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	kind, ord, err := protocol.ParseDevice(req.Device)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	dev := "cpu"
	if kind == "cuda" {
		dev = "cuda:" + strconv.Itoa(ord)
	}
	m, l, err := bridge.Load(req.Model, dev, req.DType, req.Threads)
	if err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	l.Settings["device"] = dev
	return &model{m: m, vocab: l.Vocab}, protocol.Loaded{
		ContextInitNs:     l.ContextInitNs,
		WeightsToHostNs:   l.WeightsToHostNs,
		WeightsToDeviceNs: l.WeightsToDeviceNs,
		DeviceName:        l.DeviceName,
		DType:             req.DType,
		Params:            l.Params,
		Settings:          l.Settings,
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
