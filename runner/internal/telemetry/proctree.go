package telemetry

import (
	"os"
	"strconv"
	"strings"
)

// ProcTree returns a function listing root and all its descendants, read from
// /proc at each call, for SamplerOptions.Pids: the engine binary may run its
// model in a child (the pytorch engine runs python under a Go binary), and
// NVML reports memory per process. Where /proc is unreadable it lists root
// only.
func ProcTree(root int) func() []uint32 {
	return func() []uint32 { return procTree("/proc", uint32(root)) }
}

func procTree(procDir string, root uint32) []uint32 {
	pids, _ := scanTree(procDir, root)
	return pids
}

// scanTree reads every /proc/<pid>/stat once and returns root and its
// descendants, with the CPU ticks (cpuTicks) of each stat line read.
func scanTree(procDir string, root uint32) ([]uint32, map[uint32]uint64) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return []uint32{root}, nil
	}
	children := map[uint32][]uint32{}
	ticks := map[uint32]uint64{}
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(procDir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile: its time moves to the parent's reaped-children fields
		}
		stat := string(b)
		if ppid, ok := parentPid(stat); ok {
			children[ppid] = append(children[ppid], uint32(pid))
		}
		ticks[uint32(pid)] = cpuTicks(stat)
	}
	out := []uint32{root}
	for k := 0; k < len(out); k++ {
		out = append(out, children[out[k]]...)
	}
	return out, ticks
}

// parentPid reads the ppid from a /proc/<pid>/stat line: "pid (comm) state
// ppid ...", where comm may hold spaces and parentheses.
func parentPid(stat string) (uint32, bool) {
	f := statFields(stat)
	if len(f) < 2 {
		return 0, false
	}
	p, err := strconv.ParseUint(f[1], 10, 32)
	return uint32(p), err == nil
}

// UserHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture the runner targets).
const UserHZ = 100

// TreeCPUSeconds returns the CPU time (user + system, including reaped
// children) that root and its live descendants have used so far, read from
// /proc; 0 where /proc is unreadable. The difference of two readings is the
// host CPU an engine spent between them.
func TreeCPUSeconds(root int) float64 {
	return float64(treeCPUTicks("/proc", uint32(root))) / UserHZ
}

func treeCPUTicks(procDir string, root uint32) uint64 {
	pids, ticks := scanTree(procDir, root)
	var sum uint64
	for _, pid := range pids {
		sum += ticks[pid]
	}
	return sum
}

// cpuTicks sums utime, stime, cutime and cstime of a /proc/<pid>/stat line.
func cpuTicks(stat string) uint64 {
	f := statFields(stat)
	if len(f) < 15 {
		return 0
	}
	var sum uint64
	for _, k := range []int{11, 12, 13, 14} { // utime stime cutime cstime (fields 14-17 of stat)
		v, err := strconv.ParseUint(f[k], 10, 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// statFields splits a /proc/<pid>/stat line after "pid (comm)", where comm may
// hold spaces and parentheses: field 0 is the state, 1 the ppid.
func statFields(stat string) []string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(stat[i+1:])
}
