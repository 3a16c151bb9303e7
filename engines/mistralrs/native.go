package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/cuda-inference-benchmarks/cib/engines/mistralrs/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// nativeTolerance is how far the adapter's decode rate may sit from
// mistral.rs's own before the overhead check fails: ±3%.
const nativeTolerance = 0.03

// nativeIter is one iteration of the overhead check: the same case run once
// through the streaming path the protocol uses and once as a non-streamed
// request that mistral.rs times itself.
type nativeIter struct {
	Case  int `json:"case"`
	Index int `json:"index"`
	// Adapter figures, derived from streamed token times exactly as the runner
	// derives them (TTFT = first token, decode = (N-1)/(last-first)).
	AdapterTTFTNs     int64   `json:"adapter_ttft_ns"`
	AdapterE2ENs      int64   `json:"adapter_e2e_ns"`
	AdapterDecodeTokS float64 `json:"adapter_decode_tok_s"`
	// mistral.rs's own usage of the non-streamed request (whole ms).
	NativePromptMs     float64 `json:"native_prompt_ms"`
	NativeCompletionMs float64 `json:"native_completion_ms"`
	NativeTotalMs      float64 `json:"native_total_ms"`
	// NativeDecodeTokS is (N-1)/completion time: mistral.rs's completion time
	// spans the N-1 decode steps after prefill (its own avg_compl_tok_per_sec
	// divides N by it).
	NativeDecodeTokS    float64 `json:"native_decode_tok_s"`
	NativeAvgComplTokS  float64 `json:"native_avg_compl_tok_per_sec"`
	NativeAvgPromptTokS float64 `json:"native_avg_prompt_tok_per_sec"`
	NativeBridgeWallNs  int64   `json:"native_bridge_wall_ns"`
	SameTokens          bool    `json:"same_tokens"`
}

// nativeSummary compares medians per case.
type nativeSummary struct {
	Case                   string  `json:"case"`
	N                      int     `json:"max_new_tokens"`
	Iterations             int     `json:"iterations"`
	AdapterDecodeTokS      float64 `json:"median_adapter_decode_tok_s"`
	NativeDecodeTokS       float64 `json:"median_native_decode_tok_s"`
	DecodeRatio            float64 `json:"decode_ratio"`
	AdapterE2EMs           float64 `json:"median_adapter_e2e_ms"`
	NativeTotalMs          float64 `json:"median_native_total_ms"`
	AdapterTTFTMs          float64 `json:"median_adapter_ttft_ms"`
	NativePromptMs         float64 `json:"median_native_prompt_ms"`
	BridgeOverheadMs       float64 `json:"median_bridge_overhead_ms"`
	WithinTolerance        bool    `json:"within_tolerance"`
	TokensMatchStreamPaths bool    `json:"tokens_match"`
}

// runNative is `mistralrs native [-device D]`: it reads a protocol run request
// on stdin and writes one JSON line per iteration and one summary line per
// case. Exit 0 when every case's decode rate agrees within ±3%, 1 otherwise.
func runNative(ctx context.Context, e engine, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("native", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 64
	}
	sums, err := nativeCheck(ctx, stdin, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "native: %v\n", err)
		return 1
	}
	ok := true
	for _, s := range sums {
		verdict := "ok"
		if !s.WithinTolerance {
			verdict, ok = "OUT OF TOLERANCE", false
		}
		fmt.Fprintf(stderr, "native %s: adapter decode %.2f tok/s, mistral.rs decode %.2f tok/s, ratio %.4f (±%.0f%%: %s); TTFT %.2f ms vs prefill %.0f ms; E2E %.2f ms vs %.0f ms\n",
			s.Case, s.AdapterDecodeTokS, s.NativeDecodeTokS, s.DecodeRatio, nativeTolerance*100, verdict, s.AdapterTTFTMs, s.NativePromptMs, s.AdapterE2EMs, s.NativeTotalMs)
	}
	if !ok {
		return 1
	}
	return 0
}

func nativeCheck(ctx context.Context, stdin io.Reader, stdout io.Writer) ([]nativeSummary, error) {
	req, err := protocol.DecodeRequest(stdin)
	if err != nil {
		return nil, err
	}
	opts, err := loadOptions(req)
	if err != nil {
		return nil, err
	}
	m, _, err := bridge.Load(req.Model, req.Device, req.DType, opts)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", req.Model, err)
	}
	defer m.Close()
	enc := json.NewEncoder(stdout)
	var sums []nativeSummary
	for ci, c := range req.Cases {
		if c.MaxNewTokens < 2 {
			return nil, fmt.Errorf("case %s: max_new_tokens %d, the decode rate needs at least 2", c.Name, c.MaxNewTokens)
		}
		prompt := promptIDs(c.PromptTokens)
		for range req.Warmup {
			if _, _, err := m.Generate(prompt, c.MaxNewTokens); err != nil {
				return nil, fmt.Errorf("case %s warm-up: %w", c.Name, err)
			}
			if _, _, err := m.GenerateNative(prompt, c.MaxNewTokens); err != nil {
				return nil, fmt.Errorf("case %s warm-up (native): %w", c.Name, err)
			}
		}
		var its []nativeIter
		for i := range req.Iterations {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("interrupted: %w", err)
			}
			ids, tns, err := m.Generate(prompt, c.MaxNewTokens)
			if err != nil {
				return nil, fmt.Errorf("case %s iteration %d: %w", c.Name, i, err)
			}
			nids, u, err := m.GenerateNative(prompt, c.MaxNewTokens)
			if err != nil {
				return nil, fmt.Errorf("case %s iteration %d (native): %w", c.Name, i, err)
			}
			it := nativeIterOf(ci, i, c.MaxNewTokens, tns, u)
			it.SameTokens = slices.Equal(ids, nids)
			if err := enc.Encode(it); err != nil {
				return nil, err
			}
			its = append(its, it)
		}
		s := summarize(c, its)
		if err := enc.Encode(map[string]nativeSummary{"summary": s}); err != nil {
			return nil, err
		}
		sums = append(sums, s)
	}
	if len(sums) == 0 {
		return nil, errors.New("no cases")
	}
	return sums, nil
}

func nativeIterOf(ci, i, n int, tns []int64, u bridge.Usage) nativeIter {
	it := nativeIter{
		Case:                ci,
		Index:               i,
		AdapterTTFTNs:       tns[0],
		AdapterE2ENs:        tns[n-1],
		NativePromptMs:      u.PromptMs,
		NativeCompletionMs:  u.CompletionMs,
		NativeTotalMs:       u.TotalMs,
		NativeAvgComplTokS:  u.AvgComplTokPerSec,
		NativeAvgPromptTokS: u.AvgPromptTokPerSec,
		NativeBridgeWallNs:  u.WallNs,
	}
	if d := tns[n-1] - tns[0]; d > 0 {
		it.AdapterDecodeTokS = float64(n-1) / (float64(d) / 1e9)
	}
	if u.CompletionMs > 0 {
		it.NativeDecodeTokS = float64(n-1) / (u.CompletionMs / 1e3)
	}
	return it
}

func summarize(c protocol.Case, its []nativeIter) nativeSummary {
	pick := func(f func(nativeIter) float64) float64 {
		v := make([]float64, len(its))
		for i, it := range its {
			v[i] = f(it)
		}
		return median(v)
	}
	s := nativeSummary{
		Case:                   c.Name,
		N:                      c.MaxNewTokens,
		Iterations:             len(its),
		AdapterDecodeTokS:      pick(func(it nativeIter) float64 { return it.AdapterDecodeTokS }),
		NativeDecodeTokS:       pick(func(it nativeIter) float64 { return it.NativeDecodeTokS }),
		AdapterE2EMs:           pick(func(it nativeIter) float64 { return float64(it.AdapterE2ENs) / 1e6 }),
		NativeTotalMs:          pick(func(it nativeIter) float64 { return it.NativeTotalMs }),
		AdapterTTFTMs:          pick(func(it nativeIter) float64 { return float64(it.AdapterTTFTNs) / 1e6 }),
		NativePromptMs:         pick(func(it nativeIter) float64 { return it.NativePromptMs }),
		BridgeOverheadMs:       pick(func(it nativeIter) float64 { return float64(it.NativeBridgeWallNs)/1e6 - it.NativeTotalMs }),
		TokensMatchStreamPaths: !slices.ContainsFunc(its, func(it nativeIter) bool { return !it.SameTokens }),
	}
	if s.NativeDecodeTokS > 0 {
		s.DecodeRatio = s.AdapterDecodeTokS / s.NativeDecodeTokS
	}
	s.WithinTolerance = s.DecodeRatio > 0 && math.Abs(s.DecodeRatio-1) <= nativeTolerance
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
