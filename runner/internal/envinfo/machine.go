package envinfo

import (
	"encoding/json"
	"fmt"
	"strings"
)

// gpuID is what Machine reads of the telemetry package's device record.
type gpuID struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

func (e Env) gpu() gpuID {
	var g gpuID
	if len(e.GPU) > 0 {
		_ = json.Unmarshal(e.GPU, &g) // a record that does not parse names no card
	}
	return g
}

// Machine names the machine a run's launches ran on: the GPU's name and UUID where NVML recorded one, else the
// host's name, CPU model and CPU count.
func (e Env) Machine() string {
	if g := e.gpu(); g.UUID != "" {
		return strings.TrimSpace(g.Name + " " + g.UUID)
	}
	return fmt.Sprintf("host %s (%s, %d CPUs)", e.Host, e.CPU, e.CPUs)
}

// SameMachine reports whether two environment records are of one machine, as far as they tell: by GPU UUID where
// both recorded one (a cloud host's name says little: every H200 host of 2026-12-02 was "vm"), else by host name, CPU
// model and CPU count. A run resumed elsewhere would pool launches of two machines under one environment record.
func SameMachine(a, b Env) bool {
	ga, gb := a.gpu(), b.gpu()
	if ga.UUID != "" && gb.UUID != "" {
		return ga.UUID == gb.UUID
	}
	return a.Host == b.Host && a.CPU == b.CPU && a.CPUs == b.CPUs
}
