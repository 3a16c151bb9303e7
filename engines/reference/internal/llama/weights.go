package llama

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/engines/reference/internal/safetensors"
)

// Weights holds every parameter as row-major float32; a matrix of HF shape
// [out, in] is stored with its out rows contiguous, as in the checkpoint.
type Weights struct {
	// Embed is model.embed_tokens.weight, [vocab, hidden].
	Embed []float32
	// Layers holds one entry per decoder layer.
	Layers []Layer
	// Norm is model.norm.weight, [hidden].
	Norm []float32
	// LMHead is lm_head.weight, [vocab, hidden]; it aliases Embed when the
	// embeddings are tied.
	LMHead []float32
}

// Layer is one decoder layer's parameters.
type Layer struct {
	AttnNorm, MLPNorm []float32 // input_layernorm, post_attention_layernorm: [hidden]
	Q, K, V, O        []float32 // [heads*head_dim, hidden], [kv*head_dim, hidden] ×2, [hidden, heads*head_dim]
	Gate, Up, Down    []float32 // [inter, hidden] ×2, [hidden, inter]
}

// Bytes returns the memory the weights occupy, counting a tied lm_head once.
func (w *Weights) Bytes() int64 {
	n := len(w.Embed) + len(w.Norm)
	if len(w.LMHead) > 0 && &w.LMHead[0] != &w.Embed[0] {
		n += len(w.LMHead)
	}
	for _, l := range w.Layers {
		n += len(l.AttnNorm) + len(l.MLPNorm) + len(l.Q) + len(l.K) + len(l.V) + len(l.O) + len(l.Gate) + len(l.Up) + len(l.Down)
	}
	return int64(n) * 4
}

// LoadWeights reads every tensor cfg needs from ckpt, checks its shape and
// upcasts it to float32. It returns the sorted set of dtypes found on disk.
// Tensors the model does not use (e.g. rotary_emb.inv_freq) are ignored.
func LoadWeights(ckpt *safetensors.Checkpoint, cfg Config) (*Weights, []string, error) {
	h, q, kv, in := cfg.HiddenSize, cfg.NumAttentionHeads*cfg.HeadDim, cfg.NumKeyValueHeads*cfg.HeadDim, cfg.IntermediateSize
	dtypes := map[string]bool{}
	var firstErr error
	get := func(name string, shape ...int) []float32 {
		if firstErr != nil {
			return nil
		}
		if t, ok := ckpt.Tensor(name); ok {
			dtypes[t.DType] = true
		}
		v, err := ckpt.Float32(name, shape...)
		if err != nil {
			firstErr = fmt.Errorf("load weights: %w", err)
		}
		return v
	}
	w := &Weights{Embed: get("model.embed_tokens.weight", cfg.VocabSize, h)}
	for i := range cfg.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", i)
		w.Layers = append(w.Layers, Layer{
			AttnNorm: get(p+"input_layernorm.weight", h),
			Q:        get(p+"self_attn.q_proj.weight", q, h),
			K:        get(p+"self_attn.k_proj.weight", kv, h),
			V:        get(p+"self_attn.v_proj.weight", kv, h),
			O:        get(p+"self_attn.o_proj.weight", h, q),
			MLPNorm:  get(p+"post_attention_layernorm.weight", h),
			Gate:     get(p+"mlp.gate_proj.weight", in, h),
			Up:       get(p+"mlp.up_proj.weight", in, h),
			Down:     get(p+"mlp.down_proj.weight", h, in),
		})
	}
	w.Norm = get("model.norm.weight", h)
	if cfg.TieWordEmbeddings {
		w.LMHead = w.Embed
	} else {
		w.LMHead = get("lm_head.weight", cfg.VocabSize, h)
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	if extra := unexpectedLayers(ckpt.Names(), cfg.NumHiddenLayers); len(extra) > 0 {
		return nil, nil, fmt.Errorf("load weights: checkpoint has tensors for layers beyond num_hidden_layers=%d, e.g. %s", cfg.NumHiddenLayers, extra[0])
	}
	out := make([]string, 0, len(dtypes))
	for d := range dtypes {
		out = append(out, d)
	}
	sort.Strings(out)
	return w, out, nil
}

// unexpectedLayers lists tensors of layers the config does not declare: a
// sign of a config that does not belong to the checkpoint.
func unexpectedLayers(names []string, layers int) []string {
	var out []string
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "model.layers.")
		if !ok {
			continue
		}
		var i int
		if _, err := fmt.Sscanf(rest, "%d.", &i); err == nil && i >= layers {
			out = append(out, n)
		}
	}
	return slices.Clip(out)
}
