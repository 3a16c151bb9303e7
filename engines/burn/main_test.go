package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/engines/burn/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

func TestMain(m *testing.M) { os.Exit(enginetest.Main(m)) }

// These tests run the real burn binary (CPU, flex backend, f32) on the tiny
// synthesized Llama. The binary needs the Rust static library built by
// scripts/build-burn.sh; without it they skip, unless CI is set, where a
// missing library fails them.

// burnBin is this package built against the CPU bridge library.
func burnBin(t *testing.T) string {
	return enginetest.Binary(t, "burn", "bridge/lib/cpu/libcib_burn.a", "scripts/build-burn.sh")
}

func request(model string, cases ...protocol.Case) protocol.Request {
	return enginetest.CPURequest(model, "f32", cases...)
}

var (
	prompt     = enginetest.Prompt
	greedyCase = enginetest.GreedyCase
	tokens     = enginetest.Tokens
)

func TestInfo(t *testing.T) {
	engineBin := burnBin(t)
	out, err := exec.Command(engineBin, "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "burn", info.Name)
	assert.Equal(t, "burn", info.Library)
	assert.Equal(t, "0.22.1", info.LibraryVersion)
	assert.Equal(t, []string{"cpu"}, info.Devices)
	assert.Equal(t, []string{"f32"}, info.DTypes)
	assert.Contains(t, info.Options, "attention")
	assert.Equal(t, 1, info.Capabilities.MaxBatch)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	assert.NotEmpty(t, info.Versions["cubecl"])
	assert.Contains(t, info.BestPractice, "fusion")
}

func TestRunTiny(t *testing.T) {
	engineBin, tinyDir := burnBin(t), enginetest.TinyModel(t)
	tests := []struct {
		name      string
		attention string
		cases     []protocol.Case
	}{
		{"one token", "", []protocol.Case{greedyCase("one", prompt(4, 512, 7), 1)}},
		{"two cases", "", []protocol.Case{greedyCase("a", prompt(5, 512, 11), 3), greedyCase("b", prompt(17, 512, 29), 20)}},
		{"fused attention", "fused", []protocol.Case{greedyCase("f", prompt(9, 512, 23), 12)}},
		{"padded attention", "padded", []protocol.Case{greedyCase("p", prompt(9, 512, 23), 12)}},
		{"cache growth past 256", "", []protocol.Case{greedyCase("long", prompt(250, 512, 5), 30)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tinyDir, tc.cases...)
			if tc.attention != "" {
				req.Options = map[string]string{"attention": tc.attention}
			}
			res := enginetest.Run(t, engineBin, req)
			require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
			require.NotEmpty(t, res.Events)
			loaded := res.Events[0]
			require.Equal(t, protocol.EventLoaded, loaded.Type)
			assert.Equal(t, "f32", loaded.Loaded.DType)
			assert.Equal(t, "flex", loaded.Loaded.Settings["backend"])
			assert.Equal(t, "2", loaded.Loaded.Settings["threads"])
			assert.Equal(t, int64(512*64*2+2*(64*64*2+64*16*2*2+3*64*176+2*64)+64), loaded.Loaded.Params)
			want := tc.attention
			if want == "" {
				want = "grouped"
			}
			assert.Equal(t, want, loaded.Loaded.Settings["attention"])
			its := 0
			for _, ev := range res.Events {
				if ev.Type != protocol.EventIteration {
					continue
				}
				its++
				it := ev.Iteration
				c := tc.cases[it.Case]
				require.Len(t, it.OutputTokens, 1)
				assert.Len(t, it.OutputTokens[0], c.MaxNewTokens, "exact count, case %s", c.Name)
				assert.Len(t, it.TokenNs, c.MaxNewTokens)
				for _, id := range it.OutputTokens[0] {
					assert.True(t, id >= 0 && id < 512, "token %d in vocab", id)
				}
				assert.Equal(t, len(c.PromptTokens), it.PromptTokens)
			}
			assert.Equal(t, len(tc.cases)*3, its)
			last := res.Events[len(res.Events)-1]
			require.Equal(t, protocol.EventDone, last.Type)
			assert.Equal(t, its, last.Done.Iterations)
			// Greedy decoding repeats itself: warm-up and timed iterations agree per case.
			byCase := map[int][]int{}
			for _, ev := range res.Events {
				if ev.Type == protocol.EventIteration {
					if prev, ok := byCase[ev.Iteration.Case]; ok {
						assert.Equal(t, prev, ev.Iteration.OutputTokens[0], "case %d", ev.Iteration.Case)
					}
					byCase[ev.Iteration.Case] = ev.Iteration.OutputTokens[0]
				}
			}
		})
	}
}

func TestAttentionModesAgree(t *testing.T) {
	engineBin, tinyDir := burnBin(t), enginetest.TinyModel(t)
	// The long case grows the cache past 256 positions; the short one after it decodes with
	// padded attention over a cache whose tail still holds the long case's rows (masked).
	cases := []protocol.Case{greedyCase("q", prompt(250, 512, 3), 30), greedyCase("p", prompt(21, 512, 13), 16)}
	got := map[string][][]int{}
	for _, mode := range []string{"grouped", "padded", "fused"} {
		req := request(tinyDir, cases...)
		req.Warmup, req.Iterations = 0, 1
		req.Options = map[string]string{"attention": mode}
		res := enginetest.Run(t, engineBin, req)
		require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
		got[mode] = tokens(res.Events)
	}
	require.Len(t, got["grouped"], 2)
	assert.Equal(t, got["grouped"], got["padded"])
	assert.Equal(t, got["grouped"], got["fused"])
}

func TestRunErrors(t *testing.T) {
	engineBin, tinyDir := burnBin(t), enginetest.TinyModel(t)
	good := request(tinyDir, greedyCase("x", prompt(4, 512, 7), 2))
	tests := []struct {
		name string
		req  any
		code int
		kind string
	}{
		{"not json", "{", 2, protocol.CodeBadRequest},
		{"token outside vocab", request(tinyDir, greedyCase("x", []int{1, 512}, 2)), 2, protocol.CodeBadRequest},
		{"longer than max positions", request(tinyDir, greedyCase("x", prompt(1000, 512, 3), 30)), 2, protocol.CodeBadRequest},
		{"unknown option", func() protocol.Request { r := good; r.Options = map[string]string{"graphs": "on"}; return r }(), 2, protocol.CodeBadRequest},
		{"bad attention mode", func() protocol.Request { r := good; r.Options = map[string]string{"attention": "magic"}; return r }(), 2, protocol.CodeBadRequest},
		{"bad autotune level", func() protocol.Request { r := good; r.Options = map[string]string{"autotune_level": "max"}; return r }(), 2, protocol.CodeBadRequest},
		{"autotune level on the cpu", func() protocol.Request {
			r := good
			r.Options = map[string]string{"autotune_level": "minimal"}
			return r
		}(), 2, protocol.CodeUnsupported},
		{"cuda on a cpu build", func() protocol.Request { r := good; r.Device = "cuda:0"; return r }(), 2, protocol.CodeUnsupported},
		{"bf16 on a cpu build", func() protocol.Request { r := good; r.DType = "bf16"; return r }(), 2, protocol.CodeUnsupported},
		{"missing model", request(filepath.Join(t.TempDir(), "nope"), greedyCase("x", []int{1}, 1)), 1, protocol.CodeLoad},
		{"batch of two", request(tinyDir, protocol.Case{Name: "b", PromptTokens: []int{1}, MaxNewTokens: 1, BatchSize: 2, Greedy: true, IgnoreEOS: true}), 2, protocol.CodeUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := enginetest.Run(t, engineBin, tc.req)
			assert.Equal(t, tc.code, res.Code, "exit code; stderr: %s", res.Stderr)
			require.NotEmpty(t, res.Events)
			last := res.Events[len(res.Events)-1]
			require.Equal(t, protocol.EventError, last.Type)
			assert.Equal(t, tc.kind, last.Error.Code, "message: %s", last.Error.Message)
			assert.NotEmpty(t, last.Error.Message)
		})
	}
}

// TestParityWithReference compares greedy tokens with the pure-Go fp32
// reference engine on the tiny f32 model and two variants of it that exercise
// the other code paths: llama3 rope_scaling and tied embeddings (no lm_head).
func TestParityWithReference(t *testing.T) {
	engineBin, tinyDir := burnBin(t), enginetest.TinyModel(t)
	ref := enginetest.Reference(t)

	tests := []struct {
		name    string
		variant func(t *testing.T, dir string)
	}{
		{"tiny", func(*testing.T, string) {}},
		{"llama3 rope scaling", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{
				"rope_theta": 500000.0,
				"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
					"high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
			})
		}},
		{"tied embeddings", func(t *testing.T, dir string) {
			editConfig(t, dir, map[string]any{"tie_word_embeddings": true})
			dropTensor(t, filepath.Join(dir, "model.safetensors"), "lm_head.weight")
		}},
	}
	var cases []protocol.Case
	for i, n := range []int{1, 5, 33, 120} {
		cases = append(cases, greedyCase(fmt.Sprintf("p%d", n), prompt(n, 512, 11+6*i), 24))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			copyDir(t, tinyDir, dir)
			tc.variant(t, dir)
			req := request(dir, cases...)
			req.Warmup, req.Iterations = 0, 1
			want := enginetest.Run(t, ref, req)
			require.Equal(t, 0, want.Code, "reference stderr: %s", want.Stderr)
			got := enginetest.Run(t, engineBin, req)
			require.Equal(t, 0, got.Code, "burn stderr: %s", got.Stderr)
			require.Len(t, tokens(want.Events), len(cases))
			assert.Equal(t, tokens(want.Events), tokens(got.Events), "burn vs reference greedy tokens")
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o644))
	}
}

func editConfig(t *testing.T, dir string, set map[string]any) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	for k, v := range set {
		cfg[k] = v
	}
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// dropTensor rewrites a safetensors file without one tensor.
func dropTensor(t *testing.T, path, name string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := le64(b[:8])
	var hdr map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b[8:8+n], &hdr))
	data := b[8+n:]
	type entry struct {
		DType   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	out := map[string]any{}
	var blob []byte
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == name {
			continue
		}
		if k == "__metadata__" {
			out[k] = hdr[k]
			continue
		}
		var e entry
		require.NoError(t, json.Unmarshal(hdr[k], &e))
		start := len(blob)
		blob = append(blob, data[e.Offsets[0]:e.Offsets[1]]...)
		e.Offsets = [2]int{start, len(blob)}
		out[k] = e
	}
	_, had := hdr[name]
	require.True(t, had, "%s has no tensor %s", path, name)
	h, err := json.Marshal(out)
	require.NoError(t, err)
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	var buf bytes.Buffer
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(len(h)))
	buf.Write(size[:])
	buf.Write(h)
	buf.Write(blob)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

func le64(b []byte) int { return int(binary.LittleEndian.Uint64(b)) }

// TestPrepare: info declares prepare; on the CPU (flex backend, no autotune store) there is nothing to prepare, said
// in words, twice alike. (On cuda the first pass tunes and the report shows its cost: issue 16's GPU session.)
func TestPrepare(t *testing.T) {
	bin := burnBin(t)
	out, err := exec.Command(bin, "info").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), `"prepare": true`)
	req := request(enginetest.TinyModel(t), greedyCase("p", prompt(5, 512, 11), 4))
	for range 2 {
		res := enginetest.RunEnv(t, bin, nil, enginetest.RunTimeout, req, "prepare")
		require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
		require.Len(t, res.Events, 1)
		p := res.Events[0].Prepared
		require.NotNil(t, p)
		require.False(t, p.Ran)
		require.Contains(t, p.Steps[protocol.PreparedNothing], "no autotune store")
	}
}

// TestStoreSummary: the bridge's store summary crosses the C ABI as JSON; a build without autotune (the CPU one the
// tests link) keeps no store between processes, so it names no namespace.
func TestStoreSummary(t *testing.T) {
	if !bridge.Available {
		t.Skip("built without cgo: no bridge")
	}
	bi, err := bridge.Info()
	require.NoError(t, err)
	st, err := bridge.Store()
	require.NoError(t, err)
	if !bi.Autotune {
		require.Empty(t, st.Namespaces)
		require.Empty(t, st.Autotune())
	}
}

// TestNewKeys: what a case's first pass added to cubecl's store, from two summaries (the bridge's JSON), per
// operation; compiled kernels (other namespaces) are not autotune keys.
func TestNewKeys(t *testing.T) {
	parse := func(s string) bridge.StoreSummary {
		var st bridge.StoreSummary
		require.NoError(t, json.Unmarshal([]byte(s), &st))
		return st
	}
	before := parse(`{"environment":"default","namespaces":[{"namespace":"autotune/0.11.3/cuda-0/matmul","entries":3,"bytes":9},
		{"namespace":"compilation/0.11.3/cuda-0","entries":40,"bytes":9}]}`)
	after := parse(`{"environment":"default","namespaces":[{"namespace":"autotune/0.11.3/cuda-0/matmul","entries":10,"bytes":9},
		{"namespace":"autotune/0.11.3/cuda-0/reduce","entries":2,"bytes":9},{"namespace":"compilation/0.11.3/cuda-0","entries":90,"bytes":9}]}`)
	n, by := newKeys(before, after)
	require.EqualValues(t, 9, n)
	require.Equal(t, " (matmul 7, reduce 2)", by)
	n, by = newKeys(after, after)
	require.Zero(t, n)
	require.Empty(t, by)
	n, _ = newKeys(bridge.StoreSummary{}, before)
	require.EqualValues(t, 3, n)
}

// TestCacheSizedPerRequest: with padded attention every decode step reads the cache's whole capacity, so the
// capacity is the request's own (rounded up to 256), not the longest request's so far, and each capacity's caches
// are parked for its next request. What can be seen from outside: the setting says so, and the tokens stay right
// as requests switch between capacities (short, long, short again) — the same as the short case's alone.
func TestCacheSizedPerRequest(t *testing.T) {
	engineBin, tinyDir := burnBin(t), enginetest.TinyModel(t)
	short := greedyCase("short", prompt(9, 512, 23), 12)
	long := greedyCase("long", prompt(250, 512, 5), 30)
	again := short
	again.Name = "short-again"
	both := request(tinyDir, short, long, again)
	both.Options = map[string]string{"attention": "padded"}
	res := enginetest.Run(t, engineBin, both)
	require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
	assert.Contains(t, res.Events[0].Loaded.Settings["kv_cache"], "one set per cap")
	alone := request(tinyDir, short)
	alone.Options = map[string]string{"attention": "padded"}
	resAlone := enginetest.Run(t, engineBin, alone)
	require.Equal(t, 0, resAlone.Code, "stderr: %s", resAlone.Stderr)
	var shortBoth, shortAlone [][]int
	for _, ev := range res.Events {
		if ev.Type == protocol.EventIteration && ev.Iteration.Case != 1 {
			shortBoth = append(shortBoth, ev.Iteration.OutputTokens[0])
		}
	}
	for _, ev := range resAlone.Events {
		if ev.Type == protocol.EventIteration {
			shortAlone = append(shortAlone, ev.Iteration.OutputTokens[0])
		}
	}
	require.NotEmpty(t, shortBoth)
	assert.Equal(t, append(shortAlone, shortAlone...), shortBoth, "the short case's tokens, around the long case and alone")
}
