package workload

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

func TestPrompt(t *testing.T) {
	a := Prompt(1, "p128-n256", 128, 32000)
	require.Equal(t, a, Prompt(1, "p128-n256", 128, 32000), "same seed and name give the same ids")
	require.NotEqual(t, a, Prompt(2, "p128-n256", 128, 32000), "another seed gives other ids")
	require.NotEqual(t, a, Prompt(1, "other", 128, 32000), "another case name gives other ids")
	distinct := map[int]bool{}
	for _, id := range a {
		require.GreaterOrEqual(t, id, 3, "special ids 0-2 are skipped")
		require.Less(t, id, 32000)
		distinct[id] = true
	}
	require.Greater(t, len(distinct), 100, "ids are spread over the vocabulary")
	// Pinned: prompts are part of every recorded result; a change here
	// changes every workload and must be deliberate.
	require.Equal(t, []int{10794, 6206, 17485, 3842, 10663, 1056}, Prompt(1, "p128-n256", 6, 32000))
	require.Equal(t, a[:6], Prompt(1, "p128-n256", 6, 32000), "a shorter prompt is a prefix of a longer one")
}

func TestCases(t *testing.T) {
	cfg := &config.Config{Seed: 1, Cases: []config.Case{
		{Name: "gen", PromptLen: 5, MaxNewTokens: 3, BatchSize: 1},
		{Name: "fixed", PromptTokens: []int{7, 8}, MaxNewTokens: 2, BatchSize: 2},
	}}
	mc := modelcfg.Config{VocabSize: 512, MaxPositionEmbeddings: 8}
	cs, err := Cases(cfg, mc)
	require.NoError(t, err)
	require.Len(t, cs[0].PromptTokens, 5)
	require.Equal(t, []int{7, 8}, cs[1].PromptTokens)
	require.True(t, cs[0].Greedy && cs[0].IgnoreEOS, "the runner always asks for greedy, fixed-length output")

	cfg.Cases[1].PromptTokens = []int{7, 600}
	_, err = Cases(cfg, mc)
	require.ErrorContains(t, err, "id 600 is outside the model's vocabulary (512)")

	// Prompt + new tokens must fit the model's positions: 5 + 3 = 8 does, 5 + 4 does not.
	cfg.Cases[1].PromptTokens = []int{7, 8}
	cfg.Cases[0].MaxNewTokens = 4
	_, err = Cases(cfg, mc)
	require.ErrorContains(t, err, "cases[0] (gen): 5 prompt + 4 new tokens = 9 positions, over the model's max_position_embeddings 8 (no engine serves it: shorten the prompt to 4)")
}
