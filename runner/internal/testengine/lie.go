package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// lies are the "fail" modes in which the engine writes its own event stream,
// each wrong in one way:
//
//	flood          keeps sending timed iterations past the requested count
//	mislabel       labels its warm-up iterations as timed
//	no-loaded      never sends loaded
//	double-loaded  sends loaded twice
//	zero-times     reports every token at 0 ns
//	long           claims each iteration took an hour
//	error-hang     sends an error event, then hangs instead of exiting
var lies = map[string]bool{
	"flood": true, "mislabel": true, "no-loaded": true, "double-loaded": true,
	"zero-times": true, "long": true, "error-hang": true,
}

// lie answers req with the event stream of the "fail" mode and returns the
// exit code.
func lie(ctx context.Context, req *protocol.Request, stdout io.Writer) int {
	mode := req.Options["fail"]
	tokenUs := 200
	if v, err := strconv.Atoi(req.Options["token_us"]); err == nil {
		tokenUs = v
	}
	enc := protocol.NewEncoder(stdout)
	start := time.Now()
	if mode == "error-hang" {
		_ = enc.Encode(protocol.Event{Type: protocol.EventError, Error: &protocol.Error{
			Code: protocol.CodeLoad, Message: "load /weights: testengine ran out of pretend memory"}})
		time.Sleep(time.Hour)
		return 1
	}
	loaded := protocol.Event{Type: protocol.EventLoaded, Loaded: &protocol.Loaded{TotalNs: int64(time.Since(start)) + 1, DType: req.DType}}
	switch mode {
	case "no-loaded":
	case "double-loaded":
		_ = enc.Encode(loaded)
		_ = enc.Encode(loaded)
	default:
		_ = enc.Encode(loaded)
	}
	sent := 0
	iterate := func(ci, idx int, warm bool) {
		c := &req.Cases[ci]
		it := protocol.Iteration{Case: ci, Index: idx, Warmup: warm, StartNs: int64(time.Since(start)), PromptTokens: len(c.PromptTokens),
			OutputTokens: make([][]int, c.BatchSize)}
		t0 := time.Now()
		for i := range c.MaxNewTokens {
			time.Sleep(time.Duration(tokenUs) * time.Microsecond)
			it.TokenNs = append(it.TokenNs, int64(time.Since(t0)))
			for r, id := range tokenIDs(c, i) {
				it.OutputTokens[r] = append(it.OutputTokens[r], id)
			}
		}
		it.EndNs = int64(time.Since(t0))
		switch mode {
		case "mislabel":
			it.Warmup = false
		case "zero-times":
			for i := range it.TokenNs {
				it.TokenNs[i] = 0
			}
			it.EndNs = 0
		case "long":
			for i := range it.TokenNs {
				it.TokenNs[i] += int64(time.Hour)
			}
			it.EndNs += int64(time.Hour)
		}
		_ = enc.Encode(protocol.Event{Type: protocol.EventIteration, Iteration: &it})
		sent++
	}
	for ci := range req.Cases {
		for idx := range req.Warmup {
			iterate(ci, idx, true)
		}
		for idx := range req.Iterations {
			iterate(ci, idx, false)
		}
	}
	if mode == "flood" {
		for idx := req.Iterations; ctx.Err() == nil; idx++ {
			iterate(len(req.Cases)-1, idx, false)
		}
		return 1
	}
	_ = enc.Encode(protocol.Event{Type: protocol.EventDone, Done: &protocol.Done{Iterations: sent}})
	return 0
}
