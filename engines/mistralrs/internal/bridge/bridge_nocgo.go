//go:build !cgo

package bridge

// Available reports whether the bridge is linked in (false without cgo).
const Available = false

var errNoCgo = &Error{Code: CodeUnsupported, Msg: "mistralrs engine built without cgo: the mistral.rs bridge is not linked in; rebuild with CGO_ENABLED=1 via scripts/build-mistralrs.sh"}

// Model is a loaded mistral.rs model (never created without cgo).
type Model struct{}

// Load always fails without cgo.
func Load(dir, device, dtype string, o Options) (*Model, LoadStats, error) {
	return nil, LoadStats{}, errNoCgo
}

// Generate always fails without cgo.
func (m *Model) Generate(prompt []uint32, n int) ([]uint32, []int64, error) {
	return nil, nil, errNoCgo
}

// GenerateNative always fails without cgo.
func (m *Model) GenerateNative(prompt []uint32, n int) ([]uint32, Usage, error) {
	return nil, Usage{}, errNoCgo
}

// Settings is empty without cgo.
func (m *Model) Settings() map[string]string { return nil }

// Close does nothing without cgo.
func (m *Model) Close() error { return nil }

// Versions is empty without cgo.
func Versions() map[string]string {
	return map[string]string{"bridge": "not linked (built without cgo)"}
}

// HasCUDA is false without cgo.
func HasCUDA() bool { return false }
