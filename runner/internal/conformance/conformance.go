// Package conformance checks that an engine binary speaks the protocol:
// a valid info object, a valid event stream with exact token counts, greedy
// determinism, and a clear error event with a non-zero exit on bad input.
// Every engine must pass it before its numbers are trusted.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
)

// Options say what to check.
type Options struct {
	// Path is the engine binary.
	Path string
	// Model is the model directory used for the runs.
	Model string
	// Device and DType are used for the runs.
	Device, DType string
	// Vocab bounds the prompt ids.
	Vocab int
	// Threads and EngineOptions go into every run request (a variant such as
	// mistralrs:paged_attention=off).
	Threads       int
	EngineOptions map[string]string
	Env           []string
	// Timeout bounds each launch.
	Timeout time.Duration
}

// Check is one conformance check's outcome.
type Check struct {
	Name string `json:"name"`
	// Err is nil when the check passed.
	Err error `json:"-"`
	// Skip says why the check did not apply.
	Skip string `json:"skip,omitempty"`
}

// Passed reports whether the check passed or was skipped.
func (c Check) Passed() bool { return c.Err == nil }

// Run runs every check and returns them in order.
func Run(ctx context.Context, o Options) []Check {
	var out []Check
	add := func(name string, err error) { out = append(out, Check{Name: name, Err: err}) }
	skip := func(name, why string) { out = append(out, Check{Name: name, Skip: why}) }
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	info, _, err := spawn.Info(ctx, o.Path, o.Env, time.Minute)
	add("info prints one valid JSON object and nothing else", err)
	if err != nil {
		return out
	}
	add("info fields", checkInfo(info, o))

	p1 := prompt(5, o.Vocab, 11)
	p2 := prompt(9, o.Vocab, 23)
	req := base(o)
	req.Warmup, req.Iterations = 1, 2
	req.Cases = []protocol.Case{
		{Name: "short", PromptTokens: p1, MaxNewTokens: 3, BatchSize: 1, Greedy: true, IgnoreEOS: true},
		{Name: "longer", PromptTokens: p2, MaxNewTokens: 7, BatchSize: 1, Greedy: true, IgnoreEOS: true},
	}
	if info.Capabilities.Prepare {
		add("prepare: one prepared event, exit 0; a second finds everything cached (ran false)", checkPrepare(ctx, o, mustJSON(req)))
	} else {
		skip("prepare", "engine does not declare capabilities.prepare")
	}
	evs, res := launch(ctx, o, mustJSON(req))
	add("run: stdout is JSON events only, exit 0 after done", res.Err)
	add("run: loaded first, iterations in order, exact token counts, done last", checkStream(evs, &req))
	add("run: greedy output identical across iterations", checkDeterministic(evs))
	add("run: cold-start breakdown and timestamps sane", checkTimes(evs))

	if info.Capabilities.MaxBatch >= 2 {
		breq := base(o)
		breq.Warmup, breq.Iterations = 0, 1
		breq.Cases = []protocol.Case{{Name: "batch2", PromptTokens: p2, MaxNewTokens: 7, BatchSize: 2, Greedy: true, IgnoreEOS: true}}
		bevs, bres := launch(ctx, o, mustJSON(breq))
		err := bres.Err
		if err == nil {
			err = checkStream(bevs, &breq)
		}
		if err == nil {
			err = checkBatchRows(bevs, evs)
		}
		add("batch 2: two rows of exactly N tokens, equal to the batch-1 output", err)
	} else {
		skip("batch 2", "engine reports max_batch < 2")
	}

	bad := base(o)
	bad.Protocol = 99
	bad.Iterations = 1
	bad.Cases = req.Cases[:1]
	add("bad request (protocol 99): error event, non-zero exit", expectError(ctx, o, mustJSON(bad), protocol.CodeBadRequest))
	add("malformed JSON request: error event, non-zero exit", expectError(ctx, o, []byte(`{"protocol": 1, "model": `), protocol.CodeBadRequest))
	add("unknown request field: error event, non-zero exit", expectError(ctx, o, []byte(`{"protocol":1,"modle":"x"}`), protocol.CodeBadRequest))
	missing := base(o)
	missing.Model = "/nonexistent/model-dir"
	missing.Iterations = 1
	missing.Cases = req.Cases[:1]
	add("missing model directory: error event, non-zero exit", expectError(ctx, o, mustJSON(missing), ""))
	zero := base(o)
	zero.Iterations = 1
	zero.Cases = []protocol.Case{{Name: "zero", PromptTokens: p1, MaxNewTokens: 0, BatchSize: 1}}
	add("max_new_tokens 0: error event, non-zero exit", expectError(ctx, o, mustJSON(zero), protocol.CodeBadRequest))
	return out
}

func base(o Options) protocol.Request {
	return protocol.Request{Protocol: protocol.Version, Model: o.Model, Device: o.Device, DType: o.DType, Seed: 1,
		Threads: o.Threads, Options: o.EngineOptions}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func prompt(n, vocab, seed int) []int {
	out := make([]int, n)
	span := max(vocab-3, 1)
	for i := range out {
		out[i] = 3 + (seed*(i+7)*2654435761)%span
	}
	return out
}

func launch(ctx context.Context, o Options, stdin []byte) ([]protocol.Event, spawn.Result) {
	return command(ctx, o, "run", stdin)
}

// command runs `ENGINE cmd` with stdin and collects its events.
func command(ctx context.Context, o Options, cmd string, stdin []byte) ([]protocol.Event, spawn.Result) {
	var evs []protocol.Event
	res := spawn.Launch(ctx, spawn.Options{
		Path: o.Path, Args: []string{cmd}, Env: o.Env, Stdin: stdin,
		Timeouts: spawn.Timeouts{Start: o.Timeout, Stall: o.Timeout, Total: 2 * o.Timeout},
	}, nil, func(r spawn.Received) error {
		evs = append(evs, r.Event)
		return nil
	})
	if res.Err != nil && res.StderrTail != "" {
		res.Err = fmt.Errorf("%w (stderr: %s)", res.Err, tail(res.StderrTail, 600))
	}
	return evs, res
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func checkInfo(info *protocol.Info, o Options) error {
	var errs []error
	if info.Protocol != protocol.Version {
		errs = append(errs, fmt.Errorf("protocol %d, want %d", info.Protocol, protocol.Version))
	}
	if info.Name == "" || info.Library == "" || info.LibraryVersion == "" {
		errs = append(errs, fmt.Errorf("name/library/library_version must be set (got %q/%q/%q)", info.Name, info.Library, info.LibraryVersion))
	}
	kind, _, _ := protocol.ParseDevice(o.Device)
	if !slices.Contains(info.Devices, kind) {
		errs = append(errs, fmt.Errorf("devices %v lack %s", info.Devices, kind))
	}
	if !slices.Contains(info.DTypes, o.DType) {
		errs = append(errs, fmt.Errorf("dtypes %v lack %s", info.DTypes, o.DType))
	}
	if info.Capabilities.MaxBatch < 1 {
		errs = append(errs, fmt.Errorf("capabilities.max_batch %d < 1", info.Capabilities.MaxBatch))
	}
	return errors.Join(errs...)
}

func checkStream(evs []protocol.Event, req *protocol.Request) error {
	if len(evs) == 0 {
		return errors.New("no events")
	}
	if evs[0].Type != protocol.EventLoaded {
		return fmt.Errorf("first event is %q, want loaded", evs[0].Type)
	}
	last := evs[len(evs)-1]
	if last.Type != protocol.EventDone {
		return fmt.Errorf("last event is %q, want done", last.Type)
	}
	its := evs[1 : len(evs)-1]
	want := len(req.Cases) * (req.Warmup + req.Iterations)
	if len(its) != want || last.Done.Iterations != want {
		return fmt.Errorf("%d iteration events, done says %d, want %d", len(its), last.Done.Iterations, want)
	}
	k := 0
	for ci, c := range req.Cases {
		for _, warm := range []bool{true, false} {
			n := req.Iterations
			if warm {
				n = req.Warmup
			}
			for idx := range n {
				ev := its[k]
				k++
				if ev.Type != protocol.EventIteration {
					return fmt.Errorf("event %d is %q, want iteration", k, ev.Type)
				}
				it := ev.Iteration
				if it.Case != ci || it.Index != idx || it.Warmup != warm {
					return fmt.Errorf("iteration %d: case %d index %d warmup %v, want case %d index %d warmup %v", k, it.Case, it.Index, it.Warmup, ci, idx, warm)
				}
				if len(it.TokenNs) != c.MaxNewTokens || len(it.OutputTokens) != c.BatchSize {
					return fmt.Errorf("case %s: %d tokens × %d rows, want %d × %d", c.Name, len(it.TokenNs), len(it.OutputTokens), c.MaxNewTokens, c.BatchSize)
				}
				if it.PromptTokens != len(c.PromptTokens) {
					return fmt.Errorf("case %s: prompt_tokens %d, want %d", c.Name, it.PromptTokens, len(c.PromptTokens))
				}
				for _, row := range it.OutputTokens {
					for _, id := range row {
						if id < 0 {
							return fmt.Errorf("case %s: negative output id %d", c.Name, id)
						}
					}
				}
			}
		}
	}
	return nil
}

func iterations(evs []protocol.Event) []*protocol.Iteration {
	var out []*protocol.Iteration
	for _, e := range evs {
		if e.Type == protocol.EventIteration {
			out = append(out, e.Iteration)
		}
	}
	return out
}

func checkDeterministic(evs []protocol.Event) error {
	first := map[int][]int{}
	for _, it := range iterations(evs) {
		row := it.OutputTokens[0]
		if f, ok := first[it.Case]; !ok {
			first[it.Case] = row
		} else if !slices.Equal(f, row) {
			return fmt.Errorf("case %d iteration %d: %v differs from %v", it.Case, it.Index, row, f)
		}
	}
	if len(first) == 0 {
		return errors.New("no iterations to compare")
	}
	return nil
}

func checkTimes(evs []protocol.Event) error {
	loaded, its := 0, 0
	for _, e := range evs {
		if e.Type == protocol.EventLoaded {
			loaded++
			if e.Loaded.TotalNs <= 0 {
				return errors.New("loaded.total_ns is 0")
			}
		}
		if e.Type != protocol.EventIteration {
			continue
		}
		its++
		it := e.Iteration
		if it.StartNs < 0 || len(it.TokenNs) == 0 || it.TokenNs[0] <= 0 {
			return fmt.Errorf("case %d iteration %d: first token at %v ns, start %d: want positive", it.Case, it.Index, it.TokenNs, it.StartNs)
		}
	}
	if loaded != 1 || its == 0 {
		return fmt.Errorf("nothing to check: %d loaded events, %d iterations", loaded, its)
	}
	return nil
}

func checkBatchRows(bevs, evs []protocol.Event) error {
	bits := iterations(bevs)
	if len(bits) == 0 {
		return errors.New("no batch iteration")
	}
	rows := bits[0].OutputTokens
	for r := 1; r < len(rows); r++ {
		if !slices.Equal(rows[0], rows[r]) {
			return fmt.Errorf("row %d %v differs from row 0 %v for the same prompt", r, rows[r], rows[0])
		}
	}
	for _, it := range iterations(evs) {
		if it.Case == 1 && !slices.Equal(it.OutputTokens[0], rows[0]) {
			return fmt.Errorf("batch row %v differs from batch-1 output %v", rows[0], it.OutputTokens[0])
		}
	}
	return nil
}

// expectError runs a request that must fail: an error event (with code, when
// given) and a non-zero exit, and nothing but JSON on stdout.
// checkPrepare runs `ENGINE prepare` twice on req: each must answer one prepared event and exit 0, and the second
// must find what the first made (ran false), as a benchmark's launches will.
func checkPrepare(ctx context.Context, o Options, req []byte) error {
	for i := range 2 {
		evs, res := command(ctx, o, "prepare", req)
		if res.Err != nil {
			return fmt.Errorf("prepare %d: %w", i+1, res.Err)
		}
		if len(evs) != 1 || evs[0].Type != protocol.EventPrepared {
			return fmt.Errorf("prepare %d: events %v, want one prepared", i+1, types(evs))
		}
		if i == 1 && evs[0].Prepared.Ran {
			return fmt.Errorf("prepare 2: ran again (%v): the first did not leave what it made where the engine looks", evs[0].Prepared.Steps)
		}
	}
	return nil
}

func expectError(ctx context.Context, o Options, stdin []byte, code string) error {
	evs, res := launch(ctx, o, stdin)
	if errors.Is(res.Err, spawn.ErrBadOutput) {
		return res.Err
	}
	if res.Exit == 0 {
		return fmt.Errorf("exit code 0, want non-zero (events %v)", types(evs))
	}
	var got *protocol.Error
	for _, e := range evs {
		if e.Type == protocol.EventError {
			got = e.Error
		}
	}
	if got == nil {
		return fmt.Errorf("no error event (exit %d, err %v)", res.Exit, res.Err)
	}
	if code != "" && got.Code != code {
		return fmt.Errorf("error code %q, want %q (message %q)", got.Code, code, got.Message)
	}
	return nil
}

func types(evs []protocol.Event) []protocol.EventType {
	var out []protocol.EventType
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
