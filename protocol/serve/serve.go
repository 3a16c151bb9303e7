// Package serve is the engine side of the protocol: it parses the command
// line, reads the request, times every token on the host monotonic clock and
// writes the event stream, so an engine binary only has to load a model and
// generate tokens. Every engine in this repository uses it, which keeps their
// timing identical.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// procStart approximates process start; package initialisation runs before
// main, so load times measured from it include runtime start-up.
var procStart = time.Now()

// Now returns the monotonic clock in ns since process start. StartNs in
// iteration events uses this epoch.
func Now() int64 { return int64(time.Since(procStart)) }

// Engine loads models. Info describes the binary; Load prepares a model for the
// request and reports its cold-start breakdown (TotalNs is filled in by serve).
type Engine interface {
	Info() protocol.Info
	Load(ctx context.Context, req *protocol.Request) (Model, protocol.Loaded, error)
}

// Preparer is an Engine that implements `ENGINE prepare`: Prepare does, for
// the request, the model-derived work its launches would otherwise do at load
// and reuse from a cache (a format conversion, an ahead-of-time export), and
// says what it made or found (TotalNs is filled in by serve). Main declares
// capabilities.prepare for an engine that implements it.
type Preparer interface {
	Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error)
}

// Model generates tokens for one case at a time.
type Model interface {
	// Generate runs one greedy generation of c and reports each step's tokens
	// through rec as soon as they are on the host.
	Generate(ctx context.Context, c *protocol.Case, rec *Recorder) error
	// Close releases the model.
	Close() error
}

// Recorder collects one iteration's raw timestamps and tokens.
type Recorder struct {
	start   time.Time
	startNs int64
	it      protocol.Iteration
}

func newRecorder(batch int) *Recorder {
	r := &Recorder{}
	r.it.OutputTokens = make([][]int, batch)
	r.startNs = Now()
	r.start = time.Now()
	return r
}

// Step records one decode step: ids holds one token per batch row, available
// on the host now.
func (r *Recorder) Step(ids ...int) {
	r.StepAt(int64(time.Since(r.start)), ids...)
}

// StepAt records a step measured by the engine itself, offsetNs after the
// Generate call began (for bridges that time tokens on their own side).
func (r *Recorder) StepAt(offsetNs int64, ids ...int) {
	r.it.TokenNs = append(r.it.TokenNs, offsetNs)
	for i := range r.it.OutputTokens {
		id := -1
		if i < len(ids) {
			id = ids[i]
		}
		r.it.OutputTokens[i] = append(r.it.OutputTokens[i], id)
	}
}

// DeviceStepNs records device-clock (CUDA event) offsets for every step, in ns.
func (r *Recorder) DeviceStepNs(offsets []int64) { r.it.DeviceTokenNs = slices.Clone(offsets) }

// PeakAlloc records the allocator's peak bytes during this iteration.
func (r *Recorder) PeakAlloc(bytes int64) { r.it.PeakAllocBytes = bytes }

// Exit codes of an engine binary.
const (
	ExitOK         = 0
	ExitFailure    = 1
	ExitBadRequest = 2
	ExitUsage      = 64
)

// Main runs the engine command line: `info` or `run`. It returns the exit code.
func Main(ctx context.Context, e Engine, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintf(stderr, "usage: %s info|run|prepare\n  info     print capabilities as JSON\n  run      read a JSON request on stdin, stream JSON-lines events on stdout\n"+
			"  prepare  read a JSON request on stdin, make what its launches reuse from the cache (when capabilities.prepare), print one prepared event\n", e.Info().Name)
		return ExitUsage
	}
	p, canPrepare := e.(Preparer)
	switch args[0] {
	case "info":
		info := e.Info()
		info.Protocol = protocol.Version
		info.Capabilities.Prepare = canPrepare
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "info: %v\n", err)
			return ExitFailure
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return ExitOK
	case "run":
		enc := protocol.NewEncoder(stdout)
		return finish(runEvents(ctx, e, stdin, enc), enc, stderr)
	case "prepare":
		if !canPrepare {
			fmt.Fprintf(stderr, "%s has nothing to prepare (capabilities.prepare is false): its launches do all their work\n", e.Info().Name)
			return ExitUsage
		}
		enc := protocol.NewEncoder(stdout)
		return finish(prepareEvent(ctx, e, p, stdin, enc), enc, stderr)
	default:
		fmt.Fprintf(stderr, "unknown command %q: want info, run or prepare\n", args[0])
		return ExitUsage
	}
}

func prepareEvent(ctx context.Context, e Engine, p Preparer, stdin io.Reader, enc *protocol.Encoder) error {
	req, err := checkedRequest(stdin, e.Info())
	if err != nil {
		return err
	}
	prep, err := p.Prepare(ctx, req)
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			return err
		}
		return fail(protocol.CodeLoad, fmt.Errorf("prepare %s: %w", req.Model, err))
	}
	prep.TotalNs = Now()
	return enc.Encode(protocol.Event{Type: protocol.EventPrepared, Prepared: &prep})
}

type failure struct {
	code string
	err  error
}

func (f *failure) Error() string { return f.err.Error() }

func fail(code string, err error) error { return &failure{code: code, err: err} }

// finish turns a command's error into an error event and an exit code.
func finish(err error, enc *protocol.Encoder, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	code := protocol.CodeRuntime
	var f *failure
	if errors.As(err, &f) {
		code = f.code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	if werr := enc.Encode(protocol.Event{Type: protocol.EventError, Error: &protocol.Error{Code: code, Message: err.Error()}}); werr != nil {
		fmt.Fprintf(stderr, "write error event: %v\n", werr)
	}
	if code == protocol.CodeBadRequest || code == protocol.CodeUnsupported {
		return ExitBadRequest
	}
	return ExitFailure
}

// checkedRequest reads the request and checks it against what the engine
// declares (devices, dtypes, options, batch sizes).
func checkedRequest(stdin io.Reader, info protocol.Info) (*protocol.Request, error) {
	req, err := protocol.DecodeRequest(stdin)
	if err != nil {
		return nil, fail(protocol.CodeBadRequest, err)
	}
	kind, _, _ := protocol.ParseDevice(req.Device)
	if !slices.Contains(info.Devices, kind) {
		return nil, fail(protocol.CodeUnsupported, fmt.Errorf("device %s: this %s build supports %v", req.Device, info.Name, info.Devices))
	}
	if !slices.Contains(info.DTypes, req.DType) {
		return nil, fail(protocol.CodeUnsupported, fmt.Errorf("dtype %s: %s supports %v", req.DType, info.Name, info.DTypes))
	}
	for k := range req.Options {
		if _, ok := info.Options[k]; !ok {
			return nil, fail(protocol.CodeBadRequest, fmt.Errorf("option %q: %s knows %v", k, info.Name, keys(info.Options)))
		}
	}
	for i, c := range req.Cases {
		if c.BatchSize > max(info.Capabilities.MaxBatch, 1) {
			return nil, fail(protocol.CodeUnsupported, fmt.Errorf("cases[%d]: batch_size %d > max %d", i, c.BatchSize, max(info.Capabilities.MaxBatch, 1)))
		}
	}
	return req, nil
}

func runEvents(ctx context.Context, e Engine, stdin io.Reader, enc *protocol.Encoder) error {
	req, err := checkedRequest(stdin, e.Info())
	if err != nil {
		return err
	}
	m, loaded, err := e.Load(ctx, req)
	if err != nil {
		var f *failure
		if errors.As(err, &f) {
			return err
		}
		return fail(protocol.CodeLoad, fmt.Errorf("load %s: %w", req.Model, err))
	}
	defer m.Close()
	loaded.TotalNs = Now()
	if loaded.DType == "" {
		loaded.DType = req.DType
	}
	if err := enc.Encode(protocol.Event{Type: protocol.EventLoaded, Loaded: &loaded}); err != nil {
		return err
	}
	sent := 0
	for ci := range req.Cases {
		c := &req.Cases[ci]
		for _, warm := range []bool{true, false} {
			n := req.Iterations
			if warm {
				n = req.Warmup
			}
			for idx := range n {
				if err := ctx.Err(); err != nil {
					return fail(protocol.CodeRuntime, fmt.Errorf("interrupted: %w", err))
				}
				rec := newRecorder(c.BatchSize)
				if err := m.Generate(ctx, c, rec); err != nil {
					var f *failure
					if errors.As(err, &f) {
						return err
					}
					return fail(protocol.CodeRuntime, fmt.Errorf("case %s iteration %d: %w", c.Name, idx, err))
				}
				it := rec.it
				it.EndNs = int64(time.Since(rec.start))
				it.StartNs = rec.startNs
				it.Case, it.Index, it.Warmup, it.PromptTokens = ci, idx, warm, len(c.PromptTokens)
				if len(it.TokenNs) != c.MaxNewTokens {
					return fail(protocol.CodeRuntime, fmt.Errorf("case %s: generated %d tokens, want exactly %d", c.Name, len(it.TokenNs), c.MaxNewTokens))
				}
				if err := enc.Encode(protocol.Event{Type: protocol.EventIteration, Iteration: &it}); err != nil {
					return err
				}
				sent++
			}
		}
	}
	return enc.Encode(protocol.Event{Type: protocol.EventDone, Done: &protocol.Done{Iterations: sent}})
}

// BadRequest marks err as the caller's fault (exit 2, code bad_request).
func BadRequest(err error) error { return fail(protocol.CodeBadRequest, err) }

// Unsupported marks err as a request this engine cannot serve.
func Unsupported(err error) error { return fail(protocol.CodeUnsupported, err) }

// OOM marks err as an out-of-memory failure.
func OOM(err error) error { return fail(protocol.CodeOOM, err) }

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
