package gguf

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// shardBytes is the most tensor bytes per safetensors file, as transformers'
// save_pretrained writes them ("5GB").
const shardBytes = 5_000_000_000

// Options says what Import reads and writes.
type Options struct {
	// In is the GGUF file.
	In string
	// Out is the model directory to create; it must not exist or be empty,
	// unless Overwrite is set and it holds a config.json.
	Out       string
	Overwrite bool
	// DType is the stored dtype of the dequantized weights; f32 when empty.
	DType modelcfg.DType
	// Progress, when not nil, receives one line per file written.
	Progress io.Writer
}

// Result describes an imported model directory.
type Result struct {
	Dir    string
	Config modelcfg.Config
	// Types counts the GGUF tensors by ggml type ("Q4_1": 168).
	Types    map[string]int
	Params   int64
	Bytes    int64
	Duration time.Duration
}

// hfName maps GGUF tensor names (llama.cpp's LLM_TENSOR_NAMES for llama) to
// the Hugging Face names; "%d" is the layer.
var hfName = map[string]string{
	"token_embd.weight":         "model.embed_tokens.weight",
	"output_norm.weight":        "model.norm.weight",
	"output.weight":             "lm_head.weight",
	"blk.%d.attn_norm.weight":   "model.layers.%d.input_layernorm.weight",
	"blk.%d.attn_q.weight":      "model.layers.%d.self_attn.q_proj.weight",
	"blk.%d.attn_k.weight":      "model.layers.%d.self_attn.k_proj.weight",
	"blk.%d.attn_v.weight":      "model.layers.%d.self_attn.v_proj.weight",
	"blk.%d.attn_output.weight": "model.layers.%d.self_attn.o_proj.weight",
	"blk.%d.ffn_norm.weight":    "model.layers.%d.post_attention_layernorm.weight",
	"blk.%d.ffn_gate.weight":    "model.layers.%d.mlp.gate_proj.weight",
	"blk.%d.ffn_up.weight":      "model.layers.%d.mlp.up_proj.weight",
	"blk.%d.ffn_down.weight":    "model.layers.%d.mlp.down_proj.weight",
}

// HFName is the Hugging Face name of a GGUF Llama tensor, false for a name
// the Llama layout does not have.
func HFName(name string) (string, bool) {
	if hf, ok := hfName[name]; ok {
		return hf, true
	}
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return "", false
	}
	num, suffix, ok := strings.Cut(rest, ".")
	layer, err := strconv.Atoi(num)
	if !ok || err != nil || layer < 0 {
		return "", false
	}
	if hf, ok := hfName["blk.%d."+suffix]; ok {
		return fmt.Sprintf(hf, layer), true
	}
	return "", false
}

// Config derives the Hugging Face LlamaConfig of a GGUF Llama from its
// metadata (the llama.* keys convert_hf_to_gguf.py writes).
func (g *File) Config() (modelcfg.Config, error) {
	arch, _ := g.String("general.architecture")
	if arch != "llama" {
		return modelcfg.Config{}, fmt.Errorf("architecture %q not supported (want llama)", arch)
	}
	var missing []string
	need := func(key string) int {
		v, ok := g.Uint("llama." + key)
		if !ok || v == 0 || v > math.MaxInt32 {
			missing = append(missing, "llama."+key)
		}
		return int(v)
	}
	c := modelcfg.Config{
		ModelType:             "llama",
		HiddenSize:            need("embedding_length"),
		IntermediateSize:      need("feed_forward_length"),
		NumHiddenLayers:       need("block_count"),
		NumAttentionHeads:     need("attention.head_count"),
		MaxPositionEmbeddings: need("context_length"),
		RopeTheta:             10000,
		RMSNormEps:            1e-5,
		BOSTokenID:            -1,
	}
	if len(missing) > 0 {
		return modelcfg.Config{}, fmt.Errorf("metadata: %s missing or not a positive integer", strings.Join(missing, ", "))
	}
	c.NumKeyValueHeads = c.NumAttentionHeads
	if v, ok := g.Uint("llama.attention.head_count_kv"); ok && v > 0 {
		c.NumKeyValueHeads = int(v)
	}
	c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	if v, ok := g.Uint("llama.attention.key_length"); ok && v > 0 {
		c.HeadDim = int(v)
	}
	if v, ok := g.Uint("llama.rope.dimension_count"); ok && int(v) != c.HeadDim {
		return modelcfg.Config{}, fmt.Errorf("llama.rope.dimension_count %d: partial rotary embeddings not supported (head dim %d)", v, c.HeadDim)
	}
	if v, ok := g.Float("llama.rope.freq_base"); ok {
		c.RopeTheta = v
	}
	if v, ok := g.Float("llama.attention.layer_norm_rms_epsilon"); ok {
		c.RMSNormEps = v
	}
	if s, ok := g.String("llama.rope.scaling.type"); ok && s != "none" {
		f, _ := g.Float("llama.rope.scaling.factor")
		if s != "linear" {
			return modelcfg.Config{}, fmt.Errorf("llama.rope.scaling.type %q not supported (want none or linear)", s)
		}
		c.RopeScaling = &modelcfg.RopeScaling{Type: "linear", Factor: f}
	}
	if _, ok := g.Tensor("rope_freqs.weight"); ok {
		return modelcfg.Config{}, errors.New("rope_freqs.weight (Llama 3.1 rope scaling) not supported")
	}
	if tok, ok := g.Strings("tokenizer.ggml.tokens"); ok {
		c.VocabSize = len(tok)
	}
	if v, ok := g.Uint("llama.vocab_size"); ok && v > 0 {
		c.VocabSize = int(v)
	}
	if emb, ok := g.Tensor("token_embd.weight"); ok && len(emb.Dims) == 2 {
		c.VocabSize = int(emb.Dims[1])
	}
	if c.VocabSize == 0 {
		return modelcfg.Config{}, errors.New("metadata: no vocabulary size (llama.vocab_size, tokenizer.ggml.tokens or token_embd.weight)")
	}
	_, hasOutput := g.Tensor("output.weight")
	c.TieWordEmbeddings = !hasOutput
	if v, ok := g.Uint("tokenizer.ggml.bos_token_id"); ok {
		c.BOSTokenID = int(v)
	}
	if v, ok := g.Uint("tokenizer.ggml.eos_token_id"); ok {
		c.EOSTokenIDs = []int{int(v)}
	}
	return c, nil
}

// Import converts a GGUF Llama file into a Hugging Face model directory:
// config.json, generation_config.json, the tokenizer files built from the
// GGUF's tokenizer metadata, and the weights dequantized into safetensors,
// one tensor in memory at a time. The Q and K projections are un-permuted:
// llama.cpp's converter interleaves each head's two rotary halves for its
// RoPE kernel, Hugging Face Llama keeps them as halves. The directory is
// written as Out+".partial" and renamed when complete.
func Import(ctx context.Context, opts Options) (Result, error) {
	start := time.Now()
	res, err := doImport(ctx, opts)
	if err != nil {
		return Result{}, fmt.Errorf("import %s: %w", opts.In, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

type outTensor struct {
	src        TensorInfo
	name       string
	shape      []int64
	permute    int // heads to un-permute rows for, 0 for none
	begin, end int64
}

func doImport(ctx context.Context, opts Options) (Result, error) {
	if opts.DType == "" {
		opts.DType = modelcfg.F32
	}
	dt, err := modelcfg.ParseDType(string(opts.DType))
	if err != nil {
		return Result{}, err
	}
	if opts.Out == "" {
		return Result{}, errors.New("no output directory")
	}
	g, err := Open(opts.In)
	if err != nil {
		return Result{}, err
	}
	defer g.Close()
	cfg, err := g.Config()
	if err != nil {
		return Result{}, err
	}
	cfg.TorchDType = dt.Torch()
	tok, err := g.tokenizerFiles(cfg)
	if err != nil {
		return Result{}, fmt.Errorf("tokenizer: %w", err)
	}

	// Every GGUF tensor must map to an expected HF tensor of the same shape.
	want := map[string][]int64{}
	for _, t := range cfg.Tensors() {
		want[t.Name] = t.Shape
	}
	types := map[string]int{}
	byName := map[string]outTensor{}
	for _, t := range g.Tensors {
		hf, ok := HFName(t.Name)
		if !ok {
			return Result{}, fmt.Errorf("tensor %s: not part of a Llama checkpoint", t.Name)
		}
		if !t.Type.Supported() {
			return Result{}, fmt.Errorf("tensor %s: type %s not supported (want F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 or Q2_K..Q6_K)", t.Name, t.Type)
		}
		shape := t.Shape()
		ws, ok := want[hf]
		if !ok || fmt.Sprint(ws) != fmt.Sprint(shape) {
			return Result{}, fmt.Errorf("tensor %s (%s): shape %v, config says %v", t.Name, hf, shape, ws)
		}
		o := outTensor{src: t, name: hf, shape: shape}
		switch {
		case strings.HasSuffix(hf, "q_proj.weight"):
			o.permute = cfg.NumAttentionHeads
		case strings.HasSuffix(hf, "k_proj.weight"):
			o.permute = cfg.NumKeyValueHeads
		}
		types[t.Type.String()]++
		byName[hf] = o
	}
	var order []outTensor
	for _, t := range cfg.Tensors() {
		o, ok := byName[t.Name]
		if !ok {
			return Result{}, fmt.Errorf("tensor %s missing from the GGUF file", t.Name)
		}
		order = append(order, o)
	}
	shards := planShards(order, int64(dt.Size()))

	out := filepath.Clean(opts.Out)
	if err := checkOut(out, opts.Overwrite); err != nil {
		return Result{}, err
	}
	tmp := out + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return Result{}, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	cfgJSON, err := cfg.MarshalJSON()
	if err != nil {
		return Result{}, err
	}
	files := map[string][]byte{modelcfg.ConfigFile: append(cfgJSON, '\n')}
	for k, v := range tok {
		files[k] = v
	}
	if len(shards) > 1 {
		files[modelcfg.IndexFile] = shardIndex(shards, cfg.Params())
	}
	var total int64
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return Result{}, err
		}
		total += int64(len(b))
	}
	for _, s := range shards {
		n, err := writeShard(ctx, g, filepath.Join(tmp, s.name), s.tensors, dt)
		if err != nil {
			return Result{}, fmt.Errorf("write %s: %w", s.name, err)
		}
		total += n
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "wrote %s (%.1f MB)\n", s.name, float64(n)/1e6)
		}
	}
	if opts.Overwrite {
		if err := os.RemoveAll(out); err != nil {
			return Result{}, err
		}
	} else if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return Result{}, err
	}
	done = true
	return Result{Dir: opts.Out, Config: cfg, Types: types, Params: cfg.Params(), Bytes: total}, nil
}

// checkOut refuses to replace anything but an empty directory, or a model
// directory when overwrite is set.
func checkOut(out string, overwrite bool) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(filepath.Dir(out), 0o755)
	}
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%s exists and is not empty (overwrite to replace it)", out)
	}
	if _, err := os.Stat(filepath.Join(out, modelcfg.ConfigFile)); err != nil {
		return fmt.Errorf("%s is not empty and holds no %s: refusing to replace it", out, modelcfg.ConfigFile)
	}
	return nil
}

type shardPlan struct {
	name    string
	tensors []outTensor
}

// planShards splits the tensors into files of at most shardBytes of data, in
// order, as save_pretrained does; one file is model.safetensors.
func planShards(ts []outTensor, esize int64) []shardPlan {
	var out []shardPlan
	var used int64
	for _, t := range ts {
		n := t.src.Elements() * esize
		if len(out) == 0 || used > 0 && used+n > shardBytes {
			out = append(out, shardPlan{})
			used = 0
		}
		t.begin, t.end = used, used+n
		s := &out[len(out)-1]
		s.tensors = append(s.tensors, t)
		used += n
	}
	for i := range out {
		out[i].name = modelcfg.SingleFile
		if len(out) > 1 {
			out[i].name = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(out))
		}
	}
	return out
}

func shardIndex(shards []shardPlan, params int64) []byte {
	wm := map[string]string{}
	var size int64
	for _, s := range shards {
		for _, t := range s.tensors {
			wm[t.name] = s.name
			size += t.end - t.begin
		}
	}
	b, _ := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_parameters": params, "total_size": size},
		"weight_map": wm,
	}, "", "  ")
	return append(b, '\n')
}

// writeShard writes one safetensors file, dequantizing one tensor at a time.
func writeShard(ctx context.Context, g *File, path string, ts []outTensor, dt modelcfg.DType) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	hdr := safetensorsHeader(ts, dt)
	if _, err := f.Write(hdr); err != nil {
		return 0, err
	}
	n := int64(len(hdr))
	for _, t := range ts {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		vals := make([]float32, t.src.Elements())
		if err := g.ReadFloat32(t.src, vals); err != nil {
			return 0, err
		}
		if t.permute > 0 {
			vals = unpermute(vals, t.permute, int(t.shape[1]))
		}
		b := encode(vals, dt)
		if _, err := f.Write(b); err != nil {
			return 0, err
		}
		n += int64(len(b))
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return n, f.Close()
}

// unpermute undoes convert_hf_to_gguf.py's permute(w, heads): there, the
// rows of each head, viewed as [2, dim/2] (the two rotary halves), are
// transposed to [dim/2, 2], interleaving the halves. GGUF row h·dim + 2i + j
// is therefore Hugging Face row h·dim + j·dim/2 + i. cols is the row length.
func unpermute(w []float32, heads, cols int) []float32 {
	rows := len(w) / cols
	dim := rows / heads
	out := make([]float32, len(w))
	for h := range heads {
		for i := range dim / 2 {
			for j := range 2 {
				src, dst := h*dim+2*i+j, h*dim+j*dim/2+i
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

// safetensorsHeader is the length prefix and JSON header of a safetensors
// file, padded with spaces to 8 bytes.
func safetensorsHeader(ts []outTensor, dt modelcfg.DType) []byte {
	var b strings.Builder
	b.WriteString(`{"__metadata__":{"format":"pt"}`)
	for _, t := range ts {
		name, _ := json.Marshal(t.name)
		shape, _ := json.Marshal(t.shape)
		fmt.Fprintf(&b, `,%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, dt.Safetensors(), shape, t.begin, t.end)
	}
	b.WriteByte('}')
	for (b.Len()+8)%8 != 0 {
		b.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(b.Len()))
	return append(out, b.String()...)
}

// encode stores values as dt, little-endian; bf16 and f16 round to nearest
// even.
func encode(v []float32, dt modelcfg.DType) []byte {
	out := make([]byte, len(v)*dt.Size())
	for i, x := range v {
		switch dt {
		case modelcfg.F32:
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		case modelcfg.BF16:
			binary.LittleEndian.PutUint16(out[2*i:], ggufw.FloatToBF16(x))
		case modelcfg.F16:
			binary.LittleEndian.PutUint16(out[2*i:], ggufw.FloatToHalf(x))
		}
	}
	return out
}
