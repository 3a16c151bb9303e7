package telemetry

import (
	"fmt"
	"math/bits"
	"strings"
)

// Reasons is NVML's clock-event (formerly throttle) reasons bitmask: why the
// clocks are below their maximum. Bit values are NVML's
// nvmlClocksEventReason* constants.
type Reasons uint64

// Clock-event reasons, as in nvml.h.
const (
	ReasonGPUIdle           Reasons = 0x1
	ReasonAppClocksSetting  Reasons = 0x2
	ReasonSWPowerCap        Reasons = 0x4
	ReasonHWSlowdown        Reasons = 0x8
	ReasonSyncBoost         Reasons = 0x10
	ReasonSWThermalSlowdown Reasons = 0x20
	ReasonHWThermalSlowdown Reasons = 0x40
	ReasonHWPowerBrake      Reasons = 0x80
	ReasonDisplayClock      Reasons = 0x100
	ReasonBoardLimit        Reasons = 0x200
	ReasonReliability       Reasons = 0x400
)

// ThrottleMask holds the reasons that mean thermal or power throttling: the
// clocks were held down under load, which biases a benchmark. Idle, application
// clocks, sync boost and display clocks are not throttling.
const ThrottleMask = ReasonSWPowerCap | ReasonHWSlowdown | ReasonSWThermalSlowdown |
	ReasonHWThermalSlowdown | ReasonHWPowerBrake

var reasonNames = []struct {
	r    Reasons
	name string
}{
	{ReasonGPUIdle, "idle"},
	{ReasonAppClocksSetting, "applications clocks setting"},
	{ReasonSWPowerCap, "sw power cap"},
	{ReasonHWSlowdown, "hw slowdown"},
	{ReasonSyncBoost, "sync boost"},
	{ReasonSWThermalSlowdown, "sw thermal slowdown"},
	{ReasonHWThermalSlowdown, "hw thermal slowdown"},
	{ReasonHWPowerBrake, "hw power brake slowdown"},
	{ReasonDisplayClock, "display clock setting"},
	{ReasonBoardLimit, "board limit"},
	{ReasonReliability, "reliability"},
}

// Names decodes the bitmask into reason names, lowest bit first; unknown bits
// read "0x..".
func (r Reasons) Names() []string {
	names := []string{}
	rest := r
	for _, n := range reasonNames {
		if r&n.r != 0 {
			names = append(names, n.name)
			rest &^= n.r
		}
	}
	for rest != 0 {
		b := Reasons(1) << bits.TrailingZeros64(uint64(rest))
		names = append(names, fmt.Sprintf("%#x", uint64(b)))
		rest &^= b
	}
	return names
}

// Throttled reports whether any thermal or power throttling reason is set.
func (r Reasons) Throttled() bool { return r&ThrottleMask != 0 }

func (r Reasons) String() string {
	if r == 0 {
		return "none"
	}
	return strings.Join(r.Names(), ", ")
}
