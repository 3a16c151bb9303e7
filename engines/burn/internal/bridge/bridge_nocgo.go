//go:build !cgo

// Package bridge is the only cgo in the burn engine. This twin is compiled when
// cgo is off: the engine still builds and answers `info`, but every model call
// fails with a clear error.
package bridge

import "errors"

// Available reports whether this binary was built with the bridge linked in.
const Available = false

var errNoCgo = &Error{Code: codeNoBridge, Msg: "burn engine built without cgo: rebuild with CGO_ENABLED=1 after scripts/build-burn.sh builds the Rust bridge"}

// Info returns the library's build description.
func Info() (BuildInfo, error) { return BuildInfo{}, errNoCgo }

// Store always fails without cgo.
func Store() (StoreSummary, error) { return StoreSummary{}, errNoCgo }

// Model is unavailable without cgo.
type Model struct{}

// Load always fails without cgo.
func Load(dir, device, dtype string, threads int, attention string) (*Model, Loaded, error) {
	return nil, Loaded{}, errNoCgo
}

// Describe always fails without cgo.
func (m *Model) Describe() (Description, error) { return Description{}, errors.New("burn: no cgo") }

// Generate always fails without cgo.
func (m *Model) Generate(prompt []int, n int) ([]int, []int64, int64, error) {
	return nil, nil, 0, errNoCgo
}

// Close does nothing.
func (m *Model) Close() error { return nil }
