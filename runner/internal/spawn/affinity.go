package spawn

import (
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// startPinned starts cmd with its CPU affinity set to cpus. A child inherits
// the affinity mask of the thread that forks it, so the mask is set on a
// thread of our own, locked to this goroutine, which then starts the child
// and dies with the goroutine (it never returns to the scheduler with the
// narrowed mask). Setting the child's mask after Start instead would race
// with the threads an engine starts at once (the Go runtime, OpenMP, CUDA):
// sched_setaffinity on a pid only moves that one thread. Going through
// taskset would add a binary to find and a process between the runner and
// the engine's process group.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= len(set)*64 {
			return fmt.Errorf("pin to cpu %d: out of range", c)
		}
		set.Set(c)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread exits with the goroutine
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- fmt.Errorf("pin to cpus %v: %w", cpus, err)
			return
		}
		done <- cmd.Start()
	}()
	return <-done
}

// Affinity returns the CPUs the calling process may run on, in order.
func Affinity() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("read cpu affinity: %w", err)
	}
	var out []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out, nil
}
