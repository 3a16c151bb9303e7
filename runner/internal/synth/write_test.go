package synth

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// write writes the tiny shape with opts into a fresh directory.
func write(t *testing.T, opts Options) Result {
	t.Helper()
	if opts.Shape == "" {
		opts.Shape = "tiny"
	}
	if opts.Out == "" {
		opts.Out = filepath.Join(t.TempDir(), "model")
	}
	res, err := Write(context.Background(), opts)
	require.NoError(t, err, "Write(%+v)", opts)
	return res
}

// readTensors decodes every tensor of the checkpoint in dir to float32,
// locating them with modelcfg.Checkpoint.
func readTensors(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	infos, err := modelcfg.Checkpoint(dir)
	require.NoError(t, err)
	out := map[string][]float32{}
	for _, ti := range infos {
		f, err := os.Open(filepath.Join(dir, ti.File))
		require.NoError(t, err)
		raw := make([]byte, ti.Size)
		_, err = f.ReadAt(raw, ti.Offset)
		f.Close()
		require.NoError(t, err)
		var xs []float32
		switch ti.DType {
		case "F32":
			for i := 0; i < len(raw); i += 4 {
				xs = append(xs, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
			}
		case "BF16":
			for i := 0; i < len(raw); i += 2 {
				xs = append(xs, fromBF16(binary.LittleEndian.Uint16(raw[i:])))
			}
		case "F16":
			for i := 0; i < len(raw); i += 2 {
				xs = append(xs, fromF16(binary.LittleEndian.Uint16(raw[i:])))
			}
		default:
			t.Fatalf("tensor %s: dtype %s", ti.Name, ti.DType)
		}
		out[ti.Name] = xs
	}
	return out
}

// fromF16 decodes normal f16 values and zeros, all the writer emits.
func fromF16(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	if exp == 0 {
		return math.Float32frombits(sign) // the writer emits no subnormals
	}
	return math.Float32frombits(sign | (exp-15+127)<<23 | uint32(h&0x3ff)<<13)
}

func TestWriteGolden(t *testing.T) {
	res := write(t, Options{DType: modelcfg.BF16, Seed: 0})
	files := []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
	for _, name := range files {
		got, err := os.ReadFile(filepath.Join(res.Dir, name))
		require.NoError(t, err)
		checkGolden(t, filepath.Join("testdata", "tiny", name), got)
	}
	f, err := os.Open(filepath.Join(res.Dir, modelcfg.SingleFile))
	require.NoError(t, err)
	defer f.Close()
	var n uint64
	require.NoError(t, binary.Read(f, binary.LittleEndian, &n))
	hdr := make([]byte, n)
	_, err = io.ReadFull(f, hdr)
	require.NoError(t, err)
	checkGolden(t, filepath.Join("testdata", "tiny", "header.json"), hdr)

	// The digests pin the value generator: a change to it shows here.
	var sums strings.Builder
	for _, d := range []modelcfg.DType{modelcfg.BF16, modelcfg.F16, modelcfg.F32} {
		for _, seed := range []uint64{0, 1} {
			r := write(t, Options{DType: d, Seed: seed})
			fmt.Fprintf(&sums, "tiny %s seed %d: %s\n", d, seed, r.Hash.Sum)
		}
	}
	checkGolden(t, filepath.Join("testdata", "tiny", "digests.txt"), []byte(sums.String()))
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run go test -update")
	assert.Equal(t, string(want), string(got), "%s differs from the golden file (go test -update rewrites it)", path)
}

func TestWriteResult(t *testing.T) {
	res := write(t, Options{DType: modelcfg.F16, Seed: 7, ShardBytes: 100_000})
	c := Shapes["tiny"]
	c.TorchDType = "float16"
	assert.Equal(t, c, res.Config)
	assert.Equal(t, modelcfg.F16, res.DType)
	assert.Equal(t, int64(158_016), res.Params)
	assert.Equal(t, []string{
		"config.json", "generation_config.json",
		"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
		"model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
		"model.safetensors.index.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
	}, res.Files)
	assert.Positive(t, res.Duration)
	res.Config.RopeScaling = &modelcfg.RopeScaling{}
	res.Config.EOSTokenIDs[0] = 99
	assert.Equal(t, eosID, Shapes["tiny"].EOSTokenIDs[0], "Result.Config aliases Shapes")

	// The digest computed while writing is the one read back from disk.
	read, err := modelcfg.Hash(context.Background(), res.Dir)
	require.NoError(t, err)
	assert.Equal(t, read, res.Hash)

	// config.json reads back to the shape.
	back, err := modelcfg.Load(res.Dir)
	require.NoError(t, err)
	assert.Equal(t, c, back)
	d, err := back.Check(res.Dir)
	require.NoError(t, err)
	assert.Equal(t, modelcfg.F16, d)
}

func TestDeterminism(t *testing.T) {
	base := write(t, Options{Seed: 42})
	tests := []struct {
		name string
		opts Options
		same bool
	}{
		{name: "same options", opts: Options{Seed: 42}, same: true},
		{name: "one worker", opts: Options{Seed: 42, Workers: 1}, same: true},
		{name: "seven workers", opts: Options{Seed: 42, Workers: 7}, same: true},
		{name: "explicit default shard size", opts: Options{Seed: 42, ShardBytes: DefaultShardBytes}, same: true},
		{name: "no sync", opts: Options{Seed: 42, NoSync: true}, same: true},
		{name: "other seed", opts: Options{Seed: 43}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := write(t, tt.opts)
			if tt.same {
				assert.Equal(t, base.Hash, got.Hash)
				return
			}
			assert.NotEqual(t, base.Hash.Sum, got.Hash.Sum)
			// Only the weights differ.
			for i, f := range got.Hash.Files {
				assert.Equal(t, f.Path == modelcfg.SingleFile, f.SHA256 != base.Hash.Files[i].SHA256, f.Path)
			}
		})
	}
}

// TestSameValues checks that the weights do not depend on sharding, and
// that the f32, f16 and bf16 checkpoints of a seed hold the same numbers.
func TestSameValues(t *testing.T) {
	want := readTensors(t, write(t, Options{Seed: 5, DType: modelcfg.F32}).Dir)
	tests := []struct {
		name string
		opts Options
	}{
		{name: "bf16", opts: Options{Seed: 5, DType: modelcfg.BF16}},
		{name: "f16", opts: Options{Seed: 5, DType: modelcfg.F16}},
		{name: "f32 sharded", opts: Options{Seed: 5, DType: modelcfg.F32, ShardBytes: 50_000}},
		{name: "bf16 one tensor per shard", opts: Options{Seed: 5, DType: modelcfg.BF16, ShardBytes: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readTensors(t, write(t, tt.opts).Dir)
			require.Len(t, got, len(want))
			for name, w := range want {
				assert.Equal(t, w, got[name], name)
			}
		})
	}
}

func TestValues(t *testing.T) {
	c := Shapes["tiny"]
	ts := readTensors(t, write(t, Options{Seed: 3, DType: modelcfg.BF16}).Dir)
	require.Len(t, ts, len(c.Tensors()))
	a := float32(weightStd * math.Sqrt(3))
	for _, spec := range c.Tensors() {
		xs := ts[spec.Name]
		require.Len(t, xs, int(spec.Elements()), spec.Name)
		if strings.HasSuffix(spec.Name, "norm.weight") {
			for _, x := range xs {
				require.Equal(t, float32(1), x, spec.Name)
			}
			continue
		}
		var sum, sq float64
		for _, x := range xs {
			require.LessOrEqual(t, math.Abs(float64(x)), float64(a)*1.004, "%s: %g beyond the uniform range", spec.Name, x)
			require.True(t, x == 0 || math.Abs(float64(x)) >= 1.0/(1<<14), "%s: %g is subnormal in f16", spec.Name, x)
			sum += float64(x)
			sq += float64(x) * float64(x)
		}
		n := float64(len(xs))
		mean := sum / n
		std := math.Sqrt(sq/n - mean*mean)
		// Sampling error of the std of n uniform values is about
		// 0.02·0.45/√n: under 3e-4 for the smallest tensor (4096 values).
		assert.InDelta(t, weightStd, std, 0.001, "%s std", spec.Name)
		assert.InDelta(t, 0, mean, 0.002, "%s mean", spec.Name)
	}
}

func TestSharding(t *testing.T) {
	tests := []struct {
		name       string
		shardBytes int64
		files      int
	}{
		{name: "fits", shardBytes: 0, files: 1},
		{name: "exactly fits", shardBytes: 316_032, files: 1},
		// bf16 tiny: embeddings 65,536 B + layer 0 up to its gate_proj fit
		// in 100,000; the gate_proj starts shard 2, layer 1's gate_proj
		// shard 3, and lm_head no longer fits with the last layer's MLP.
		{name: "four", shardBytes: 100_000, files: 4},
		{name: "one tensor each", shardBytes: 1, files: 2*9 + 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := write(t, Options{Seed: 1, ShardBytes: tt.shardBytes})
			infos, err := modelcfg.Checkpoint(res.Dir)
			require.NoError(t, err)
			c := Shapes["tiny"]
			specs := c.Tensors()
			require.Len(t, infos, len(specs))

			indexPath := filepath.Join(res.Dir, modelcfg.IndexFile)
			if tt.files == 1 {
				assert.NoFileExists(t, indexPath)
				for _, ti := range infos {
					assert.Equal(t, modelcfg.SingleFile, ti.File)
				}
				return
			}
			data, err := os.ReadFile(indexPath)
			require.NoError(t, err)
			var idx struct {
				Metadata  map[string]int64  `json:"metadata"`
				WeightMap map[string]string `json:"weight_map"`
			}
			require.NoError(t, json.Unmarshal(data, &idx))
			assert.Equal(t, map[string]int64{"total_size": 316_032, "total_parameters": 158_016}, idx.Metadata)
			require.Len(t, idx.WeightMap, len(specs))

			perFile := map[string]int64{}
			count := map[string]int{}
			for _, ti := range infos {
				assert.Equal(t, idx.WeightMap[ti.Name], ti.File, ti.Name)
				perFile[ti.File] += ti.Size
				count[ti.File]++
			}
			require.Len(t, perFile, tt.files)
			for i := 1; i <= tt.files; i++ {
				name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i, tt.files)
				require.Contains(t, perFile, name)
				if count[name] > 1 {
					assert.LessOrEqual(t, perFile[name], tt.shardBytes, name)
				}
			}
			// Shards hold the tensors in forward order.
			var order []string
			for _, ti := range infos {
				order = append(order, ti.Name)
			}
			var want []string
			for _, s := range specs {
				want = append(want, s.Name)
			}
			assert.Equal(t, want, order)
		})
	}
}

func TestWriteOut(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(t *testing.T, out string)
		overwrite bool
		errMsg    string
	}{
		{name: "new"},
		{name: "missing parents", prepare: func(t *testing.T, out string) {}},
		{name: "empty dir", prepare: func(t *testing.T, out string) { require.NoError(t, os.Mkdir(out, 0o755)) }},
		{name: "stale partial removed", prepare: func(t *testing.T, out string) {
			require.NoError(t, os.MkdirAll(out+".partial", 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out+".partial", "junk"), nil, 0o644))
		}},
		{name: "not empty", errMsg: "exists and is not empty", prepare: func(t *testing.T, out string) {
			require.NoError(t, os.Mkdir(out, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o644))
		}},
		{name: "overwrite a non-model dir", overwrite: true, errMsg: "holds no config.json", prepare: func(t *testing.T, out string) {
			require.NoError(t, os.Mkdir(out, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o644))
		}},
		{name: "overwrite a model", overwrite: true, prepare: func(t *testing.T, out string) {
			require.NoError(t, os.Mkdir(out, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out, "config.json"), nil, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(out, "model-00001-of-00002.safetensors"), nil, 0o644))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "a", "b", "model")
			if tt.prepare != nil {
				require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
				tt.prepare(t, out)
			}
			res, err := Write(context.Background(), Options{Shape: "tiny", Out: out, Overwrite: tt.overwrite})
			assert.NoDirExists(t, out+".partial")
			if tt.errMsg != "" {
				assert.ErrorContains(t, err, tt.errMsg)
				assert.FileExists(t, filepath.Join(out, "notes.txt"), "a refused Write must leave the directory alone")
				return
			}
			require.NoError(t, err)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.Equal(t, res.Files, names, "the directory holds exactly the files written")
		})
	}
}

func TestWriteCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "model")
	_, err := Write(ctx, Options{Shape: "tiny", Out: out})
	assert.ErrorIs(t, err, context.Canceled)
	assert.NoDirExists(t, out)
	assert.NoDirExists(t, out+".partial")
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		errMsg string
	}{
		{name: "shape", opts: Options{Shape: "llama-70b", Out: "x"}, errMsg: `synth: unknown shape "llama-70b" (want one of [llama-3-8b llama-3.2-1b tiny tinyllama-1.1b])`},
		{name: "dtype", opts: Options{Shape: "tiny", Out: "x", DType: "fp8"}, errMsg: `synth: unknown dtype "fp8" (want f32, f16 or bf16)`},
		{name: "out", opts: Options{Shape: "tiny"}, errMsg: "synth: no output directory"},
		{name: "shard size", opts: Options{Shape: "tiny", Out: "x", ShardBytes: -1}, errMsg: "synth: negative shard size -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Write(context.Background(), tt.opts)
			assert.EqualError(t, err, tt.errMsg)
		})
	}
}

func TestShapes(t *testing.T) {
	tests := []struct {
		shape  string
		params int64
		bf16   int64 // bytes per decoded token
	}{
		{"tiny", 158_016, 2 * (158_016 - 512*64 + 64)},
		{"tinyllama-1.1b", 1_100_048_384, 2_069_028_864},
		{"llama-3.2-1b", 1_235_814_400, 2_471_632_896},
		{"llama-3-8b", 8_030_261_248, 15_009_857_536},
	}
	for _, tt := range tests {
		t.Run(tt.shape, func(t *testing.T) {
			c := Shapes[tt.shape]
			assert.Equal(t, tt.params, c.Params())
			assert.Equal(t, tt.bf16, c.WeightBytesPerToken(2))
			// Each shape survives config.json unchanged.
			data, err := json.Marshal(c)
			require.NoError(t, err)
			back, err := modelcfg.Parse(tt.shape, data)
			require.NoError(t, err)
			assert.Equal(t, c, back)
		})
	}
}

// TestPythonLoaders reads the written files with the Hugging Face
// safetensors and tokenizers packages (testdata/verify.py). It needs python3
// (or $CIB_PYTHON) with numpy, safetensors and tokenizers, and skips without.
func TestPythonLoaders(t *testing.T) {
	python := os.Getenv("CIB_PYTHON")
	if python == "" {
		python = "python3"
	}
	if out, err := exec.Command(python, "-c", "import numpy, safetensors, tokenizers").CombinedOutput(); err != nil {
		t.Skipf("%s lacks numpy, safetensors or tokenizers (pip install numpy safetensors tokenizers; CIB_PYTHON picks the interpreter): %v: %s", python, err, out)
	}
	type tensor struct {
		File      string  `json:"file"`
		DType     string  `json:"dtype"`
		Shape     []int64 `json:"shape"`
		SHA256F32 string  `json:"sha256_f32"`
		Std       float64 `json:"std"`
		Finite    bool    `json:"finite"`
	}
	type seen struct {
		Files     []string                     `json:"files"`
		Metadata  map[string]map[string]string `json:"metadata"`
		Tensors   map[string]tensor            `json:"tensors"`
		Index     *modelcfg.Index              `json:"index"`
		Tokenizer struct {
			VocabSize int      `json:"vocab_size"`
			IDs       []int    `json:"ids"`
			Tokens    []string `json:"tokens"`
			Decoded   string   `json:"decoded"`
		} `json:"tokenizer"`
	}
	verify := func(t *testing.T, dir string) seen {
		cmd := exec.Command(python, filepath.Join("testdata", "verify.py"), dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "verify.py: %s", stderr.String())
		var s seen
		require.NoError(t, json.Unmarshal(out, &s))
		return s
	}
	c := Shapes["tiny"]
	values := map[string]string{} // tensor → sha256 of its float32 values
	for _, tt := range []struct {
		dtype  modelcfg.DType
		shards int64
	}{{modelcfg.BF16, 0}, {modelcfg.F16, 0}, {modelcfg.F32, 100_000}} {
		t.Run(fmt.Sprintf("%s shards %d", tt.dtype, tt.shards), func(t *testing.T) {
			res := write(t, Options{Seed: 9, DType: tt.dtype, ShardBytes: tt.shards})
			s := verify(t, res.Dir)
			for _, f := range s.Files {
				assert.Equal(t, map[string]string{"format": "pt"}, s.Metadata[f])
			}
			require.Len(t, s.Tensors, len(c.Tensors()))
			for _, spec := range c.Tensors() {
				got := s.Tensors[spec.Name]
				assert.Equal(t, tt.dtype.Safetensors(), got.DType, spec.Name)
				assert.Equal(t, spec.Shape, got.Shape, spec.Name)
				assert.True(t, got.Finite, spec.Name)
				if want, ok := values[spec.Name]; ok {
					assert.Equal(t, want, got.SHA256F32, "%s: values differ between dtypes", spec.Name)
				}
				values[spec.Name] = got.SHA256F32
				if s.Index != nil {
					assert.Equal(t, got.File, s.Index.WeightMap[spec.Name])
				}
			}
			assert.Equal(t, tt.shards != 0, s.Index != nil)
			assert.Equal(t, 512, s.Tokenizer.VocabSize)
			assert.Equal(t, []int{1, 3, 4, 2, 511, 0}, s.Tokenizer.IDs, "ids of %q", s.Tokenizer.Tokens)
			assert.Equal(t, "<s> <3> <4> </s> <511> <unk>", s.Tokenizer.Decoded)
		})
	}
}
