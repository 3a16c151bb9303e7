// Package protocol defines the wire protocol between the benchmark runner and
// every engine binary: the `info` object, the `run` request, and the JSON-lines
// events an engine streams back. It imports the standard library only, so any
// engine module can depend on it without pulling anything else in.
//
// The human-readable specification lives in README.md next to this file; Python
// and Rust bridges implement that text, this package is its Go form.
package protocol

// Version is the protocol version this package speaks. A request carries it and
// an engine refuses a version it does not know.
const Version = 1

// Info is what `ENGINE info` prints: one JSON object on stdout.
type Info struct {
	// Protocol is the protocol version the engine implements.
	Protocol int `json:"protocol"`
	// Name is the engine's short name, e.g. "candle".
	Name string `json:"name"`
	// Library is the inference library the engine wraps, e.g. "candle-core".
	Library string `json:"library"`
	// LibraryVersion is that library's version string.
	LibraryVersion string `json:"library_version"`
	// Versions lists other relevant component versions (torch, CUDA, rustc, Go…).
	Versions map[string]string `json:"versions,omitempty"`
	// Devices the binary can run on: "cpu", "cuda".
	Devices []string `json:"devices"`
	// DTypes the engine accepts: "f32", "f16", "bf16".
	DTypes []string `json:"dtypes"`
	// Options lists the engine-specific request options with a one-line meaning
	// each, e.g. {"mode": "eager|compiled: …"}.
	Options map[string]string `json:"options,omitempty"`
	// Capabilities says what the engine can report and do.
	Capabilities Capabilities `json:"capabilities"`
	// BestPractice describes how the engine is configured to run as its authors
	// recommend (fusion, autotune, graphs, attention kernel…).
	BestPractice string `json:"best_practice,omitempty"`
}

// Capabilities lists optional engine features.
type Capabilities struct {
	// MaxBatch is the largest batch size supported (1 when unbatched).
	MaxBatch int `json:"max_batch"`
	// MaxSeqLen is the longest prompt+output length supported, in tokens; 0 means
	// the model's own limit.
	MaxSeqLen int `json:"max_seq_len"`
	// StreamingTimestamps is true when token times are taken as each token
	// becomes available on the host (not spread after the fact).
	StreamingTimestamps bool `json:"streaming_timestamps"`
	// AllocatorStats is true when iterations report the allocator's peak bytes.
	AllocatorStats bool `json:"allocator_stats"`
	// DeviceTimings is true when iterations carry device-clock (CUDA event)
	// token times as well.
	DeviceTimings bool `json:"device_timings"`
	// Prepare is true when the engine implements `ENGINE prepare`: the work
	// derived from a model that its launches would otherwise do at load and
	// then reuse from a cache (a format conversion, an ahead-of-time export),
	// done once before the first launch and reported apart from cold start.
	Prepare bool `json:"prepare,omitempty"`
}

// Request is the single JSON object an engine reads on stdin for `ENGINE run`.
type Request struct {
	// Protocol must equal Version.
	Protocol int `json:"protocol"`
	// Model is the path of an HF-style model directory (config.json,
	// *.safetensors).
	Model string `json:"model"`
	// Device is "cpu" or "cuda:N".
	Device string `json:"device"`
	// DType is "f32", "f16" or "bf16".
	DType string `json:"dtype"`
	// Seed seeds any randomness the engine has (greedy decoding uses none).
	Seed uint64 `json:"seed"`
	// Threads is the CPU thread count; 0 lets the engine choose.
	Threads int `json:"threads,omitempty"`
	// Options are engine-specific settings (see Info.Options).
	Options map[string]string `json:"options,omitempty"`
	// Warmup is the number of untimed iterations per case before timing.
	Warmup int `json:"warmup"`
	// Iterations is the number of timed iterations per case.
	Iterations int `json:"iterations"`
	// Cases are the workloads, run in order.
	Cases []Case `json:"cases"`
}

// Case is one workload: a prompt given as token ids and an exact output length.
type Case struct {
	// Name labels the case in reports.
	Name string `json:"name"`
	// PromptTokens are the prompt's token ids, identical for every engine.
	PromptTokens []int `json:"prompt_tokens"`
	// MaxNewTokens is the exact number of tokens to generate (with IgnoreEOS).
	MaxNewTokens int `json:"max_new_tokens"`
	// BatchSize is how many copies of the prompt run together.
	BatchSize int `json:"batch_size"`
	// Greedy selects argmax decoding; the runner always sets it.
	Greedy bool `json:"greedy"`
	// IgnoreEOS makes the engine generate exactly MaxNewTokens tokens.
	IgnoreEOS bool `json:"ignore_eos"`
}

// EventType names the kind of an event line.
type EventType string

// Event types, in the order an engine emits them.
const (
	EventLoaded    EventType = "loaded"
	EventIteration EventType = "iteration"
	EventDone      EventType = "done"
	EventError     EventType = "error"
	// EventPrepared is the one event of `ENGINE prepare` (then exit 0).
	EventPrepared EventType = "prepared"
)

// Event is one JSON line an engine writes on stdout during `run`. Exactly the
// field named by Type is set.
type Event struct {
	Type      EventType  `json:"type"`
	Loaded    *Loaded    `json:"loaded,omitempty"`
	Iteration *Iteration `json:"iteration,omitempty"`
	Done      *Done      `json:"done,omitempty"`
	Error     *Error     `json:"error,omitempty"`
	Prepared  *Prepared  `json:"prepared,omitempty"`
}

// Prepared reports what `ENGINE prepare` did for a request: the model-derived
// artifacts the engine's launches will find in its cache.
type Prepared struct {
	// TotalNs is the engine's own measure of the command, from process start.
	TotalNs int64 `json:"total_ns"`
	// Ran is false when every artifact was already cached (nothing was made).
	Ran bool `json:"ran"`
	// Steps says, per artifact, what was made or found and how long it took,
	// in words (e.g. "gguf_f16": "converted in 35.2 s: /models/x/.gguf/…").
	// The one step PreparedNothing says why this request has nothing to prepare.
	Steps map[string]string `json:"steps,omitempty"`
}

// PreparedNothing is the Steps key of an engine that declares prepare but has nothing to prepare for this request
// (another device or option), its value why; Ran is false.
const PreparedNothing = "nothing"

// Loaded reports that the model is ready, with the cold-start breakdown. All
// durations are in ns, measured by the engine on its monotonic clock.
type Loaded struct {
	// ContextInitNs is device/context/runtime initialisation.
	ContextInitNs int64 `json:"context_init_ns"`
	// WeightsToHostNs is reading weights from disk into host memory.
	WeightsToHostNs int64 `json:"weights_to_host_ns"`
	// WeightsToDeviceNs is moving weights from host to the device.
	WeightsToDeviceNs int64 `json:"weights_to_device_ns"`
	// CompileNs is ahead-of-time compilation or graph capture done at load, if any.
	CompileNs int64 `json:"compile_ns,omitempty"`
	// TotalNs is the engine's own measure of load, from process start when known.
	TotalNs int64 `json:"total_ns"`
	// DeviceName is the device as the library names it, e.g. "NVIDIA H100 80GB HBM3".
	DeviceName string `json:"device_name,omitempty"`
	// DType is the dtype actually used for compute.
	DType string `json:"dtype"`
	// Params is the number of model parameters loaded.
	Params int64 `json:"params,omitempty"`
	// Settings records the settings actually in effect (attention kernel,
	// graphs, fusion, threads…).
	Settings map[string]string `json:"settings,omitempty"`
}

// Iteration is one generation. Times are raw: StartNs is the engine's monotonic
// clock at request start (any epoch), every other time is an offset from it in
// ns. The runner derives all metrics from these numbers.
type Iteration struct {
	// Case is the index into Request.Cases.
	Case int `json:"case"`
	// Index counts iterations of this case, warm-up and timed separately, from 0.
	Index int `json:"index"`
	// Warmup marks an untimed warm-up iteration.
	Warmup bool `json:"warmup"`
	// StartNs is the monotonic clock at iteration start, in ns.
	StartNs int64 `json:"start_ns"`
	// TokenNs holds, per output position, the offset in ns from StartNs at which
	// that token was available on the host. With a batch, one entry per step.
	TokenNs []int64 `json:"token_ns"`
	// EndNs is the offset in ns from StartNs when the iteration ended.
	EndNs int64 `json:"end_ns"`
	// DeviceTokenNs optionally holds the same offsets measured by device events.
	DeviceTokenNs []int64 `json:"device_token_ns,omitempty"`
	// PromptTokens is the number of prompt tokens processed per sequence.
	PromptTokens int `json:"prompt_tokens"`
	// OutputTokens is the output token ids, one row per batch sequence.
	OutputTokens [][]int `json:"output_tokens"`
	// PeakAllocBytes is the engine allocator's peak during the iteration; 0 when
	// unknown.
	PeakAllocBytes int64 `json:"peak_alloc_bytes,omitempty"`
}

// Done ends a successful run.
type Done struct {
	// Iterations is the total number of iteration events sent.
	Iterations int `json:"iterations"`
}

// Error reports a failure; the engine exits non-zero after writing it.
type Error struct {
	// Code is a short machine-readable class: "bad_request", "load", "oom",
	// "runtime", "unsupported".
	Code string `json:"code"`
	// Message says what failed, with context.
	Message string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest  = "bad_request"
	CodeLoad        = "load"
	CodeOOM         = "oom"
	CodeRuntime     = "runtime"
	CodeUnsupported = "unsupported"
)
