package metrics

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

func TestFromIteration(t *testing.T) {
	tests := []struct {
		name string
		it   protocol.Iteration
		want Iteration
	}{
		{
			// 4 tokens at 10, 12, 15, 16 ms; prompt 100, batch 2.
			name: "batch of two",
			it: protocol.Iteration{PromptTokens: 100, TokenNs: []int64{10e6, 12e6, 15e6, 16e6}, EndNs: 17e6,
				OutputTokens: [][]int{{1, 2, 3, 4}, {1, 2, 3, 4}}},
			want: Iteration{TTFTNs: 10e6, E2ENs: 16e6, TPOTNs: 2e6, DecodeTPS: 1000, PrefillTPS: 20000,
				ITLNs: []int64{2e6, 3e6, 1e6}, Outputs: 4, Batch: 2, Prompt: 100},
		},
		{
			name: "single token has no TPOT",
			it:   protocol.Iteration{PromptTokens: 8, TokenNs: []int64{4e6}, EndNs: 5e6, OutputTokens: [][]int{{7}}},
			want: Iteration{TTFTNs: 4e6, E2ENs: 4e6, PrefillTPS: 2000, Outputs: 1, Batch: 1, Prompt: 8},
		},
		{
			name: "no tokens",
			it:   protocol.Iteration{PromptTokens: 8, OutputTokens: [][]int{{}}},
			want: Iteration{Batch: 1, Prompt: 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromIteration(&tt.it)
			require.InDelta(t, tt.want.DecodeTPS, got.DecodeTPS, 1e-9)
			require.InDelta(t, tt.want.PrefillTPS, got.PrefillTPS, 1e-9)
			got.DecodeTPS, got.PrefillTPS = tt.want.DecodeTPS, tt.want.PrefillTPS
			require.Equal(t, tt.want, got)
		})
	}
}
