package llama

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/engines/reference/internal/safetensors"
)

// relTol bounds max|got − want| / max(1, max|want|) for one logits vector. The
// expected logits are float64 numpy results (testdata/gen_reference.py); fp32
// compute differs from them by about 1e-6 relative on these fixtures.
const relTol = 1e-4

// fixtures are the checkpoints under testdata, each with its numpy results.
var fixtures = []string{"gqa_untied_f32", "mha_tied_bf16", "llama3_f16_sharded"}

// expected is testdata/<fixture>/expected.json: logits[i] is the numpy
// output before greedy token tokens[i].
type expected struct {
	Prompt []int       `json:"prompt"`
	Tokens []int       `json:"tokens"`
	Logits [][]float64 `json:"logits"`
}

func fixtureDir(name string) string { return filepath.Join("..", "..", "testdata", name) }

func loadFixture(t *testing.T, name string, threads int) (*Model, expected) {
	t.Helper()
	dir := fixtureDir(name)
	cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	ckpt, err := safetensors.Open(dir)
	require.NoError(t, err)
	defer ckpt.Close()
	w, _, err := LoadWeights(ckpt, cfg)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	var exp expected
	require.NoError(t, json.Unmarshal(b, &exp))
	require.Len(t, exp.Logits, len(exp.Tokens))
	m := New(cfg, w, threads)
	m.pool.minWork = 0 // fixtures are tiny: make every task use every worker
	t.Cleanup(m.Close)
	return m, exp
}

func relErr(got []float32, want []float64) float64 {
	scale, diff := 1.0, 0.0
	for i, w := range want {
		scale = max(scale, math.Abs(w))
		diff = max(diff, math.Abs(float64(got[i])-w))
	}
	return diff / scale
}

// teacherForce runs the prompt then feeds tokens one by one, returning a copy
// of the logits of every step for batch row 0..batch-1.
func teacherForce(t *testing.T, s *Session, prompt, tokens []int, batch int) [][]float32 {
	t.Helper()
	var in []int
	for range batch {
		in = append(in, prompt...)
	}
	var out [][]float32
	for step := range tokens {
		logits, err := s.Forward(in)
		require.NoError(t, err, "Forward at step %d", step)
		out = append(out, slices.Clone(logits))
		in = in[:0]
		for range batch {
			in = append(in, tokens[step])
		}
	}
	return out
}

func TestForwardMatchesNumpy(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m, exp := loadFixture(t, name, 2)
			vocab := m.Config().VocabSize
			s, err := m.NewSession(1, len(exp.Prompt)+len(exp.Tokens))
			require.NoError(t, err)
			got := teacherForce(t, s, exp.Prompt, exp.Tokens, 1)
			worst := 0.0
			for step, lg := range got {
				require.Len(t, lg, vocab)
				e := relErr(lg, exp.Logits[step])
				worst = max(worst, e)
				assert.LessOrEqual(t, e, relTol, "step %d: logits relative error %.3g, want <= %g", step, e, relTol)
				id, err := Argmax(lg)
				require.NoError(t, err)
				assert.Equal(t, exp.Tokens[step], id, "step %d: Argmax(logits) = %d, want numpy's %d", step, id, exp.Tokens[step])
			}
			t.Logf("%s: worst logits relative error %.3g over %d steps", name, worst, len(got))
		})
	}
}

// TestGreedyMatchesNumpy generates freely (feeding back its own argmax) and
// checks the token sequence.
func TestGreedyMatchesNumpy(t *testing.T) {
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m, exp := loadFixture(t, name, 1)
			s, err := m.NewSession(1, len(exp.Prompt)+len(exp.Tokens))
			require.NoError(t, err)
			assert.Equal(t, exp.Tokens, greedy(t, s, exp.Prompt, len(exp.Tokens), 1)[0])
		})
	}
}

// greedy generates n tokens for each of batch copies of prompt.
func greedy(t *testing.T, s *Session, prompt []int, n, batch int) [][]int {
	t.Helper()
	vocab := s.m.Config().VocabSize
	var in []int
	for range batch {
		in = append(in, prompt...)
	}
	out := make([][]int, batch)
	for range n {
		logits, err := s.Forward(in)
		require.NoError(t, err)
		in = in[:0]
		for b := range batch {
			id, err := Argmax(logits[b*vocab : (b+1)*vocab])
			require.NoError(t, err)
			out[b] = append(out[b], id)
			in = append(in, id)
		}
	}
	return out
}

// TestBatchAndChunkingAreBitIdentical checks that every row of a batch, and a
// prompt prefilled in several chunks, give exactly the logits of one sequence
// prefilled at once.
func TestBatchAndChunkingAreBitIdentical(t *testing.T) {
	tests := []struct {
		name   string
		batch  int
		chunkT int // 0 keeps the default
	}{
		{"batch 1 chunk 1", 1, 1},
		{"batch 1 chunk 3", 1, 3},
		{"batch 3", 3, 0},
		{"batch 5 chunk 2", 5, 2},
	}
	for _, name := range fixtures {
		m, exp := loadFixture(t, name, 3)
		vocab := m.Config().VocabSize
		ref, err := m.NewSession(1, len(exp.Prompt)+len(exp.Tokens))
		require.NoError(t, err)
		want := teacherForce(t, ref, exp.Prompt, exp.Tokens, 1)
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				s, err := m.NewSession(tt.batch, len(exp.Prompt)+len(exp.Tokens))
				require.NoError(t, err)
				if tt.chunkT > 0 {
					s.chunkT = tt.chunkT
				}
				got := teacherForce(t, s, exp.Prompt, exp.Tokens, tt.batch)
				for step := range got {
					for b := range tt.batch {
						require.Equal(t, want[step], got[step][b*vocab:(b+1)*vocab], "step %d row %d", step, b)
					}
				}
			})
		}
	}
}

// randomModel builds a model of the runner's "tiny" shape with random
// weights, big enough that matmuls split into many chunks.
func randomModel(t testing.TB, threads int) *Model {
	t.Helper()
	cfg, err := ParseConfig([]byte(`{"model_type":"llama","vocab_size":512,"hidden_size":64,"intermediate_size":176,
		"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":1024,
		"rope_theta":10000,"rms_norm_eps":1e-5,"tie_word_embeddings":false}`))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int, std float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := rnd(n, 0.1)
		for i := range v {
			v[i]++
		}
		return v
	}
	h, q, kv, in := cfg.HiddenSize, cfg.NumAttentionHeads*cfg.HeadDim, cfg.NumKeyValueHeads*cfg.HeadDim, cfg.IntermediateSize
	w := &Weights{Embed: rnd(cfg.VocabSize*h, 1), Norm: ones(h), LMHead: rnd(cfg.VocabSize*h, 1/math.Sqrt(float64(h)))}
	for range cfg.NumHiddenLayers {
		w.Layers = append(w.Layers, Layer{
			AttnNorm: ones(h), MLPNorm: ones(h),
			Q: rnd(q*h, 1/math.Sqrt(float64(h))), K: rnd(kv*h, 1/math.Sqrt(float64(h))), V: rnd(kv*h, 1/math.Sqrt(float64(h))),
			O: rnd(h*q, 1/math.Sqrt(float64(q))), Gate: rnd(in*h, 1/math.Sqrt(float64(h))), Up: rnd(in*h, 1/math.Sqrt(float64(h))),
			Down: rnd(h*in, 1/math.Sqrt(float64(in))),
		})
	}
	m := New(cfg, w, threads)
	if _, ok := t.(*testing.T); ok {
		m.pool.minWork = 0
	}
	t.Cleanup(m.Close)
	return m
}

func TestThreadCountDoesNotChangeResults(t *testing.T) {
	prompt := []int{1, 100, 200, 300, 400, 500, 7, 8, 9, 10, 11}
	const steps = 12
	tests := []struct {
		name  string
		model func(threads int) *Model
	}{
		{"fixture gqa_untied_f32", func(n int) *Model { m, _ := loadFixture(t, "gqa_untied_f32", n); return m }},
		{"fixture llama3_f16_sharded", func(n int) *Model { m, _ := loadFixture(t, "llama3_f16_sharded", n); return m }},
		{"random tiny shape", func(n int) *Model { return randomModel(t, n) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want [][]int
			var wantLogits []float32
			for _, threads := range []int{1, 4, 3} {
				m := tt.model(threads)
				p := make([]int, len(prompt))
				for i, id := range prompt {
					p[i] = id % m.Config().VocabSize
				}
				s, err := m.NewSession(2, len(p)+steps)
				require.NoError(t, err)
				got := greedy(t, s, p, steps, 2)
				assert.Equal(t, got[0], got[1], "threads %d: batch rows differ", threads)
				if want == nil {
					want, wantLogits = got, slices.Clone(s.logits)
					continue
				}
				assert.Equal(t, want, got, "threads %d: tokens differ from threads 1", threads)
				assert.Equal(t, wantLogits, s.logits, "threads %d: last logits differ from threads 1", threads)
			}
		})
	}
}

func TestInvFreq(t *testing.T) {
	// head_dim 8, θ = 10000: default frequencies 1, 0.1, 0.01, 0.001 with
	// wavelengths 2π/f = 6.28, 62.8, 628, 6283. llama3 with original context 64,
	// factor 4, low 1, high 4 keeps f when wavelen < 16, divides by 4 when
	// wavelen > 64, and in between uses smooth = (64/62.83 − 1)/3 = 0.0061973:
	// (1 − smooth)·0.1/4 + smooth·0.1 = 0.0254648 (computed with Python floats).
	tests := []struct {
		name    string
		scaling *RopeScaling
		want    []float64
	}{
		{"default", nil, []float64{1, 0.1, 0.01, 0.001}},
		{"llama3", &RopeScaling{RopeType: "llama3", Factor: 4, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 64},
			[]float64{1, 0.0254648, 0.0025, 0.00025}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := InvFreq(Config{HeadDim: 8, RopeTheta: 10000, RopeScaling: tt.scaling})
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.InEpsilon(t, tt.want[i], got[i], 2e-6, "InvFreq()[%d] = %g, want %g", i, got[i], tt.want[i])
			}
		})
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name    string
		v       []float32
		want    int
		wantErr bool
	}{
		{"single", []float32{3}, 0, false},
		{"max in middle", []float32{1, 5, 2}, 1, false},
		{"tie takes lowest index", []float32{1, 5, 5, 2, 5}, 1, false},
		{"all equal", []float32{-1, -1, -1}, 0, false},
		{"negative infinity", []float32{float32(math.Inf(-1)), -3}, 1, false},
		{"nan", []float32{1, nan, 2}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Argmax(tt.v)
			if tt.wantErr {
				assert.ErrorIs(t, err, ErrNaN)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "Argmax(%v)", tt.v)
		})
	}
}

func TestSessionErrors(t *testing.T) {
	m, _ := loadFixture(t, "gqa_untied_f32", 1)
	_, err := m.NewSession(1, 129)
	assert.ErrorContains(t, err, "129 positions exceed max_position_embeddings 128")
	_, err = m.NewSession(0, 4)
	assert.ErrorContains(t, err, "must be positive")

	s, err := m.NewSession(2, 4)
	require.NoError(t, err)
	tests := []struct {
		name    string
		tokens  []int
		wantErr string
	}{
		{"empty", nil, "0 tokens is not a positive multiple of batch 2"},
		{"ragged", []int{1, 2, 3}, "3 tokens is not a positive multiple of batch 2"},
		{"out of vocab", []int{1, 48}, "token id 48 outside vocab [0, 48)"},
		{"negative id", []int{-1, 3}, "token id -1 outside vocab"},
		{"over capacity", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "5 positions exceed the session capacity 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Forward(tt.tokens)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.Equal(t, 0, s.Pos(), "a failed Forward must not advance the cache")
		})
	}
}
