//go:build !cgo

package bridge

// CUDA says whether this build has llama.cpp's CUDA backend.
const CUDA = false

// Versions fails: the binary was built without cgo.
func Versions() (map[string]string, error) { return nil, ErrNoCgo }

// Model is a loaded model; without cgo there is none.
type Model struct{}

// Load fails: the binary was built without cgo.
func Load(p Params) (*Model, Loaded, error) { return nil, Loaded{}, ErrNoCgo }

// Generate fails: the binary was built without cgo.
func (m *Model) Generate(prompt []int32, nNew, batch int, ids []int32, ns []int64) error {
	return ErrNoCgo
}

// Tokenize returns nothing: the binary was built without cgo.
func (m *Model) Tokenize(text string, addSpecial bool) []int32 { return nil }

// Detokenize returns nothing: the binary was built without cgo.
func (m *Model) Detokenize(ids []int) string { return "" }

// Cancel does nothing.
func (m *Model) Cancel() {}

// Close does nothing.
func (m *Model) Close() error { return nil }
