// Package synth writes deterministic random-weight Llama checkpoints at
// standard shapes as Hugging Face model directories: config.json, safetensors
// (sharded with an index past a size limit), a WordLevel tokenizer.json and
// the small JSON files transformers looks for. Benchmark speed does not
// depend on weight values, and real 16 GB weights cannot travel to the GPU
// host, so the GPU host writes its own from a seed.
package synth

import (
	"maps"
	"slices"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// Shapes are the model shapes Write knows, by name. Every shape uses the
// synthetic tokenizer's special ids (<unk>=0, <s>=1, </s>=2).
var Shapes = map[string]modelcfg.Config{
	// tiny is the CI shape: the reference engine runs it on a CPU in
	// milliseconds.
	"tiny": llama(512, 64, 176, 2, 4, 2, 1024, 1e4, nil, false),
	// tinyllama-1.1b is TinyLlama-1.1B-Chat-v1.0.
	"tinyllama-1.1b": llama(32000, 2048, 5632, 22, 32, 4, 2048, 1e4, nil, false),
	// llama-3.2-1b is Llama-3.2-1B (tied embeddings, llama3 RoPE scaling).
	"llama-3.2-1b": llama(128256, 2048, 8192, 16, 32, 8, 131072, 5e5, &modelcfg.RopeScaling{
		Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192,
	}, true),
	// llama-3-8b is Meta-Llama-3-8B.
	"llama-3-8b": llama(128256, 4096, 14336, 32, 32, 8, 8192, 5e5, nil, false),
}

// ShapeNames lists the keys of Shapes, sorted.
func ShapeNames() []string {
	return slices.Sorted(maps.Keys(Shapes))
}

func llama(vocab, hidden, inter, layers, heads, kvHeads, maxPos int, theta float64, rs *modelcfg.RopeScaling, tied bool) modelcfg.Config {
	return modelcfg.Config{
		ModelType:             "llama",
		VocabSize:             vocab,
		HiddenSize:            hidden,
		IntermediateSize:      inter,
		NumHiddenLayers:       layers,
		NumAttentionHeads:     heads,
		NumKeyValueHeads:      kvHeads,
		HeadDim:               hidden / heads,
		MaxPositionEmbeddings: maxPos,
		RopeTheta:             theta,
		RopeScaling:           rs,
		RMSNormEps:            1e-5,
		TieWordEmbeddings:     tied,
		BOSTokenID:            bosID,
		EOSTokenIDs:           []int{eosID},
	}
}
