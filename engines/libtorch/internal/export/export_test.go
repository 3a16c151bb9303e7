package export

import (
	"bytes"
	"os"
	"testing"
)

// TestModelCodeIsPytorchs: py/llama.py is a verbatim copy of the pytorch engine's compiled-mode model (go:embed
// cannot reach outside this module), so libtorch and pytorch compiled run the same model code. A change to one
// must be copied to the other; this test fails until it is.
func TestModelCodeIsPytorchs(t *testing.T) {
	ours, err := pyFiles.ReadFile("py/llama.py")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := os.ReadFile("../../../pytorch/internal/worker/py/llama.py")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Fatal("engines/libtorch/internal/export/py/llama.py differs from engines/pytorch/internal/worker/py/llama.py: copy the change across")
	}
}
