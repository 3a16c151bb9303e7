package telemetry

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParentPid(t *testing.T) {
	tests := []struct {
		name   string
		stat   string
		want   uint32
		wantOK bool
	}{
		{"plain", "1234 (python3) S 1200 1234 1200 0 -1", 1200, true},
		{"comm with spaces and parens", "77 (a) b (c)) R 9 77 9 0", 9, true},
		{"truncated", "77 (x) R", 0, false},
		{"garbage", "nonsense", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parentPid(tt.stat)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got, "parentPid(%q)", tt.stat)
		})
	}
}

func TestProcTreeFake(t *testing.T) {
	dir := t.TempDir()
	// 10 → 11 → 12, 10 → 13; 20 is unrelated; "self" is not a pid.
	for pid, stat := range map[string]string{
		"10": "10 (engine) S 1 10", "11": "11 (python3) S 10 10", "12": "12 (worker) S 11 10",
		"13": "13 (sh) S 10 10", "20": "20 (other) S 1 20", "self": "x",
	} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, pid, "stat"), []byte(stat), 0o644))
	}
	got := procTree(dir, 10)
	slices.Sort(got)
	assert.Equal(t, []uint32{10, 11, 12, 13}, got)
	assert.Equal(t, []uint32{7}, procTree(filepath.Join(dir, "missing"), 7))
}

func TestProcTreeReal(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this OS")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 60 & sleep 60 & wait")
	require.NoError(t, cmd.Start())
	defer func() { cancel(); _ = cmd.Wait() }()
	root := uint32(cmd.Process.Pid)
	tree := ProcTree(cmd.Process.Pid)
	var got []uint32
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = tree(); len(got) == 3 {
			break
		}
	}
	require.Len(t, got, 3, "sh and its two sleeps")
	assert.Equal(t, root, got[0])
	assert.NotContains(t, got, uint32(os.Getpid()))
}

func TestTreeCPUTicksFake(t *testing.T) {
	dir := t.TempDir()
	// utime stime cutime cstime are fields 14-17; 10 → 11, 20 unrelated.
	stat := func(pid, ppid string, ut, st, cut, cst int) string {
		return pid + " (a b) S " + ppid + " 1 1 0 -1 0 0 0 0 0 " +
			strconv.Itoa(ut) + " " + strconv.Itoa(st) + " " + strconv.Itoa(cut) + " " + strconv.Itoa(cst) + " 20 0 1"
	}
	for pid, s := range map[string]string{"10": stat("10", "1", 100, 20, 5, 1), "11": stat("11", "10", 300, 40, 0, 0), "20": stat("20", "1", 999, 999, 0, 0)} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, pid), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, pid, "stat"), []byte(s), 0o644))
	}
	assert.Equal(t, uint64(100+20+5+1+300+40), treeCPUTicks(dir, 10))
	assert.Equal(t, uint64(0), cpuTicks("77 (x) R 1 2"), "truncated line")
}

// TestTreeCPUSecondsReal: a child spinning on the CPU shows up in its
// parent's tree within a second of its work.
func TestTreeCPUSecondsReal(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this OS")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "sh -c 'while :; do :; done' & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // one group: the spinning grandchild dies with it
	require.NoError(t, cmd.Start())
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() }()
	// On a loaded machine the spinner gets a share of a core, not a whole one: wait (up to 20 s of wall
	// time) until it has had 0.3 s of CPU, and check the tree never reports more CPU than wall time allows.
	before := TreeCPUSeconds(cmd.Process.Pid)
	start := time.Now()
	var spent float64
	for time.Since(start) < 20*time.Second {
		time.Sleep(250 * time.Millisecond)
		if spent = TreeCPUSeconds(cmd.Process.Pid) - before; spent > 0.3 {
			break
		}
	}
	assert.Greater(t, spent, 0.3, "a busy grandchild's CPU time is counted")
	assert.LessOrEqual(t, spent, time.Since(start).Seconds()*1.1+0.1, "one spinning thread cannot use more CPU than wall time")
}
