package serve

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// countingEngine is a protocol-level test double: it emits token i+1 at step
// i, or misbehaves as told, so the serve loop's own rules can be checked.
type countingEngine struct {
	extra   int   // tokens to emit beyond max_new_tokens
	failAt  int   // iteration at which Generate fails (0 = never)
	loadErr error // returned by Load
	calls   int
}

func (e *countingEngine) Info() protocol.Info {
	return protocol.Info{Name: "counting", Library: "test", LibraryVersion: "0", Devices: []string{"cpu"}, DTypes: []string{"f32"},
		Options: map[string]string{"mode": "a|b"}, Capabilities: protocol.Capabilities{MaxBatch: 2}}
}

func (e *countingEngine) Load(ctx context.Context, req *protocol.Request) (Model, protocol.Loaded, error) {
	if e.loadErr != nil {
		return nil, protocol.Loaded{}, e.loadErr
	}
	return e, protocol.Loaded{WeightsToHostNs: 1}, nil
}

func (e *countingEngine) Generate(ctx context.Context, c *protocol.Case, rec *Recorder) error {
	e.calls++
	if e.failAt > 0 && e.calls == e.failAt {
		return errors.New("kernel launch failed")
	}
	for i := 0; i < c.MaxNewTokens+e.extra; i++ {
		ids := make([]int, c.BatchSize)
		for r := range ids {
			ids[r] = i + 1
		}
		rec.Step(ids...)
	}
	rec.PeakAlloc(1024)
	return nil
}

func (e *countingEngine) Close() error { return nil }

const goodReq = `{"protocol":1,"model":"/m","device":"cpu","dtype":"f32","warmup":1,"iterations":2,
"cases":[{"name":"a","prompt_tokens":[5,6],"max_new_tokens":3,"batch_size":2,"greedy":true,"ignore_eos":true}]}`

func runMain(t *testing.T, e Engine, args []string, stdin string) (int, []protocol.Event, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), e, args, strings.NewReader(stdin), &out, &errb)
	var evs []protocol.Event
	d := protocol.NewDecoder(&out)
	for d.Scan() {
		evs = append(evs, d.Event())
	}
	if err := d.Err(); err != nil {
		t.Fatalf("stdout is not clean JSON lines: %v\n%s", err, out.String())
	}
	return code, evs, errb.String()
}

func TestMainRun(t *testing.T) {
	tests := []struct {
		name     string
		engine   *countingEngine
		stdin    string
		wantCode int
		wantLast protocol.EventType
		wantErr  string
		wantIts  int
	}{
		{name: "ok", engine: &countingEngine{}, stdin: goodReq, wantCode: ExitOK, wantLast: protocol.EventDone, wantIts: 3},
		{name: "too many tokens", engine: &countingEngine{extra: 1}, stdin: goodReq, wantCode: ExitFailure, wantLast: protocol.EventError, wantErr: "generated 4 tokens, want exactly 3"},
		{name: "generate fails mid-run", engine: &countingEngine{failAt: 2}, stdin: goodReq, wantCode: ExitFailure, wantLast: protocol.EventError, wantErr: "kernel launch failed", wantIts: 1},
		{name: "load fails", engine: &countingEngine{loadErr: errors.New("no config.json")}, stdin: goodReq, wantCode: ExitFailure, wantLast: protocol.EventError, wantErr: "load /m: no config.json"},
		{name: "bad json", engine: &countingEngine{}, stdin: `{"protocol":`, wantCode: ExitBadRequest, wantLast: protocol.EventError, wantErr: "decode request"},
		{name: "unsupported device", engine: &countingEngine{}, stdin: strings.Replace(goodReq, `"cpu"`, `"cuda:0"`, 1), wantCode: ExitBadRequest, wantLast: protocol.EventError, wantErr: "device cuda:0"},
		{name: "unknown option", engine: &countingEngine{}, stdin: strings.Replace(goodReq, `"warmup"`, `"options":{"fast":"yes"},"warmup"`, 1), wantCode: ExitBadRequest, wantLast: protocol.EventError, wantErr: `option "fast"`},
		{name: "batch too large", engine: &countingEngine{}, stdin: strings.Replace(goodReq, `"batch_size":2`, `"batch_size":3`, 1), wantCode: ExitBadRequest, wantLast: protocol.EventError, wantErr: "batch_size 3 > max 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, evs, _ := runMain(t, tt.engine, []string{"run"}, tt.stdin)
			if code != tt.wantCode {
				t.Fatalf("Main(run) = %d, want %d (events %+v)", code, tt.wantCode, evs)
			}
			last := evs[len(evs)-1]
			if last.Type != tt.wantLast {
				t.Fatalf("last event = %s, want %s", last.Type, tt.wantLast)
			}
			if tt.wantErr != "" && !strings.Contains(last.Error.Message, tt.wantErr) {
				t.Fatalf("error message = %q, want it to contain %q", last.Error.Message, tt.wantErr)
			}
			its := 0
			for _, ev := range evs {
				if ev.Type == protocol.EventIteration {
					its++
					if len(ev.Iteration.OutputTokens) != 2 || ev.Iteration.PeakAllocBytes != 1024 {
						t.Fatalf("iteration rows/peak = %d/%d, want 2/1024", len(ev.Iteration.OutputTokens), ev.Iteration.PeakAllocBytes)
					}
				}
			}
			if its != tt.wantIts {
				t.Fatalf("iterations sent = %d, want %d", its, tt.wantIts)
			}
		})
	}
}

func TestMainInfoAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), &countingEngine{}, []string{"info"}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("Main(info) = %d, want 0", code)
	}
	if !strings.Contains(out.String(), `"protocol": 1`) {
		t.Fatalf("info output lacks the protocol version: %s", out.String())
	}
	if code := Main(context.Background(), &countingEngine{}, nil, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("Main() = %d, want %d", code, ExitUsage)
	}
	if code := Main(context.Background(), &countingEngine{}, []string{"serve"}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("Main(serve) = %d, want %d", code, ExitUsage)
	}
}

// preparingEngine implements Preparer: it makes one artifact the first time and finds it after.
type preparingEngine struct {
	countingEngine
	made    bool
	prepErr error
}

func (e *preparingEngine) Prepare(ctx context.Context, req *protocol.Request) (protocol.Prepared, error) {
	if e.prepErr != nil {
		return protocol.Prepared{}, e.prepErr
	}
	ran := !e.made
	e.made = true
	return protocol.Prepared{Ran: ran, Steps: map[string]string{"artifact": req.Options["mode"]}}, nil
}

// TestPrepare: `prepare` exists where the engine implements it (info says so), checks the request as run does,
// answers one prepared event, and turns a failure into an error event.
func TestPrepare(t *testing.T) {
	e := &preparingEngine{}
	var out, errb bytes.Buffer
	require0(t, Main(context.Background(), e, []string{"info"}, strings.NewReader(""), &out, &errb))
	if !strings.Contains(out.String(), `"prepare": true`) {
		t.Fatalf("info of a Preparer does not declare prepare: %s", out.String())
	}
	out.Reset()
	require0(t, Main(context.Background(), &countingEngine{}, []string{"info"}, strings.NewReader(""), &out, &errb))
	if strings.Contains(out.String(), `"prepare"`) {
		t.Fatalf("info of an engine without Prepare declares it: %s", out.String())
	}

	req := strings.Replace(goodReq, `"cases"`, `"options":{"mode":"a"},"cases"`, 1)
	for i, wantRan := range []bool{true, false} {
		code, evs, stderr := runMain(t, e, []string{"prepare"}, req)
		if code != ExitOK || len(evs) != 1 || evs[0].Type != protocol.EventPrepared {
			t.Fatalf("prepare %d: exit %d, events %+v, stderr %s", i, code, evs, stderr)
		}
		p := evs[0].Prepared
		if p.Ran != wantRan || p.Steps["artifact"] != "a" || p.TotalNs <= 0 {
			t.Fatalf("prepare %d: %+v", i, p)
		}
	}
	// The request is checked as for run: an undeclared option is a bad request.
	code, evs, _ := runMain(t, e, []string{"prepare"}, strings.Replace(goodReq, `"cases"`, `"options":{"x":"1"},"cases"`, 1))
	if code != ExitBadRequest || len(evs) != 1 || evs[0].Type != protocol.EventError || evs[0].Error.Code != protocol.CodeBadRequest {
		t.Fatalf("undeclared option: exit %d, events %+v", code, evs)
	}
	code, evs, _ = runMain(t, &preparingEngine{prepErr: errors.New("disk full")}, []string{"prepare"}, goodReq)
	if code != ExitFailure || len(evs) != 1 || evs[0].Error.Code != protocol.CodeLoad || !strings.Contains(evs[0].Error.Message, "disk full") {
		t.Fatalf("failed prepare: exit %d, events %+v", code, evs)
	}
	// An engine without Prepare has no prepare command.
	code, evs, stderr := runMain(t, &countingEngine{}, []string{"prepare"}, goodReq)
	if code != ExitUsage || len(evs) != 0 || !strings.Contains(stderr, "nothing to prepare") {
		t.Fatalf("prepare without Preparer: exit %d, events %+v, stderr %s", code, evs, stderr)
	}
}

func require0(t *testing.T, code int) {
	t.Helper()
	if code != ExitOK {
		t.Fatalf("exit %d, want 0", code)
	}
}
