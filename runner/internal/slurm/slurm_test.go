package slurm

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestArraySpec(t *testing.T) {
	tests := []struct {
		name string
		ids  []int
		want string
	}{
		{name: "one", ids: []int{0}, want: "0"},
		{name: "range", ids: []int{0, 1, 2, 3}, want: "0-3"},
		{name: "unsorted with gaps", ids: []int{5, 1, 0, 3, 2}, want: "0-3,5"},
		{name: "singles", ids: []int{2, 4}, want: "2,4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ArraySpec(tt.ids)
			assert.Equal(t, tt.want, got, "ArraySpec(%v)", tt.ids)
			back, err := parseArraySpec(got)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.ids, back, "parseArraySpec(%q)", got)
		})
	}
	got, err := parseArraySpec("[3-5%2]")
	require.NoError(t, err)
	assert.Equal(t, []int{3, 4, 5}, got, "a pending range with a throttle, as sacct prints it")
	for _, bad := range []string{"", "a", "5-3", "1-x"} {
		_, err := parseArraySpec(bad)
		assert.Error(t, err, "parseArraySpec(%q)", bad)
	}
}

// TestParseScontrol reads real `scontrol -o show job` output of Slurm 22.05
// (Debian 12): an array with tasks 3-4 pending in one record and 0 and 2
// running on node vm.
func TestParseScontrol(t *testing.T) {
	out, err := os.ReadFile("testdata/scontrol.txt")
	require.NoError(t, err)
	got, err := ParseScontrol(out, "16")
	require.NoError(t, err)
	want := []State{
		{Task: 3, Job: "16", State: "PENDING", Reason: "Resources", ExitCode: "0:0", Source: "scontrol"},
		{Task: 4, Job: "16", State: "PENDING", Reason: "Resources", ExitCode: "0:0", Source: "scontrol"},
		{Task: 2, Job: "16", State: "RUNNING", Node: "vm", ExitCode: "0:0", Source: "scontrol"},
		{Task: 0, Job: "16", State: "RUNNING", Node: "vm", ExitCode: "0:0", Source: "scontrol"},
	}
	assert.Equal(t, want, got)
	got, err = ParseScontrol(out, "99")
	require.NoError(t, err)
	assert.Empty(t, got, "another job's records are not this one's")
}

// TestParseSacct reads `sacct -X -n -P -o JobID,State,NodeList,ExitCode`
// lines in the format sacct documents: finished tasks, a cancelled one
// ("CANCELLED by UID"), a pending range, and a line of another job.
func TestParseSacct(t *testing.T) {
	out := "1234_0|COMPLETED|gpu01|0:0\n1234_1|FAILED|gpu02|3:0\n1234_2|CANCELLED by 1001|gpu01|0:15\n" +
		"1234_3|PREEMPTED|gpu03|0:0\n1234_[4-5%2]|PENDING|None assigned|0:0\n999_0|COMPLETED|gpu09|0:0\n"
	got, err := ParseSacct([]byte(out), "1234")
	require.NoError(t, err)
	want := []State{
		{Task: 0, Job: "1234", State: "COMPLETED", Node: "gpu01", ExitCode: "0:0", Source: "sacct"},
		{Task: 1, Job: "1234", State: "FAILED", Node: "gpu02", ExitCode: "3:0", Source: "sacct"},
		{Task: 2, Job: "1234", State: "CANCELLED", Node: "gpu01", ExitCode: "0:15", Source: "sacct"},
		{Task: 3, Job: "1234", State: "PREEMPTED", Node: "gpu03", ExitCode: "0:0", Source: "sacct"},
		{Task: 4, Job: "1234", State: "PENDING", ExitCode: "0:0", Source: "sacct"},
		{Task: 5, Job: "1234", State: "PENDING", ExitCode: "0:0", Source: "sacct"},
	}
	assert.Equal(t, want, got)
	_, err = ParseSacct([]byte("1234_0|COMPLETED\n"), "1234")
	assert.Error(t, err, "a line without the four fields")
}

func TestStateClasses(t *testing.T) {
	tests := []struct {
		state          string
		active, failed bool
	}{
		{"PENDING", true, false}, {"RUNNING", true, false}, {"REQUEUED", true, false}, {"COMPLETING", true, false},
		{"COMPLETED", false, false}, {Unknown, false, false},
		{"FAILED", false, true}, {"CANCELLED", false, true}, {"TIMEOUT", false, true}, {"PREEMPTED", false, true},
		{"NODE_FAIL", false, true}, {"OUT_OF_MEMORY", false, true}, {"BOOT_FAIL", false, true}, {"DEADLINE", false, true},
	}
	for _, tt := range tests {
		s := State{State: tt.state}
		assert.Equal(t, tt.active, s.Active(), "State{%s}.Active()", tt.state)
		assert.Equal(t, tt.failed, s.Failed(), "State{%s}.Failed()", tt.state)
	}
}

func TestParseJobID(t *testing.T) {
	for out, want := range map[string]string{"1234\n": "1234", "1234;cluster2\n": "1234", "sbatch: note\n77\n": "77"} {
		got, err := ParseJobID([]byte(out))
		require.NoError(t, err, out)
		assert.Equal(t, want, got, "ParseJobID(%q)", out)
	}
	_, err := ParseJobID([]byte("sbatch: error: invalid partition\n"))
	assert.Error(t, err)
}

func testPlan(t *testing.T) *Plan {
	p := &Plan{
		Name: "decode", Results: t.TempDir(), WorkDir: "/shared/cib", Runner: "/shared/cib/bin/runner", BinDir: "/shared/cib/bin",
		Device: "cuda:0", Partition: "h200", Account: "ml", Time: "2:00:00", GPUsPerTask: 1, CPUsPerTask: 8,
		Extra: []string{"--requeue"}, CreatedAt: time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC),
	}
	for i, e := range []string{"candle", "burn", "pytorch:mode=compiled"} {
		spec, err := config.ParseEngines(e)
		require.NoError(t, err)
		p.Tasks = append(p.Tasks, Task{ID: i, Engines: []string{e}, Specs: spec, Config: "tasks/" + string(rune('0'+i)) + ".yaml"})
	}
	return p
}

// TestScript pins the batch script of a GPU array (testdata/gpu.sbatch;
// -update rewrites it), and checks what a CPU array and a resubmission of
// some tasks change.
func TestScript(t *testing.T) {
	p := testPlan(t)
	p.Results = "/shared/cib/results/decode"
	got, err := Script(p, nil)
	require.NoError(t, err)
	golden := filepath.Join("testdata", "gpu.sbatch")
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))

	p.GPUsPerTask, p.Device = 0, "cpu"
	got, err = Script(p, []int{2, 0})
	require.NoError(t, err)
	assert.NotContains(t, string(got), "--gres")
	assert.Contains(t, string(got), "#SBATCH --array=0,2\n")

	_, err = Script(p, []int{7})
	assert.ErrorContains(t, err, "no task 7")
	p.Results = "/shared/my results"
	_, err = Script(p, nil)
	assert.ErrorContains(t, err, "has a space")
	p.Results, p.Extra = "/shared/r", []string{"requeue"}
	_, err = Script(p, nil)
	assert.ErrorContains(t, err, "want one --key=value")
}

// TestRefresh: the state of each task comes from its latest job; where
// Slurm no longer knows the job, the state saved at the last refresh is
// used; where Slurm cannot be asked at all, the error says so and the saved
// states still come back.
func TestRefresh(t *testing.T) {
	p := testPlan(t)
	p.Jobs = []Job{{ID: "100", Tasks: []int{0, 1, 2}}, {ID: "200", Tasks: []int{2}}}
	require.NoError(t, p.Write())
	calls := map[string]int{}
	sacct := map[string]string{
		"100": "100_0|COMPLETED|gpu01|0:0\n100_1|RUNNING|gpu02|0:0\n100_2|PREEMPTED|gpu03|0:0\n",
		"200": "200_2|PENDING|None assigned|0:0\n",
	}
	run := func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls[name]++
		job := args[len(args)-1]
		if name == "sacct" {
			job = args[4]
			if out, ok := sacct[job]; ok {
				return []byte(out), nil
			}
			return nil, errors.New("sacct: job not found")
		}
		return nil, errors.New("scontrol: Invalid job id specified")
	}
	now := time.Date(2026, 12, 2, 2, 0, 0, 0, time.UTC)
	got, err := Refresh(t.Context(), run, p, now)
	require.NoError(t, err)
	assert.Equal(t, "COMPLETED", got[0].State)
	assert.Equal(t, "RUNNING", got[1].State)
	assert.Equal(t, State{Task: 2, Job: "200", State: "PENDING", ExitCode: "0:0", Source: "sacct", SeenAt: now}, got[2], "the latest job's state")

	// Slurm forgot job 100: its tasks keep their last seen state.
	delete(sacct, "100")
	got, err = Refresh(t.Context(), run, p, now.Add(time.Hour))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Slurm state available for job 100")
	assert.Equal(t, "COMPLETED", got[0].State)
	assert.Equal(t, "saved (sacct)", got[0].Source)
	assert.Equal(t, "RUNNING", got[1].State)
	assert.Equal(t, "PENDING", got[2].State)
	assert.Equal(t, now.Add(time.Hour), got[2].SeenAt)
	assert.Positive(t, calls["scontrol"], "scontrol is asked where sacct knows nothing")

	saved, err := ReadStates(p.Results)
	require.NoError(t, err)
	assert.Equal(t, got, saved)
}

func TestReadPlan(t *testing.T) {
	p := testPlan(t)
	require.NoError(t, p.Write())
	assert.True(t, IsArray(p.Results))
	back, err := ReadPlan(p.Results)
	require.NoError(t, err)
	assert.Equal(t, p, back)
	assert.Equal(t, filepath.Join(p.Results, "tasks", "2"), back.TaskDir(2))
	assert.Equal(t, filepath.Join(p.Results, "logs", "77_2.out"), back.LogPath("77", 2))

	_, err = ReadPlan(t.TempDir())
	assert.ErrorContains(t, err, "not a Slurm array's results directory")
	require.NoError(t, os.WriteFile(filepath.Join(p.Results, PlanFile), []byte(strings.Replace(mustRead(t, filepath.Join(p.Results, PlanFile)), `"schema": 1`, `"schema": 9`, 1)), 0o644))
	_, err = ReadPlan(p.Results)
	assert.ErrorContains(t, err, "plan schema 9")
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
