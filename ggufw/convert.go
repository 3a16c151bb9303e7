package ggufw

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Revision identifies what ConvertHF writes: it is bumped whenever the
// output for the same input changes (metadata, layout, quantizers), so that
// callers caching converted files (the llama.cpp engine) can key on it.
const Revision = 1

// Options adjust ConvertHF.
type Options struct {
	// Name is general.name; the base name of the HF directory when empty.
	Name string
	// Progress, when set, gets a line per converted layer.
	Progress io.Writer
}

// Stats describe a written GGUF file.
type Stats struct {
	// Path is the file written.
	Path string
	// Bytes is its size.
	Bytes int64
	// Tensors counts the tensors written per storage type.
	Tensors map[Type]int
	// Params is the number of values in all tensors.
	Params int64
	// Duration is the conversion's wall time.
	Duration time.Duration
	// Warnings say where the file departs from what was asked: tensors
	// stored in another type because their rows do not fit the quantization
	// block, a vocabulary llama.cpp cannot tokenize text with.
	Warnings []string
}

// FileType is general.file_type (llama.cpp's llama_ftype) for a conversion
// to t: the "mostly t" file type. A uniform q4_k file is recorded as
// MOSTLY_Q4_K_S (14), the closest of llama.cpp's k-quant mixes.
func FileType(t Type) uint32 {
	switch t {
	case F16:
		return 1
	case Q8_0:
		return 7
	case Q4_K:
		return 14
	case BF16:
		return 32
	}
	return 0
}

// plan is one tensor of the output: where its values come from and how it
// is stored.
type plan struct {
	Tensor
	src     string    // HF tensor name; empty for generated tensors
	rows    int64     // HF rows (1 for 1-D)
	cols    int64     // HF columns (the length of a 1-D tensor)
	permute int       // heads of the rotary row permutation, 0 for none
	data    []float32 // generated values
}

// ConvertHF writes the HF Llama directory hfDir (config.json, safetensors in
// f32, f16 or bf16, tokenizer files) to the GGUF file outPath with the 2-D
// weights stored as typ, as llama.cpp's convert_hf_to_gguf.py (LlamaModel)
// does: its tensor names and metadata keys, q_proj and k_proj rows permuted
// to llama.cpp's rotary layout, 1-D norms kept in f32, the llama3 rope
// scaling stored as a rope_freqs tensor, no output tensor when the
// embeddings are tied. Quantized weights whose rows are not a multiple of
// the block fall back to q8_0 (from q4_k) or f16, with a warning.
//
// It streams: at most a chunk of rows (or one q/k projection) is in memory.
// The output is deterministic (same input, same bytes; general.name is the
// directory's base name unless Options.Name is set) and appears atomically:
// it is written to a temporary file next to outPath and renamed over it (an
// existing file is replaced).
func ConvertHF(ctx context.Context, hfDir, outPath string, typ Type, opts Options) (Stats, error) {
	start := time.Now()
	st, err := convert(ctx, hfDir, outPath, typ, opts)
	if err != nil {
		return Stats{}, fmt.Errorf("convert %s to gguf: %w", hfDir, err)
	}
	st.Duration = time.Since(start)
	return st, nil
}

func convert(ctx context.Context, hfDir, outPath string, typ Type, opts Options) (Stats, error) {
	if typ.blockBytes() == 0 {
		return Stats{}, fmt.Errorf("tensor type %s: want f32, f16, bf16, q8_0 or q4_k", typ)
	}
	if fi, err := os.Stat(hfDir); err != nil {
		return Stats{}, err
	} else if !fi.IsDir() {
		return Stats{}, fmt.Errorf("%s is not a directory", hfDir)
	}
	cfg, err := loadConfig(hfDir)
	if err != nil {
		return Stats{}, err
	}
	ckpt, err := checkpoint(hfDir)
	if err != nil {
		return Stats{}, err
	}
	plans, warnings, err := planTensors(cfg, ckpt, typ)
	if err != nil {
		return Stats{}, err
	}
	name := opts.Name
	if name == "" {
		abs, _ := filepath.Abs(hfDir)
		name = filepath.Base(abs)
	}
	meta := metadata(cfg, typ, name)
	vocab, w, err := vocabMeta(hfDir, cfg)
	if err != nil {
		return Stats{}, err
	}
	warnings = append(warnings, w...)
	meta = append(meta, vocab...)
	// general.architecture first (llama.cpp's loader and gguf-py put it
	// there); the rest in key order.
	slices.SortStableFunc(meta[1:], func(a, b KV) int { return strings.Compare(a.Key, b.Key) })

	tensors := make([]Tensor, len(plans))
	st := Stats{Path: outPath, Tensors: map[Type]int{}, Warnings: warnings}
	for i, p := range plans {
		tensors[i] = p.Tensor
		st.Tensors[p.Type]++
		st.Params += p.rows * p.cols
	}
	dir := filepath.Dir(outPath)
	if err := checkSpace(dir, tensors, typ); err != nil {
		return Stats{}, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(outPath)+".tmp*")
	if err != nil {
		return Stats{}, err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	gw, err := NewWriter(f, meta, tensors)
	if err != nil {
		return Stats{}, err
	}
	if err := writeData(ctx, gw, hfDir, ckpt, plans, opts.Progress); err != nil {
		return Stats{}, err
	}
	if err := gw.Close(); err != nil {
		return Stats{}, err
	}
	st.Bytes = gw.Size()
	if err := f.Chmod(0o644); err != nil {
		return Stats{}, err
	}
	if err := f.Close(); err != nil {
		return Stats{}, err
	}
	if err := os.Rename(tmp, outPath); err != nil {
		return Stats{}, err
	}
	f = nil
	return st, nil
}

// freeSpace is statFree, replaced in tests.
var freeSpace = statFree

// headerSlack is room for the file's header (metadata, a vocabulary of up to
// a few hundred thousand tokens) next to its tensor data.
const headerSlack = 64 << 20

// checkSpace refuses a conversion whose file would not fit in dir's free
// space, before a byte is written: an 8B model's f16 GGUF is 16 GB, and a
// disk filling up mid-write fails late, after minutes of work, and leaves
// other writers on that disk short too.
func checkSpace(dir string, tensors []Tensor, typ Type) error {
	need, err := dataBytes(tensors)
	if err != nil {
		return err
	}
	need += headerSlack
	free, ok := freeSpace(dir)
	if !ok || free >= need {
		return nil
	}
	return fmt.Errorf("%s has %.2f GB free, the %s file needs %.2f GB: free space there or convert elsewhere", dir, float64(free)/1e9, typ, float64(need)/1e9)
}

// dataBytes is the size of the tensor data a GGUF of these tensors holds
// (each padded to the alignment): the file is that and its header.
func dataBytes(tensors []Tensor) (int64, error) {
	var n int64
	for _, t := range tensors {
		b, err := t.Bytes()
		if err != nil {
			return 0, err
		}
		n = pad(n + b)
	}
	return n, nil
}

// metadata is the general.* and llama.* metadata of LlamaModel's
// set_gguf_parameters, general.architecture first.
func metadata(c llamaConfig, typ Type, name string) []KV {
	kv := []KV{
		{"general.architecture", "llama"},
		{"general.type", "model"},
		{"general.name", name},
		{"general.file_type", FileType(typ)},
		{"general.quantization_version", uint32(2)},
		{"llama.block_count", uint32(c.Layers)},
		{"llama.context_length", uint32(c.MaxPos)},
		{"llama.embedding_length", uint32(c.HiddenSize)},
		{"llama.feed_forward_length", uint32(c.IntermediateSize)},
		{"llama.attention.head_count", uint32(c.Heads)},
		{"llama.attention.head_count_kv", uint32(c.KVHeads)},
		{"llama.rope.freq_base", float32(c.RopeTheta)},
		{"llama.attention.layer_norm_rms_epsilon", float32(c.RMSEps)},
		{"llama.vocab_size", uint32(c.VocabSize)},
		{"llama.rope.dimension_count", uint32(c.HeadDim)},
	}
	if c.HasHeadDim {
		kv = append(kv, KV{"llama.attention.key_length", uint32(c.HeadDim)}, KV{"llama.attention.value_length", uint32(c.HeadDim)})
	}
	if r := c.Rope; r != nil && r.Type == "linear" {
		kv = append(kv, KV{"llama.rope.scaling.type", "linear"}, KV{"llama.rope.scaling.factor", float32(r.Factor)})
	}
	return kv
}

// ropeFreqs is LlamaModel.generate_extra_tensors' rope_freqs for llama3
// rope scaling: per rotary frequency, the factor its wavelength is divided
// by (1 for short wavelengths, factor for long ones, interpolated between),
// computed in float32 as the converter's torch code computes it.
func ropeFreqs(c llamaConfig) []float32 {
	r := c.Rope
	base, dim := float32(c.RopeTheta), c.HeadDim
	factor, lo, hi := float32(r.Factor), float32(r.LowFreqFactor), float32(r.HighFreqFactor)
	old := float32(r.OriginalMaxPos)
	loWave, hiWave := old/lo, old/hi
	out := make([]float32, 0, dim/2)
	for i := 0; i < dim; i += 2 {
		freq := 1 / float32(math.Pow(float64(base), float64(float32(i)/float32(dim))))
		wave := float32(2*math.Pi) / freq
		switch {
		case wave < hiWave:
			out = append(out, 1)
		case wave > loWave:
			out = append(out, factor)
		default:
			smooth := (old/wave - lo) / (hi - lo)
			out = append(out, 1/((1-smooth)/factor+smooth))
		}
	}
	return out
}

// planTensors maps the checkpoint to GGUF tensors in forward order
// (rope_freqs, token_embd, each block, output_norm, output) and picks each
// one's storage type.
func planTensors(c llamaConfig, ckpt map[string]stTensor, typ Type) ([]plan, []string, error) {
	h, inter := int64(c.HiddenSize), int64(c.IntermediateSize)
	q, kv := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	type spec struct {
		gguf, hf   string
		rows, cols int64
		matrix     bool
		permute    int
	}
	specs := []spec{{"token_embd.weight", "model.embed_tokens.weight", int64(c.VocabSize), h, true, 0}}
	for l := range c.Layers {
		b, p := "blk."+strconv.Itoa(l)+".", "model.layers."+strconv.Itoa(l)+"."
		specs = append(specs,
			spec{b + "attn_norm.weight", p + "input_layernorm.weight", 1, h, false, 0},
			spec{b + "attn_q.weight", p + "self_attn.q_proj.weight", q, h, true, c.Heads},
			spec{b + "attn_k.weight", p + "self_attn.k_proj.weight", kv, h, true, c.KVHeads},
			spec{b + "attn_v.weight", p + "self_attn.v_proj.weight", kv, h, true, 0},
			spec{b + "attn_output.weight", p + "self_attn.o_proj.weight", h, q, true, 0},
			spec{b + "ffn_norm.weight", p + "post_attention_layernorm.weight", 1, h, false, 0},
			spec{b + "ffn_gate.weight", p + "mlp.gate_proj.weight", inter, h, true, 0},
			spec{b + "ffn_up.weight", p + "mlp.up_proj.weight", inter, h, true, 0},
			spec{b + "ffn_down.weight", p + "mlp.down_proj.weight", h, inter, true, 0},
		)
	}
	specs = append(specs, spec{"output_norm.weight", "model.norm.weight", 1, h, false, 0})
	_, hasHead := ckpt["lm_head.weight"]
	if !c.Tied || hasHead {
		// Some tied checkpoints still carry lm_head.weight; the converter
		// writes it then, and so does this.
		specs = append(specs, spec{"output.weight", "lm_head.weight", int64(c.VocabSize), h, true, 0})
	}
	used := map[string]bool{}
	var plans []plan
	if c.Rope != nil && c.Rope.Type == "llama3" {
		rf := ropeFreqs(c)
		plans = append(plans, plan{Tensor: Tensor{"rope_freqs.weight", []uint64{uint64(len(rf))}, F32}, rows: 1, cols: int64(len(rf)), data: rf})
	}
	fallback := map[string][]string{}
	for _, s := range specs {
		t, ok := ckpt[s.hf]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %s: not in the checkpoint", s.hf)
		}
		used[s.hf] = true
		want := []int64{s.cols}
		if s.matrix {
			want = []int64{s.rows, s.cols}
		}
		if !slices.Equal(t.Shape, want) {
			return nil, nil, fmt.Errorf("tensor %s: shape %v, config.json implies %v", s.hf, t.Shape, want)
		}
		switch t.DType {
		case "F32", "F16", "BF16":
		default:
			return nil, nil, fmt.Errorf("tensor %s: dtype %s, want F32, F16 or BF16", s.hf, t.DType)
		}
		p := plan{src: s.hf, rows: s.rows, cols: s.cols, permute: s.permute}
		p.Name = s.gguf
		p.Dims = []uint64{uint64(s.cols)}
		p.Type = F32
		if s.matrix {
			p.Dims = append(p.Dims, uint64(s.rows))
			p.Type = typ
			if s.cols%int64(typ.BlockSize()) != 0 {
				p.Type = F16
				if typ == Q4_K && s.cols%32 == 0 {
					p.Type = Q8_0
				}
				fallback[p.Type.String()] = append(fallback[p.Type.String()], s.gguf)
			}
		}
		if s.permute > 0 && s.rows%int64(2*s.permute) != 0 {
			return nil, nil, fmt.Errorf("tensor %s: %d rows do not split into %d heads of rotary pairs", s.hf, s.rows, s.permute)
		}
		plans = append(plans, p)
	}
	for _, name := range slices.Sorted(mapKeys(ckpt)) {
		if !used[name] && !strings.HasSuffix(name, "rotary_emb.inv_freq") {
			return nil, nil, fmt.Errorf("tensor %s: not part of a Llama of this config.json", name)
		}
	}
	var warnings []string
	for _, t := range slices.Sorted(mapKeys(fallback)) {
		names := fallback[t]
		warnings = append(warnings, fmt.Sprintf("%d tensors (%s…) have rows not a multiple of the %s block (%d): stored as %s",
			len(names), names[0], typ, typ.BlockSize(), t))
	}
	return plans, warnings, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// chunkValues bounds the values converted at a time (64 MiB of f32).
const chunkValues = 16 << 20

func writeData(ctx context.Context, gw *Writer, dir string, ckpt map[string]stTensor, plans []plan, progress io.Writer) error {
	files := map[string]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var raw []byte
	var vals []float32
	var out []byte
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.src == "" {
			b, err := Encode(nil, p.Type, p.data)
			if err != nil {
				return fmt.Errorf("tensor %s: %w", p.Name, err)
			}
			if _, err := gw.Write(b); err != nil {
				return err
			}
			continue
		}
		t := ckpt[p.src]
		f, ok := files[t.File]
		if !ok {
			var err error
			if f, err = os.Open(filepath.Join(dir, t.File)); err != nil {
				return err
			}
			files[t.File] = f
		}
		step := max(1, chunkValues/p.cols)
		if p.permute > 0 {
			step = p.rows // the permutation moves rows within a head: take the whole tensor
		}
		for r0 := int64(0); r0 < p.rows; r0 += step {
			if err := ctx.Err(); err != nil {
				return err
			}
			r1 := min(p.rows, r0+step)
			var err error
			raw, vals, err = readRows(f, t, r0, r1, raw, vals[:0])
			if err != nil {
				return fmt.Errorf("tensor %s: %w", p.src, err)
			}
			if p.permute > 0 {
				vals = permuteRows(vals, p.permute, int(p.cols))
			}
			out, err = encodeRows(out[:0], p.Type, vals, int(p.cols))
			if err != nil {
				return fmt.Errorf("tensor %s: %w", p.Name, err)
			}
			if _, err := gw.Write(out); err != nil {
				return fmt.Errorf("tensor %s: %w", p.Name, err)
			}
		}
		if progress != nil && strings.HasSuffix(p.Name, ".ffn_down.weight") {
			fmt.Fprintf(progress, "converted %s\n", strings.TrimSuffix(p.Name, ".ffn_down.weight"))
		}
	}
	return nil
}

// permuteRows applies convert_hf_to_gguf.py's LlamaModel.permute to the rows
// of a q_proj or k_proj weight: within each head, HF's rotary layout (first
// halves, then second halves of the pairs) becomes llama.cpp's interleaved
// pairs — w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).
func permuteRows(w []float32, heads, cols int) []float32 {
	rows := len(w) / cols
	hd := rows / heads
	out := make([]float32, len(w))
	for h := range heads {
		for i := range hd / 2 {
			for j := range 2 {
				dst := h*hd + 2*i + j
				src := h*hd + j*(hd/2) + i
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out
}

// encodeWorkers is the parallelism of encodeRows (a variable for tests).
var encodeWorkers = func() int { return runtime.GOMAXPROCS(0) }

// encodeRows encodes rows of cols values as t, in parallel for the slow
// quantized types (the output is the same whatever the parallelism).
func encodeRows(dst []byte, t Type, x []float32, cols int) ([]byte, error) {
	rb, err := t.RowBytes(cols)
	if err != nil {
		return dst, err
	}
	rows := len(x) / cols
	workers := encodeWorkers()
	if t != Q4_K && t != Q8_0 || workers == 1 || rows < 2 {
		return Encode(dst, t, x)
	}
	n := len(dst)
	dst = slices.Grow(dst, rows*rb)[:n+rows*rb]
	var wg sync.WaitGroup
	per := (rows + workers - 1) / workers
	for w := range workers {
		r0, r1 := w*per, min(rows, (w+1)*per)
		if r0 >= r1 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			Encode(dst[n+r0*rb:n+r0*rb], t, x[r0*cols:r1*cols])
		}()
	}
	wg.Wait()
	return dst, nil
}
