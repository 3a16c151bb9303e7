package plugin_test

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

	"github.com/cuda-inference-benchmarks/cib/runner/internal/plugin"
)

// example is the Python example plugin of the repository.
var example = filepath.Join("..", "..", "..", "protocol", "plugins", "runner-plugin-slo")

func env(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, extra...)
}

func proc(t *testing.T, name string, timeout time.Duration, extra ...string) *plugin.Process {
	t.Helper()
	path, err := plugin.Find(name, "testdata", "")
	if name == "slo" {
		path, err = plugin.Find(example, "", "")
	}
	require.NoError(t, err)
	return &plugin.Process{Label: name, Path: path, Env: env(extra...), Timeout: timeout}
}

// summaryJSON is a minimal summary.json: one case, one engine with
// launch-level TTFT and TPOT.
const summaryJSON = `{"schema":2,"name":"s","cases":[{"name":"c","results":[{"engine":"A","metrics":{
 "ttft_ms":{"n":6,"median":30,"launch":{"launches":3,"mean":30,"lo":25,"hi":36,"has_ci":true}},
 "tpot_ms":{"n":6,"median":60,"launch":{"launches":3,"mean":60,"lo":55,"hi":66,"has_ci":true}}}}]}]}`

// TestPost drives real plugin processes through the post hook: the Python
// example answers sections; every misbehaving one becomes a Failure that
// names what went wrong, keeps its stderr, and costs no other plugin its
// sections.
func TestPost(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		wantErr string // "" for success
		stderr  string
	}{
		{name: "slo"},
		{name: "crash", wantErr: "post: exited: exit status 3", stderr: "crash: cannot read the summary"},
		{name: "hang", timeout: 500 * time.Millisecond, wantErr: "post: timeout: no answer within 500ms, killed", stderr: "hang: thinking"},
		{name: "garbage", wantErr: `post: stdout is not a response object: invalid character 'C' looking for beginning of value (it began "Cost: cheap!\n")`},
		{name: "flood", wantErr: "post: stdout over 4194304 bytes, killed"},
		{name: "badtable", wantErr: `section "t": table row 0 has 1 cells for 2 columns`},
		{name: "future", wantErr: "post: answers in protocol 2, the runner speaks 1"},
		{name: "silent", wantErr: "post: exited 0 without a response on stdout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := proc(t, tt.name, tt.timeout)
			start := time.Now()
			secs, fails := plugin.Post(t.Context(), []plugin.Analyzer{p, fixed{}}, json.RawMessage(summaryJSON))
			require.Less(t, time.Since(start), 10*time.Second, "a plugin call is bounded")
			if tt.wantErr == "" {
				require.Empty(t, fails)
				require.Len(t, secs, 2)
				require.Equal(t, "slo", secs[0].Plugin)
				require.Equal(t, "Latency targets (example plugin)", secs[0].Title)
				require.Equal(t, []string{"c", "A", "30 [25, 36]", "60 [55, 66]", "meets, misses"}, secs[0].Table.Rows[0])
				require.Contains(t, secs[0].Markdown, "**Misses:** A on c (TPOT).")
				var f struct {
					Checks []struct{ Verdict string } `json:"checks"`
				}
				require.NoError(t, json.Unmarshal(secs[0].Fields, &f))
				require.Len(t, f.Checks, 2)
			} else {
				require.Len(t, fails, 1, "Post(%s) failures", tt.name)
				require.Equal(t, plugin.Failure{Plugin: tt.name, Hook: plugin.HookPost, Error: tt.wantErr, Stderr: tt.stderr + nl(tt.stderr)}, fails[0])
				require.Len(t, secs, 1, "the other plugin's section stands")
			}
			require.Equal(t, "fixed", secs[len(secs)-1].Plugin)
		})
	}
}

func nl(s string) string {
	if s == "" {
		return ""
	}
	return "\n"
}

// fixed is an in-process analysis answering one section.
type fixed struct{}

func (fixed) Name() string { return "fixed" }
func (fixed) Post(context.Context, json.RawMessage) ([]plugin.Section, error) {
	return []plugin.Section{{Title: "Fixed", Markdown: "x"}}, nil
}

// panicky is an in-process analysis that panics.
type panicky struct{}

func (panicky) Name() string { return "panicky" }
func (panicky) Post(context.Context, json.RawMessage) ([]plugin.Section, error) {
	var m map[string]int
	m["x"]++
	return nil, nil
}

func TestPostPanic(t *testing.T) {
	secs, fails := plugin.Post(t.Context(), []plugin.Analyzer{panicky{}, fixed{}}, nil)
	require.Len(t, secs, 1)
	require.Len(t, fails, 1)
	require.Contains(t, fails[0].Error, "panic: assignment to entry in nil map")
}

// TestPre: the example plugin lets a run start, or vetoes it with its
// reason; a plugin that fails its pre hook is a failure, not a veto, and the
// plugins after it still run.
func TestPre(t *testing.T) {
	tests := []struct {
		name     string
		plugins  []string
		extraEnv []string
		veto     string
		failed   []string
	}{
		{name: "go ahead", plugins: []string{"slo"}},
		{name: "veto", plugins: []string{"slo"}, extraEnv: []string{"CIB_RESERVED=the card is reserved"}, veto: "plugin slo vetoed the run: the card is reserved"},
		{name: "failures then veto", plugins: []string{"crash", "garbage", "hang", "slo"}, extraEnv: []string{"CIB_RESERVED=maintenance"},
			veto: "plugin slo vetoed the run: maintenance", failed: []string{"crash", "garbage", "hang"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []plugin.Analyzer
			for _, n := range tt.plugins {
				ps = append(ps, proc(t, n, time.Second, tt.extraEnv...))
			}
			v, fails := plugin.Pre(t.Context(), ps, json.RawMessage(`{"name":"x"}`), json.RawMessage(`{"host":"h"}`))
			if tt.veto == "" {
				require.Nil(t, v)
			} else {
				require.NotNil(t, v)
				require.EqualError(t, v, tt.veto)
			}
			var failed []string
			for _, f := range fails {
				require.Equal(t, plugin.HookPre, f.Hook)
				failed = append(failed, f.Plugin)
			}
			require.Equal(t, tt.failed, failed)
		})
	}
}

// TestHangLeavesNothing: a plugin killed for its timeout takes the child it
// started along (its process group is killed), and an interrupt stops a
// call at once.
func TestHangLeavesNothing(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := proc(t, "hang", 300*time.Millisecond, "HANG_PID_FILE="+pidFile)
	_, err := p.Post(t.Context(), nil)
	require.ErrorIs(t, err, plugin.ErrTimeout)
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || zombie(pid) },
		2*time.Second, 20*time.Millisecond, "the plugin's child %d outlived it", pid)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	p.Timeout = time.Minute
	start := time.Now()
	_, err = p.Post(ctx, nil)
	require.ErrorContains(t, err, "post: interrupted")
	require.Less(t, time.Since(start), 5*time.Second)
}

// zombie reports whether pid is a zombie (dead, waiting for init to reap it).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && strings.HasPrefix(string(b[i+1:]), " Z")
}

func TestFind(t *testing.T) {
	abs, err := filepath.Abs(filepath.Join("testdata", "runner-plugin-crash"))
	require.NoError(t, err)
	tests := []struct {
		name, arg, binDir, path string
		want, wantErr           string
	}{
		{name: "in bin dir", arg: "crash", binDir: "testdata", want: abs},
		{name: "on PATH", arg: "crash", path: "/nonexistent:testdata", want: abs},
		{name: "a path", arg: "testdata/runner-plugin-crash", want: abs},
		{name: "missing", arg: "nope", binDir: "testdata", wantErr: "plugin nope: not found (looked in testdata/runner-plugin-nope, PATH (runner-plugin-nope))"},
		{name: "not executable", arg: "./plugin_test.go", wantErr: "plugin ./plugin_test.go: not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := plugin.Find(tt.arg, tt.binDir, tt.path)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		secs    []plugin.Section
		wantErr string
	}{
		{name: "ok", secs: []plugin.Section{{Title: "a", Table: &plugin.Table{Columns: []string{"x"}, Rows: [][]string{{"1"}}}, Fields: json.RawMessage(`{"k":1}`)}}},
		{name: "no title", secs: []plugin.Section{{Markdown: "x"}}, wantErr: "section 0: no title"},
		{name: "fields not an object", secs: []plugin.Section{{Title: "a", Fields: json.RawMessage(`[1]`)}}, wantErr: `section "a": fields must be a JSON object`},
		{name: "no columns", secs: []plugin.Section{{Title: "a", Table: &plugin.Table{}}}, wantErr: `section "a": table without columns`},
		{name: "too long", secs: []plugin.Section{{Title: "a", Markdown: strings.Repeat("x", plugin.MaxMarkdown+1)}}, wantErr: `section "a": markdown of 65537 bytes, at most 65536`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := plugin.Validate(tt.secs)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.wantErr)
			}
		})
	}
}
