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
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return []uint32{root}
	}
	children := map[uint32][]uint32{}
	for _, e := range ents {
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(procDir + "/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if ppid, ok := parentPid(string(b)); ok {
			children[ppid] = append(children[ppid], uint32(pid))
		}
	}
	out := []uint32{root}
	for k := 0; k < len(out); k++ {
		out = append(out, children[out[k]]...)
	}
	return out
}

// parentPid reads the ppid from a /proc/<pid>/stat line: "pid (comm) state
// ppid ...", where comm may hold spaces and parentheses.
func parentPid(stat string) (uint32, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	p, err := strconv.ParseUint(f[1], 10, 32)
	return uint32(p), err == nil
}
