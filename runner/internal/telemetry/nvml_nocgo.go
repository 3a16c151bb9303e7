//go:build !cgo

package telemetry

// OpenNVML reports that telemetry is off: go-nvml needs cgo, and this runner
// was built with CGO_ENABLED=0.
func OpenNVML(path string) (*Telemetry, error) {
	return nil, &UnavailableError{Reason: "runner built without cgo (CGO_ENABLED=0); NVML needs a cgo build"}
}
