package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// These tests drive the real binary on a tiny model on the CPU. The binary
// needs the Rust static library (scripts/build-candle.sh); without it they
// skip, unless CI is set, where a missing library is a failure.

var (
	binary   string // the candle engine built from this package
	tinyDir  string // tiny f32 Llama from `runner models synth --shape tiny`
	setupErr error
	tmpRoot  string
)

const staticLib = "bridge/lib/libcib_candle.a"

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		tmpRoot, err = os.MkdirTemp("", "cib-candle-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmpRoot)
		if _, err := os.Stat(staticLib); err == nil {
			setupErr = setup()
		} else {
			setupErr = errNoLib
		}
		return m.Run()
	}()
	os.Exit(code)
}

var errNoLib = errors.New(staticLib + " is absent: run scripts/build-candle.sh")

func setup() error {
	sum, err := fileHash(staticLib)
	if err != nil {
		return err
	}
	binary = filepath.Join(tmpRoot, "candle")
	// Key the build on the library's hash: Go's cache does not track it.
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_CFLAGS=-O2 -g -DCIB_CANDLE_LIB="+sum)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build candle: %v\n%s", err, out)
	}
	tinyDir = filepath.Join(tmpRoot, "tiny")
	synth := exec.Command("go", "run", ".", "models", "synth", "--shape", "tiny", "--dtype", "f32", "--seed", "1", "--out", tinyDir)
	synth.Dir = filepath.Join("..", "..", "runner")
	if out, err := synth.CombinedOutput(); err != nil {
		return fmt.Errorf("runner models synth: %v\n%s", err, out)
	}
	return nil
}

func fileHash(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8]), nil
}

// needBinary skips (or fails under CI) when the engine could not be built.
func needBinary(t *testing.T) {
	t.Helper()
	if errors.Is(setupErr, errNoLib) && os.Getenv("CI") == "" {
		t.Skipf("skipping candle engine tests: %v", setupErr)
	}
	require.NoError(t, setupErr)
}

type result struct {
	events []protocol.Event
	stderr string
	code   int
}

// runEngine runs `bin run` with req as stdin and decodes its event stream.
func runEngine(t *testing.T, bin string, req any) result {
	t.Helper()
	body, err := json.Marshal(req)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run")
	cmd.Stdin = bytes.NewReader(body)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	res := result{stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", bin, err)
	}
	d := protocol.NewDecoder(&stdout)
	for d.Scan() {
		res.events = append(res.events, d.Event())
	}
	require.NoError(t, d.Err(), "event stream of %s (stderr: %s)", bin, res.stderr)
	return res
}

func request(model, dtype string, cases ...protocol.Case) protocol.Request {
	return protocol.Request{
		Protocol: protocol.Version, Model: model, Device: "cpu", DType: dtype, Seed: 1,
		Threads: 2, Warmup: 1, Iterations: 2, Cases: cases,
	}
}

func promptCase(name string, n, newTokens, batch int) protocol.Case {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (7 + 31*i) % 512
	}
	return protocol.Case{Name: name, PromptTokens: ids, MaxNewTokens: newTokens, BatchSize: batch, Greedy: true, IgnoreEOS: true}
}

func TestInfo(t *testing.T) {
	needBinary(t)
	out, err := exec.Command(binary, "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "candle", info.Name)
	assert.Equal(t, "candle-core", info.Library)
	assert.Regexp(t, `^0\.\d+\.\d+$`, info.LibraryVersion)
	assert.Equal(t, []string{"cpu"}, info.Devices, "CPU build")
	assert.Equal(t, []string{"f32", "f16", "bf16"}, info.DTypes)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	assert.False(t, info.Capabilities.AllocatorStats, "candle has no allocator statistics")
	assert.Equal(t, maxBatch, info.Capabilities.MaxBatch)
	assert.Contains(t, info.Versions, "rustc")
}

func TestRunTiny(t *testing.T) {
	needBinary(t)
	cases := []protocol.Case{promptCase("short", 5, 8, 1), promptCase("batch2", 12, 4, 2)}
	res := runEngine(t, binary, request(tinyDir, "f32", cases...))
	require.Equal(t, 0, res.code, "stderr: %s", res.stderr)

	require.NotEmpty(t, res.events)
	loaded := res.events[0]
	require.Equal(t, protocol.EventLoaded, loaded.Type)
	assert.Equal(t, "f32", loaded.Loaded.DType)
	assert.Equal(t, "cpu", loaded.Loaded.DeviceName)
	assert.Positive(t, loaded.Loaded.WeightsToDeviceNs)
	// tiny: embed 512x64 + lm_head 64x512 + norm 64 + 2 layers of
	// (q 64x64, k 32x64, v 32x64, o 64x64, gate/up/down 3x64x176, 2 norms of 64).
	assert.Equal(t, int64(2*512*64+64+2*(64*64*2+32*64*2+3*64*176+2*64)), loaded.Loaded.Params)

	var its []*protocol.Iteration
	for _, ev := range res.events[1 : len(res.events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		its = append(its, ev.Iteration)
	}
	last := res.events[len(res.events)-1]
	require.Equal(t, protocol.EventDone, last.Type)
	require.Len(t, its, 6, "(1 warm-up + 2 timed) x 2 cases")
	assert.Equal(t, 6, last.Done.Iterations)

	first := map[int][][]int{}
	for _, it := range its {
		c := cases[it.Case]
		require.Len(t, it.OutputTokens, c.BatchSize)
		for r, row := range it.OutputTokens {
			require.Len(t, row, c.MaxNewTokens, "case %s row %d", c.Name, r)
			for _, id := range row {
				assert.True(t, id >= 0 && id < 512, "token %d outside the vocabulary", id)
			}
			assert.Equal(t, it.OutputTokens[0], row, "batch rows share a prompt, so greedy tokens match")
		}
		assert.Equal(t, len(c.PromptTokens), it.PromptTokens)
		assert.Positive(t, it.TokenNs[0])
		if prev, ok := first[it.Case]; ok {
			assert.Equal(t, prev, it.OutputTokens, "greedy decoding is deterministic across iterations")
		} else {
			first[it.Case] = it.OutputTokens
		}
	}
}

func TestRunErrors(t *testing.T) {
	needBinary(t)
	ok := promptCase("p", 4, 3, 1)
	tests := []struct {
		name     string
		req      func() any
		wantExit int
		wantCode string
	}{
		{"protocol version", func() any { r := request(tinyDir, "f32", ok); r.Protocol = 99; return r }, 2, protocol.CodeBadRequest},
		{"unknown field", func() any { return map[string]any{"protocol": 1, "bogus": true} }, 2, protocol.CodeBadRequest},
		{"unknown option", func() any {
			r := request(tinyDir, "f32", ok)
			r.Options = map[string]string{"fast": "yes"}
			return r
		}, 2, protocol.CodeBadRequest},
		{"token outside vocabulary", func() any {
			return request(tinyDir, "f32", protocol.Case{Name: "big", PromptTokens: []int{1, 512}, MaxNewTokens: 2, BatchSize: 1, Greedy: true, IgnoreEOS: true})
		}, 2, protocol.CodeBadRequest},
		{"longer than max_position_embeddings", func() any { return request(tinyDir, "f32", promptCase("long", 1000, 30, 1)) }, 2, protocol.CodeBadRequest},
		{"batch over the limit", func() any { return request(tinyDir, "f32", promptCase("b", 4, 2, maxBatch+1)) }, 2, protocol.CodeUnsupported},
		{"cuda on a CPU build", func() any { r := request(tinyDir, "f32", ok); r.Device = "cuda:0"; return r }, 2, protocol.CodeUnsupported},
		{"missing model dir", func() any { return request(filepath.Join(tmpRoot, "no-such-model"), "f32", ok) }, 1, protocol.CodeLoad},
		{"model dir without weights", func() any {
			dir := filepath.Join(tmpRoot, "config-only")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			copyFile(t, filepath.Join(tinyDir, "config.json"), filepath.Join(dir, "config.json"))
			return request(dir, "f32", ok)
		}, 1, protocol.CodeLoad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runEngine(t, binary, tc.req())
			assert.Equal(t, tc.wantExit, res.code, "stderr: %s", res.stderr)
			require.NotEmpty(t, res.events)
			last := res.events[len(res.events)-1]
			require.Equal(t, protocol.EventError, last.Type, "stderr: %s", res.stderr)
			assert.Equal(t, tc.wantCode, last.Error.Code, "message: %s", last.Error.Message)
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestParityWithReference compares greedy tokens with the pure-Go fp32
// reference engine on the same tiny f32 model.
func TestParityWithReference(t *testing.T) {
	needBinary(t)
	ref := filepath.Join(tmpRoot, "reference")
	build := exec.Command("go", "build", "-o", ref, ".")
	build.Dir = filepath.Join("..", "reference")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build reference: %s", out)

	cases := []protocol.Case{promptCase("p5", 5, 24, 1), promptCase("p40", 40, 24, 1)}
	req := request(tinyDir, "f32", cases...)
	req.Warmup, req.Iterations = 0, 1
	got := runEngine(t, binary, req)
	want := runEngine(t, ref, req)
	require.Equal(t, 0, got.code, "candle stderr: %s", got.stderr)
	require.Equal(t, 0, want.code, "reference stderr: %s", want.stderr)
	tokens := func(evs []protocol.Event) [][]int {
		var rows [][]int
		for _, ev := range evs {
			if ev.Type == protocol.EventIteration {
				rows = append(rows, ev.Iteration.OutputTokens[0])
			}
		}
		return rows
	}
	assert.Equal(t, tokens(want.events), tokens(got.events), "candle vs reference greedy tokens")
}
