package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"github.com/cuda-inference-benchmarks/cib/engines/mistralrs/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/serve"
)

// Request options.
const (
	// optPagedAttention turns mistral.rs's paged attention on.
	optPagedAttention = "paged_attention"
	// optReceiver picks how the bridge waits for streamed chunks.
	optReceiver = "receiver"
)

// bestPractice says how mistral.rs is configured, for the report.
const bestPractice = "mistral.rs Rust API (mistralrs-core, the engine the mistralrs crate drives) with mistral.rs's " +
	"own defaults: plain Llama pipeline, no ISQ, default scheduler (32 sequences), paged attention on for CUDA as " +
	"`mistralrs serve --paged-attn auto` does (block 32, KV pool 90% of free GPU memory; option paged_attention=off " +
	"gives the Rust builder's eager default), off on the CPU; flash-attn and cuDNN not compiled in. Greedy via temperature 0 (argmax), EOS stop disabled, prefix cache off so every " +
	"iteration runs its prefill. Prompts are sent as token ids (RequestMessage::CompletionTokens) on the streaming API; " +
	"each token's time is taken in Rust as its chunk arrives."

// bridgeLib is the bridge library's sha256 prefix, stamped by
// scripts/build-mistralrs.sh (-X main.bridgeLib=…).
var bridgeLib string

// engine implements serve.Engine around the mistral.rs bridge.
type engine struct{}

func (engine) Info() protocol.Info {
	devices := []string{"cpu"}
	if bridge.HasCUDA() {
		devices = append(devices, "cuda")
	}
	versions := bridge.Versions()
	versions["go"] = runtime.Version()
	if bridgeLib != "" {
		versions["bridge_lib_sha256"] = bridgeLib
	}
	return protocol.Info{
		Name:           "mistralrs",
		Library:        "mistral.rs",
		LibraryVersion: versions["mistralrs-core"],
		Versions:       versions,
		Devices:        devices,
		DTypes:         []string{"f32", "f16", "bf16"},
		Options: map[string]string{
			optPagedAttention: "auto|on|off: mistral.rs paged attention KV cache (auto = mistral.rs's default: on for cuda, off on cpu; on needs cuda)",
			optReceiver:       "auto|spin|park: how the bridge awaits streamed tokens (auto = spin on cuda, park on cpu)",
		},
		Capabilities: protocol.Capabilities{
			MaxBatch:            1,
			StreamingTimestamps: true,
		},
		BestPractice: bestPractice,
	}
}

// modelConfig is the part of config.json the adapter checks requests against.
type modelConfig struct {
	VocabSize int `json:"vocab_size"`
}

func (engine) Load(ctx context.Context, req *protocol.Request) (serve.Model, protocol.Loaded, error) {
	opts, err := loadOptions(req)
	if err != nil {
		return nil, protocol.Loaded{}, serve.BadRequest(err)
	}
	raw, err := os.ReadFile(filepath.Join(req.Model, "config.json"))
	if err != nil {
		return nil, protocol.Loaded{}, fmt.Errorf("read model config: %w", err)
	}
	var cfg modelConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, protocol.Loaded{}, fmt.Errorf("parse %s: %w", filepath.Join(req.Model, "config.json"), err)
	}
	for i, c := range req.Cases {
		for j, t := range c.PromptTokens {
			if cfg.VocabSize > 0 && t >= cfg.VocabSize {
				return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("cases[%d] (%s): prompt_tokens[%d] = %d is outside the model's vocabulary of %d", i, c.Name, j, t, cfg.VocabSize))
			}
		}
		if !c.Greedy {
			return nil, protocol.Loaded{}, serve.Unsupported(fmt.Errorf("cases[%d] (%s): only greedy decoding is implemented", i, c.Name))
		}
	}
	m, st, err := bridge.Load(req.Model, req.Device, req.DType, opts)
	if err != nil {
		return nil, protocol.Loaded{}, classify(err)
	}
	for i, c := range req.Cases {
		if st.MaxSeqLen > 0 && int64(len(c.PromptTokens)+c.MaxNewTokens) > st.MaxSeqLen {
			m.Close()
			return nil, protocol.Loaded{}, serve.BadRequest(fmt.Errorf("cases[%d] (%s): %d prompt + %d new tokens exceed the model's %d positions", i, c.Name, len(c.PromptTokens), c.MaxNewTokens, st.MaxSeqLen))
		}
	}
	settings := m.Settings()
	if settings == nil {
		settings = map[string]string{}
	}
	settings["flash_attn"] = "off (not compiled in)"
	settings["sampling"] = "greedy: temperature 0 (argmax), no penalties"
	settings["eos"] = "ignored (engine built with disable_eos_stop)"
	settings["prompt"] = "token ids (RequestMessage::CompletionTokens)"
	settings["timestamps"] = "streamed chunk arrival, taken in Rust"
	settings["load_breakdown"] = "mistral.rs reads, converts and places weights in one pass: weights_to_device_ns (cuda) or weights_to_host_ns (cpu) holds it all; engine start is in total_ns only"
	settings["engine_start_ns"] = strconv.FormatInt(st.EngineStartNs, 10)
	deviceName := settings["device_name"]
	delete(settings, "device_name")
	loaded := protocol.Loaded{
		ContextInitNs: st.ContextInitNs,
		DeviceName:    deviceName,
		DType:         req.DType,
		Settings:      settings,
	}
	if kind, _, _ := protocol.ParseDevice(req.Device); kind == "cuda" {
		loaded.WeightsToDeviceNs = st.WeightsNs
	} else {
		loaded.WeightsToHostNs = st.WeightsNs
	}
	return &model{m: m}, loaded, nil
}

// model is a loaded mistral.rs model behind serve.Model.
type model struct {
	m *bridge.Model
}

func (m *model) Generate(ctx context.Context, c *protocol.Case, rec *serve.Recorder) error {
	ids, tokenNs, err := m.m.Generate(promptIDs(c.PromptTokens), c.MaxNewTokens)
	if err != nil {
		return classify(err)
	}
	for i, id := range ids {
		rec.StepAt(tokenNs[i], int(id))
	}
	return nil
}

func (m *model) Close() error { return m.m.Close() }

func promptIDs(toks []int) []uint32 {
	out := make([]uint32, len(toks))
	for i, t := range toks {
		out[i] = uint32(t)
	}
	return out
}

// classify maps a bridge failure onto the protocol's error classes.
func classify(err error) error {
	var be *bridge.Error
	if !errors.As(err, &be) {
		return err
	}
	switch be.Code {
	case bridge.CodeBadRequest:
		return serve.BadRequest(err)
	case bridge.CodeUnsupported:
		return serve.Unsupported(err)
	case bridge.CodeOOM:
		return serve.OOM(err)
	default:
		return err
	}
}

// loadOptions turns the request's options into bridge options.
func loadOptions(req *protocol.Request) (bridge.Options, error) {
	o := bridge.Options{Threads: req.Threads, Receiver: bridge.ReceiverAuto}
	switch v := req.Options[optPagedAttention]; v {
	case "", "auto":
		o.PagedAttention = bridge.Auto
	case "on":
		o.PagedAttention = bridge.On
	case "off":
		o.PagedAttention = bridge.Off
	default:
		return o, fmt.Errorf("option %s: %q: want auto, on or off", optPagedAttention, v)
	}
	switch v := req.Options[optReceiver]; v {
	case "", "auto":
	case "spin":
		o.Receiver = bridge.ReceiverSpin
	case "park":
		o.Receiver = bridge.ReceiverPark
	default:
		return o, fmt.Errorf("option %s: %q: want auto, spin or park", optReceiver, v)
	}
	return o, nil
}
