package bridge

import "fmt"

// Code classifies a bridge failure; the values are the C ABI's return codes.
type Code int

// Return codes of the C ABI.
const (
	CodeRuntime     Code = 1
	CodeBadRequest  Code = 2
	CodeOOM         Code = 3
	CodeUnsupported Code = 4
	CodeLoad        Code = 5
)

// Error is a failure reported by the Rust side.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Receiver says how the bridge waits for streamed chunks.
type Receiver int

// Receivers.
const (
	// ReceiverAuto spins on cuda devices and parks on the cpu.
	ReceiverAuto Receiver = -1
	// ReceiverPark sleeps on the channel between chunks.
	ReceiverPark Receiver = 0
	// ReceiverSpin busy-polls the channel, so a chunk is seen the moment it is
	// sent and mistral.rs's engine thread makes no wake-up call per token.
	ReceiverSpin Receiver = 1
)

// Switch is a setting that is on, off, or left to mistral.rs's default.
type Switch int

// Switch values.
const (
	Auto Switch = -1
	Off  Switch = 0
	On   Switch = 1
)

// Options configure a load.
type Options struct {
	// Threads > 0 sets the CPU thread count.
	Threads int
	// PagedAttention: On (cuda only), Off, or Auto = mistral.rs's default
	// (`--paged-attn auto`: on for cuda, off on the cpu).
	PagedAttention Switch
	// Receiver picks how streamed chunks are awaited.
	Receiver Receiver
}

// LoadStats is the cold-start breakdown measured in Rust, in ns.
type LoadStats struct {
	// ContextInitNs is device creation (the CUDA context on cuda).
	ContextInitNs int64
	// WeightsNs is mistral.rs reading, converting and placing the weights on
	// the device, which it does in one pass.
	WeightsNs int64
	// EngineStartNs is starting mistral.rs's engine thread and scheduler.
	EngineStartNs int64
	// MaxSeqLen is the longest prompt + output the model accepts, in tokens.
	MaxSeqLen int64
}

// Usage is mistral.rs's own accounting of one non-streamed request. Its times
// are whole milliseconds on mistral.rs's clock.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	// PromptMs is the prefill step, in ms.
	PromptMs float64
	// CompletionMs runs from the end of the prefill step to the last token,
	// in ms: N-1 decode steps.
	CompletionMs float64
	// TotalMs runs from request arrival to the last token, in ms.
	TotalMs            float64
	AvgPromptTokPerSec float64
	AvgComplTokPerSec  float64
	// WallNs is the whole call seen from the bridge, in ns.
	WallNs int64
}

func (u Usage) String() string {
	return fmt.Sprintf("prompt %.0f ms, completion %.0f ms, total %.0f ms", u.PromptMs, u.CompletionMs, u.TotalMs)
}
