package bridge

import "strings"

// Return codes of the C ABI (engines/burn/bridge/src/lib.rs).
const (
	codeOK          = 0
	codeBadRequest  = 1
	codeLoad        = 2
	codeRuntime     = 3
	codeOOM         = 4
	codeUnsupported = 5
	codePanic       = 6
	codeBuffer      = 7
	codeNoBridge    = 100
)

// Error is a failure reported by the bridge. Its class tells the caller which
// protocol error code applies.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// BadRequest reports whether the caller's input was at fault.
func (e *Error) BadRequest() bool { return e.Code == codeBadRequest }

// Unsupported reports whether the request asks for something this build cannot do.
func (e *Error) Unsupported() bool { return e.Code == codeUnsupported || e.Code == codeNoBridge }

// OOM reports whether the device ran out of memory.
func (e *Error) OOM() bool { return e.Code == codeOOM }

// BuildInfo describes the linked library (versions and compiled-in backends).
type BuildInfo struct {
	Burn     string   `json:"burn"`
	CubeCL   string   `json:"cubecl"`
	Rustc    string   `json:"rustc"`
	Backends []string `json:"backends"`
	CUDA     bool     `json:"cuda"`
	Fusion   bool     `json:"fusion"`
	Autotune bool     `json:"autotune"`
}

// StoreSummary is what cubecl's persistent store holds: one entry count per namespace of the active environment.
type StoreSummary struct {
	Environment string `json:"environment"`
	Namespaces  []struct {
		Namespace string `json:"namespace"`
		Entries   int64  `json:"entries"`
		Bytes     int64  `json:"bytes"`
	} `json:"namespaces"`
}

// Autotune is the number of autotune results per namespace (autotune/<cubecl version>/<device>/<operation>).
func (s StoreSummary) Autotune() map[string]int64 {
	m := map[string]int64{}
	for _, n := range s.Namespaces {
		if strings.HasPrefix(n.Namespace, "autotune/") {
			m[n.Namespace] += n.Entries
		}
	}
	return m
}

// Loaded is the cold-start breakdown in ns plus the parameter count.
type Loaded struct {
	ContextInitNs     int64
	WeightsToHostNs   int64
	WeightsToDeviceNs int64
	CompileNs         int64
	Params            int64
}

// Description is what a loaded model reports about itself.
type Description struct {
	DeviceName string            `json:"device_name"`
	DType      string            `json:"dtype"`
	Settings   map[string]string `json:"settings"`
}
