package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// TestWaitingFor: a timeout names what the engine owed next — loading, a
// warm-up iteration (with the hint for JIT/autotune engines), a timed one, or done.
func TestWaitingFor(t *testing.T) {
	req := protocol.Request{Warmup: 2, Iterations: 3, Cases: []protocol.Case{{Name: "a"}, {Name: "b"}}}
	assert.Equal(t, "(before the engine reported its model loaded)", waitingFor(false, 0, req))
	w := waitingFor(true, 0, req)
	assert.Contains(t, w, "waiting for warm-up iteration 1/2 of case a, 0 of 10 iterations done")
	assert.Contains(t, w, "timeouts.stall")
	assert.Equal(t, "(waiting for timed iteration 2/3 of case a, 3 of 10 iterations done)", waitingFor(true, 3, req))
	assert.Contains(t, waitingFor(true, 6, req), "warm-up iteration 2/2 of case b, 6 of 10")
	assert.Equal(t, "(waiting for timed iteration 3/3 of case b, 9 of 10 iterations done)", waitingFor(true, 9, req))
	assert.Equal(t, "(all 10 iterations received, waiting for done)", waitingFor(true, 10, req))
}
