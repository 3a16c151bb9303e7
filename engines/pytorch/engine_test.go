package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRefineStep: what a preparation's record says refine=in-graph did, from the worker's settings (a cpu cannot run
// it: the settings are as a cuda worker writes them) — not run where the process tuned nothing, run with no change,
// run with changes (sorted by kernel), and a malformed refined_kernels is an error, not a silent "no change".
func TestRefineStep(t *testing.T) {
	s, err := refineStep(map[string]string{"refined_kernels": "{}"})
	require.NoError(t, err)
	assert.Contains(t, s, "not run")

	s, err = refineStep(map[string]string{"refine_ran": "b1-s384", "refined_kernels": "{}"})
	require.NoError(t, err)
	assert.Equal(t, "in-graph (b1-s384): no GEMV kernel re-chosen (no candidate made the step 0.5% faster)", s)

	s, err = refineStep(map[string]string{"refine_ran": "b1-s384", "refined_kernels": `{"b1-s384/triton_red_fused_mm_9": "XBLOCK=1 -> XBLOCK=4: step 5.0 -> 4.8 us", "b1-s384/triton_red_fused_mm_1": "XBLOCK=2 -> XBLOCK=1: step 5.1 -> 5.0 us"}`})
	require.NoError(t, err)
	assert.Equal(t, "in-graph (b1-s384): 2 GEMV kernel(s) re-chosen by the decode step's time: "+
		"b1-s384/triton_red_fused_mm_1 XBLOCK=2 -> XBLOCK=1: step 5.1 -> 5.0 us; b1-s384/triton_red_fused_mm_9 XBLOCK=1 -> XBLOCK=4: step 5.0 -> 4.8 us", s)

	_, err = refineStep(map[string]string{"refine_ran": "b1-s384", "refined_kernels": "{truncated"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refined_kernels")
}
