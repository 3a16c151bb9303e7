//go:build !cgo

package bridge

// Open fails: the binary was built without cgo.
func Open(p Paths) error { return ErrNoCgo }

// Info fails: the binary was built without cgo.
func Info() (string, error) { return "", ErrNoCgo }

// Model is a loaded model; without cgo there is none.
type Model struct{}

// Load fails: the binary was built without cgo.
func Load(pkg, weights, weightsIndex, device string, batch, maxSeq int, cudaGraphs, blockingWait bool, threads int) (*Model, string, error) {
	return nil, "", ErrNoCgo
}

// Generate fails: the binary was built without cgo.
func (m *Model) Generate(prompt []int64, nNew int, ids, hostNs, deviceNs []int64) (int64, error) {
	return 0, ErrNoCgo
}

// Close does nothing.
func (m *Model) Close() error { return nil }
