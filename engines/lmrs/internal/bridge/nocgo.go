//go:build !cgo

package bridge

// Versions fails: the binary was built without cgo.
func Versions() (map[string]string, error) { return nil, ErrNoCgo }

// Model is a loaded model; without cgo there is none.
type Model struct{}

// Load fails: the binary was built without cgo.
func Load(model, quant string, groupSize, threads int) (*Model, Loaded, error) {
	return nil, Loaded{}, ErrNoCgo
}

// Generate fails: the binary was built without cgo.
func (m *Model) Generate(prompt []uint32, nNew, batch int, ids []uint32, ns []int64) error {
	return ErrNoCgo
}

// Cancel does nothing.
func (m *Model) Cancel() {}

// Close does nothing.
func (m *Model) Close() error { return nil }
