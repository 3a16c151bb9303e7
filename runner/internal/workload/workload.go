// Package workload turns a config into what every engine receives: the model
// directory (synthesized when the config says how and it is missing) and the
// cases with their exact prompt token ids.
package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
)

// ErrNoModel means the model directory holds no model and the config does
// not say how to synthesize one.
var ErrNoModel = errors.New("no model")

// Model is a prepared model directory.
type Model struct {
	// Dir is the absolute model directory.
	Dir    string
	Config modelcfg.Config
	Info   envinfo.Model
}

// PrepareModel checks the model directory, synthesizing it first when it is
// missing and the config has a synth section, and hashes it. hashCache is the
// digest cache file (modelcfg.HashCachePath; "" hashes every byte every time).
func PrepareModel(ctx context.Context, cfg *config.Config, progress io.Writer, hashCache string) (*Model, error) {
	dir, err := filepath.Abs(cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.Model, err)
	}
	var digest *modelcfg.Digest
	if _, err := os.Stat(filepath.Join(dir, modelcfg.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		if cfg.Synth == nil {
			return nil, fmt.Errorf("model %s: %w (no %s there); create one with `runner models synth --shape tiny --out %s` or fix `model:` in the config",
				cfg.Model, ErrNoModel, modelcfg.ConfigFile, cfg.Model)
		}
		dt, err := modelcfg.ParseDType(cfg.Synth.DType)
		if err != nil {
			return nil, fmt.Errorf("synth.dtype: %w", err)
		}
		if progress != nil {
			fmt.Fprintf(progress, "synthesizing model %s (shape %s, %s, seed %d)\n", cfg.Model, cfg.Synth.Shape, cfg.Synth.DType, cfg.Synth.Seed)
		}
		res, err := synth.Write(ctx, synth.Options{Shape: cfg.Synth.Shape, Out: dir, DType: dt, Seed: cfg.Synth.Seed, Progress: progress})
		if err != nil {
			return nil, fmt.Errorf("synthesize model %s: %w", cfg.Model, err)
		}
		digest = &res.Hash
		modelcfg.RememberHash(dir, hashCache, res.Hash)
	}
	mc, err := modelcfg.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", cfg.Model, err)
	}
	if digest == nil {
		d, _, err := modelcfg.CachedHash(ctx, dir, hashCache)
		if err != nil {
			return nil, fmt.Errorf("hash model %s: %w", cfg.Model, err)
		}
		digest = &d
	}
	dt, err := modelcfg.ParseDType(cfg.DType)
	if err != nil {
		return nil, err
	}
	m := &Model{Dir: dir, Config: mc}
	m.Info = envinfo.Model{
		Dir: cfg.Model, Hash: digest.Sum, Params: mc.Params(), WeightBytesPerToken: mc.WeightBytesPerToken(dt.Size()), DType: cfg.DType,
	}
	if cfg.Synth != nil {
		m.Info.Shape = cfg.Synth.Shape
	}
	return m, nil
}

// Cases resolves the config's cases into protocol cases for model mc: explicit
// prompt ids are checked against the vocabulary, prompt_len ones are drawn
// deterministically from the seed and the case name, and each case's prompt +
// new tokens must fit the model's max_position_embeddings — every engine
// refuses a longer request, so it is the config's error, found before a launch
// (2026-12-02 on the H200: a p2048-n16 workload on TinyLlama's 2048 positions
// failed two launches of every engine, 5 device-minutes, instead of the dry run).
func Cases(cfg *config.Config, mc modelcfg.Config) ([]protocol.Case, error) {
	var out []protocol.Case
	vocab := mc.VocabSize
	for i, c := range cfg.Cases {
		ids := c.PromptTokens
		if len(ids) == 0 {
			ids = Prompt(cfg.Seed, c.Name, c.PromptLen, vocab)
		}
		for j, t := range ids {
			if t >= vocab {
				return nil, fmt.Errorf("cases[%d] (%s).prompt_tokens[%d]: id %d is outside the model's vocabulary (%d)", i, c.Name, j, t, vocab)
			}
		}
		if n := len(ids) + c.MaxNewTokens; mc.MaxPositionEmbeddings > 0 && n > mc.MaxPositionEmbeddings {
			return nil, fmt.Errorf("cases[%d] (%s): %d prompt + %d new tokens = %d positions, over the model's max_position_embeddings %d (no engine serves it: shorten the prompt to %d)",
				i, c.Name, len(ids), c.MaxNewTokens, n, mc.MaxPositionEmbeddings, max(mc.MaxPositionEmbeddings-c.MaxNewTokens, 0))
		}
		out = append(out, protocol.Case{
			Name: c.Name, PromptTokens: ids, MaxNewTokens: c.MaxNewTokens, BatchSize: c.BatchSize, Greedy: true, IgnoreEOS: true,
		})
	}
	return out, nil
}

// Prompt returns n token ids in [3, vocab) drawn with splitmix64 from the
// seed and the case name, skipping the special ids 0-2 (unk, bos, eos).
func Prompt(seed uint64, name string, n, vocab int) []int {
	state := seed ^ 0x9e3779b97f4a7c15
	for _, b := range []byte(name) {
		state = mix(state ^ uint64(b))
	}
	span := uint64(max(vocab-3, 1))
	out := make([]int, n)
	for i := range out {
		state += 0x9e3779b97f4a7c15
		out[i] = 3 + int(mix(state)%span)
	}
	return out
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
