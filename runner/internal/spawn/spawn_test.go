package spawn_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/spawn"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func request(t *testing.T, model string, opts map[string]string) []byte {
	t.Helper()
	b, err := json.Marshal(protocol.Request{
		Protocol: protocol.Version, Model: model, Device: "cpu", DType: "f32", Warmup: 1, Iterations: 3, Options: opts,
		Cases: []protocol.Case{{Name: "c", PromptTokens: []int{5, 6, 7}, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true}},
	})
	require.NoError(t, err)
	return b
}

// anyFailure accepts any non-zero exit: a child killed with SIGTERM may exit
// through its own handler (1) or by the signal (-1).
const anyFailure = -1000

func TestLaunch(t *testing.T) {
	bin := testbin.Dir(t)
	model := t.TempDir()
	short := spawn.Timeouts{Start: 10 * time.Second, Stall: 2 * time.Second, Total: 30 * time.Second}
	tests := []struct {
		name      string
		fail      string
		timeouts  spawn.Timeouts
		wantErr   error
		wantMsg   string
		wantIters int
		wantExit  int
	}{
		{name: "ok", fail: "none", timeouts: short, wantIters: 4, wantExit: 0},
		{name: "crash mid-run", fail: "crash-after=2", timeouts: short, wantMsg: "engine exited", wantIters: 2, wantExit: 139},
		{name: "hang is a stall", fail: "hang-after=1", timeouts: short, wantErr: spawn.ErrStallTimeout, wantIters: 1, wantExit: -1},
		{name: "garbage on stdout", fail: "garbage-after=1", timeouts: short, wantErr: spawn.ErrBadOutput, wantIters: 1, wantExit: anyFailure},
		{name: "short output is an engine error", fail: "short", timeouts: short, wantMsg: "generated 3 tokens, want exactly 4", wantIters: 0, wantExit: 1},
		{name: "total timeout", fail: "hang-after=0", timeouts: spawn.Timeouts{Start: 10 * time.Second, Stall: time.Minute, Total: 1 * time.Second}, wantErr: spawn.ErrTotalTimeout, wantExit: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var iters int
			res := spawn.Launch(context.Background(), spawn.Options{
				Path: filepath.Join(bin, "testengine"), Args: []string{"run"}, Stdin: request(t, model, map[string]string{"fail": tt.fail}),
				Timeouts: tt.timeouts,
			}, nil, func(r spawn.Received) error {
				if r.Event.Type == protocol.EventIteration {
					iters++
				}
				return nil
			})
			switch {
			case tt.wantErr != nil:
				require.ErrorIs(t, res.Err, tt.wantErr)
			case tt.wantMsg != "":
				require.ErrorContains(t, res.Err, tt.wantMsg)
			default:
				require.NoError(t, res.Err)
			}
			require.Equal(t, tt.wantIters, iters, "iterations received before the end")
			if tt.wantExit == anyFailure {
				require.NotEqual(t, 0, res.Exit, "exit code")
			} else {
				require.Equal(t, tt.wantExit, res.Exit, "exit code")
			}
			if tt.name == "crash mid-run" {
				require.Contains(t, res.StderrTail, "simulated segfault")
			}
		})
	}
}

func TestLaunchStartTimeoutKillsTheWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "slow-engine")
	// The engine forks a grandchild and never answers.
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 300 &\necho $! > "+pidFile+"\nsleep 300\n"), 0o755))
	start := time.Now()
	res := spawn.Launch(context.Background(), spawn.Options{
		Path: script, Args: []string{"run"}, Timeouts: spawn.Timeouts{Start: 500 * time.Millisecond},
	}, nil, func(spawn.Received) error { return nil })
	require.ErrorIs(t, res.Err, spawn.ErrStartTimeout)
	require.Less(t, time.Since(start), 20*time.Second)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	// The grandchild must be gone (signal 0 probes existence).
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }, 5*time.Second, 50*time.Millisecond,
		"grandchild %d survived the launch", pid)
}

func TestLaunchInterrupt(t *testing.T) {
	bin := testbin.Dir(t)
	ctx, cancel := context.WithCancel(context.Background())
	var iters int
	res := spawn.Launch(ctx, spawn.Options{
		Path: filepath.Join(bin, "testengine"), Args: []string{"run"},
		Stdin: request(t, t.TempDir(), map[string]string{"fail": "hang-after=1"}),
	}, nil, func(r spawn.Received) error {
		if r.Event.Type == protocol.EventIteration {
			iters++
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, res.Err, spawn.ErrInterrupted)
	require.Equal(t, 1, iters)
}

func TestLaunchMissingBinary(t *testing.T) {
	res := spawn.Launch(context.Background(), spawn.Options{Path: "/nonexistent/engine", Args: []string{"run"}}, nil,
		func(spawn.Received) error { return nil })
	require.ErrorContains(t, res.Err, "start /nonexistent/engine")
	require.Equal(t, -1, res.Exit)
}

func TestInfo(t *testing.T) {
	bin := testbin.Dir(t)
	info, _, err := spawn.Info(context.Background(), filepath.Join(bin, "testengine"), nil, time.Minute)
	require.NoError(t, err)
	require.Equal(t, "testengine", info.Name)
	require.Equal(t, protocol.Version, info.Protocol)

	dir := t.TempDir()
	noisy := filepath.Join(dir, "noisy")
	require.NoError(t, os.WriteFile(noisy, []byte("#!/bin/sh\necho loading...\necho '{}'\n"), 0o755))
	_, _, err = spawn.Info(context.Background(), noisy, nil, time.Minute)
	require.ErrorContains(t, err, "stdout is not an info object")
}

// TestLaunchErrorThenHang: an engine that reports an error and then hangs
// instead of exiting is stopped at once, and the launch keeps the engine's own
// message rather than a stall timeout.
func TestLaunchErrorThenHang(t *testing.T) {
	bin := testbin.Dir(t)
	start := time.Now()
	res := spawn.Launch(context.Background(), spawn.Options{
		Path: filepath.Join(bin, "testengine"), Args: []string{"run"},
		Stdin:    request(t, t.TempDir(), map[string]string{"fail": "error-hang"}),
		Timeouts: spawn.Timeouts{Start: time.Minute, Stall: time.Minute, Total: 2 * time.Minute},
	}, nil, func(spawn.Received) error { return nil })
	require.ErrorContains(t, res.Err, "engine error (load): load /weights: testengine ran out of pretend memory")
	require.NotErrorIs(t, res.Err, spawn.ErrStallTimeout)
	require.Less(t, time.Since(start), 20*time.Second, "the hung engine is killed soon after its error event")
}

// leakedPid reads the pid a testengine's leaked child wrote, and makes sure
// the child does not outlive the test even when the runner failed to kill it.
func leakedPid(t *testing.T, pidFile string) int {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// gone reports whether pid no longer runs (a zombie waiting for init to reap
// it counts as gone).
func gone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(s[i+1:], " Z")
}

// TestLaunchLeavesNoProcess: an engine that completes its run but leaves a
// child behind — in its own session, out of the process group, or holding
// stdout open after done — keeps its results, costs no stall timeout, and the
// child is killed before Launch returns, with a warning that says so.
func TestLaunchLeavesNoProcess(t *testing.T) {
	bin := testbin.Dir(t)
	for _, kind := range []string{"setsid", "stdout"} {
		t.Run(kind, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "leaked.pid")
			var iters int
			start := time.Now()
			res := spawn.Launch(context.Background(), spawn.Options{
				Path: filepath.Join(bin, "testengine"), Args: []string{"run"},
				Stdin:    request(t, t.TempDir(), map[string]string{"leak": kind, "pid_file": pidFile}),
				Timeouts: spawn.Timeouts{Start: time.Minute, Stall: 30 * time.Second, Total: 2 * time.Minute},
			}, nil, func(r spawn.Received) error {
				if r.Event.Type == protocol.EventIteration {
					iters++
				}
				return nil
			})
			pid := leakedPid(t, pidFile)
			require.NoError(t, res.Err)
			require.Equal(t, 4, iters)
			require.Less(t, time.Since(start), 15*time.Second, "a child holding stdout must not cost a stall timeout")
			require.True(t, gone(pid), "leaked child %d outlived the launch", pid)
			require.NotEmpty(t, res.Warnings)
			require.Contains(t, strings.Join(res.Warnings, "\n"), strconv.Itoa(pid))
		})
	}
}

// TestLaunchInterruptKillsSession: Ctrl-C during a launch also kills a child the
// engine started in its own session.
func TestLaunchInterruptKillsSession(t *testing.T) {
	bin := testbin.Dir(t)
	pidFile := filepath.Join(t.TempDir(), "leaked.pid")
	ctx, cancel := context.WithCancel(context.Background())
	res := spawn.Launch(ctx, spawn.Options{
		Path: filepath.Join(bin, "testengine"), Args: []string{"run"},
		Stdin: request(t, t.TempDir(), map[string]string{"leak": "setsid", "pid_file": pidFile, "fail": "hang-after=1"}),
	}, nil, func(r spawn.Received) error {
		if r.Event.Type == protocol.EventIteration {
			cancel()
		}
		return nil
	})
	require.ErrorIs(t, res.Err, spawn.ErrInterrupted)
	pid := leakedPid(t, pidFile)
	require.True(t, gone(pid), "leaked child %d outlived the interrupted launch", pid)
}

// TestInfoTimeoutAndInterrupt: `info` obeys its timeout, and an interrupt
// while it runs says so.
func TestInfoTimeoutAndInterrupt(t *testing.T) {
	bin := testbin.Dir(t)
	env := append(os.Environ(), "TESTENGINE_INFO=hang")
	start := time.Now()
	_, _, err := spawn.Info(context.Background(), filepath.Join(bin, "testengine"), env, time.Second)
	require.ErrorIs(t, err, spawn.ErrStartTimeout)
	require.ErrorContains(t, err, "no info within 1s")
	require.Less(t, time.Since(start), 10*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	_, _, err = spawn.Info(ctx, filepath.Join(bin, "testengine"), env, time.Minute)
	require.ErrorIs(t, err, spawn.ErrInterrupted)
}
