package envinfo_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
)

// TestSameMachine: cards are told apart by UUID even on hosts of one name and CPU; without a card on both sides the
// host name, CPU model and count decide.
func TestSameMachine(t *testing.T) {
	host := envinfo.Env{Host: "vm", CPU: "Intel(R) Xeon(R) Processor", CPUs: 16}
	card := func(uuid string) envinfo.Env {
		e := host
		e.GPU = json.RawMessage(`{"name":"NVIDIA H200","uuid":"` + uuid + `","driver":"580.159.04"}`)
		return e
	}
	a, b := card("GPU-ad75f679-4ce6-a67d-c7e3-28fa4ee2621a"), card("GPU-a9184b18-c9e5-b894-e57e-672998d30695")
	assert.True(t, envinfo.SameMachine(a, a))
	assert.False(t, envinfo.SameMachine(a, b), "two cards on hosts of one name")
	assert.Equal(t, "NVIDIA H200 GPU-a9184b18-c9e5-b894-e57e-672998d30695", b.Machine())
	assert.True(t, envinfo.SameMachine(a, host), "one side without telemetry: the host decides")
	other := host
	other.CPUs = 2
	assert.False(t, envinfo.SameMachine(host, other))
	assert.Equal(t, "host vm (Intel(R) Xeon(R) Processor, 2 CPUs)", other.Machine())
}
