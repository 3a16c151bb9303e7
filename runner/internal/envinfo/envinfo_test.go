package envinfo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCollectGitCommit: an explicit build commit (CIB_GIT_COMMIT) wins over the
// working directory's git; without one, a directory outside git records none.
func TestCollectGitCommit(t *testing.T) {
	e := Collect(t.Context(), []string{"runner"}, t.TempDir(), "0123abcd-dirty")
	assert.Equal(t, "0123abcd", e.GitCommit)
	assert.True(t, e.GitDirty)

	e = Collect(t.Context(), []string{"runner"}, t.TempDir(), "0123abcd")
	assert.Equal(t, "0123abcd", e.GitCommit)
	assert.False(t, e.GitDirty)

	e = Collect(t.Context(), []string{"runner"}, t.TempDir(), "")
	assert.Empty(t, e.GitCommit)
	assert.Equal(t, []string{"runner"}, e.Command)
	assert.Positive(t, e.CPUs)
}

// TestReadCPUPower reads a sysfs-shaped tree: cpuidle driver and governor,
// cpu0's cpufreq governor, the load average; missing files leave fields empty.
func TestReadCPUPower(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	write("cpu/cpuidle/current_driver", "intel_idle\n")
	write("cpu/cpuidle/current_governor", "menu\n")
	write("cpu/cpu0/cpufreq/scaling_governor", "powersave\n")
	write("loadavg", "3.25 1.00 0.50 2/300 4242\n")
	c := ReadCPUPower(filepath.Join(dir, "cpu"), filepath.Join(dir, "loadavg"))
	assert.Equal(t, CPUPower{IdleDriver: "intel_idle", IdleGovernor: "menu", FreqGovernor: "powersave", LoadAvg1: 3.25}, c)
	assert.Equal(t, "cpuidle intel_idle/menu, cpufreq governor powersave, load 3.25 at start", c.String())

	// A VM with cpuidle only, the governor under its old read-only name.
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "cpu")))
	write("cpu/cpuidle/current_driver", "haltpoll\n")
	write("cpu/cpuidle/current_governor_ro", "haltpoll\n")
	c = ReadCPUPower(filepath.Join(dir, "cpu"), filepath.Join(dir, "loadavg"))
	assert.Equal(t, "cpuidle haltpoll/haltpoll, load 3.25 at start", c.String())

	// Nothing exposed: an empty record and no report line.
	c = ReadCPUPower(filepath.Join(dir, "absent"), filepath.Join(dir, "absent-loadavg"))
	assert.Equal(t, CPUPower{}, c)
	assert.Empty(t, c.String())
}

// TestCollectCPUPowerMatchesSysfs: on a Linux host that exposes cpuidle, the
// record names the same driver the kernel does.
func TestCollectCPUPowerMatchesSysfs(t *testing.T) {
	b, err := os.ReadFile("/sys/devices/system/cpu/cpuidle/current_driver")
	if err != nil {
		t.Skipf("host exposes no cpuidle driver: %v", err)
	}
	e := Collect(t.Context(), []string{"runner"}, t.TempDir(), "x")
	assert.Equal(t, strings.TrimSpace(string(b)), e.CPUPower.IdleDriver)
}

// TestSlurmFrom: inside a Slurm array task the record names the job, the
// array, the task and the node; outside Slurm it is absent.
func TestSlurmFrom(t *testing.T) {
	env := map[string]string{
		"SLURM_JOB_ID": "1043", "SLURM_ARRAY_JOB_ID": "1040", "SLURM_ARRAY_TASK_ID": "3", "SLURMD_NODENAME": "gpu17",
		"SLURM_JOB_PARTITION": "h200", "SLURM_CLUSTER_NAME": "cib", "SLURM_JOB_GPUS": "2", "SLURM_RESTART_COUNT": "1",
	}
	got := SlurmFrom(func(k string) string { return env[k] })
	want := &Slurm{JobID: "1043", ArrayJobID: "1040", ArrayTaskID: "3", Node: "gpu17", Partition: "h200", Cluster: "cib", GPUs: "2", Restarts: "1"}
	assert.Equal(t, want, got)
	assert.Nil(t, SlurmFrom(func(string) string { return "" }), "outside a Slurm job")
}
