package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakePython stands in for the interpreter: it checks it was handed the embedded worker.py, says hello, and
// answers ops the way the real worker's sub-protocol does (or misbehaves on purpose).
const fakePython = `#!/bin/sh
test "$1" = -u && test -f "$2" && test -f "$(dirname "$2")/llama.py" || { echo "bad args: $*" >&2; exit 3; }
echo "fake worker starting" >&2
echo '{"ready":true,"versions":{"torch":"0.0-fake"},"cuda_available":false}'
while read -r line; do
  case "$line" in
  *'"op":"ok"'*) echo '{"ok":true,"value":42}' ;;
  *'"op":"fail"'*) echo '{"ok":false,"code":"bad_request","message":"option x: nope"}' ;;
  *'"op":"garbage"'*) echo 'not json' ;;
  *'"op":"die"'*) echo "worker dying on purpose" >&2; exit 7 ;;
  *'"op":"hang"'*) sleep 600 ;;
  *'"op":"exit"'*) echo '{"ok":true}'; exit 0 ;;
  esac
done
`

func startFake(t *testing.T) *Worker {
	t.Helper()
	py := filepath.Join(t.TempDir(), "python")
	require.NoError(t, os.WriteFile(py, []byte(fakePython), 0o755))
	w, err := Start(context.Background(), Config{Python: py, Env: os.Environ()})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func TestCall(t *testing.T) {
	tests := []struct {
		name    string
		op      string
		want    int
		errCode string // worker-reported failure
		errHas  []string
	}{
		{name: "reply", op: "ok", want: 42},
		{name: "reported failure", op: "fail", errCode: "bad_request", errHas: []string{"option x: nope"}},
		{name: "not json", op: "garbage", errHas: []string{"worker reply", "not json"}},
		{name: "death", op: "die", errHas: []string{"python worker exited (exit status 7)", "worker dying on purpose", "fake worker starting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startFake(t)
			assert.Equal(t, "0.0-fake", w.Hello().Versions["torch"])
			assert.Positive(t, w.StartupNs())
			var resp struct {
				Value int `json:"value"`
			}
			err := w.Call(context.Background(), map[string]string{"op": tt.op}, &resp)
			if tt.errCode == "" && tt.errHas == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, resp.Value)
				return
			}
			require.Error(t, err)
			if tt.errCode != "" {
				var we *Error
				require.ErrorAs(t, err, &we)
				assert.Equal(t, tt.errCode, we.Code)
			}
			for _, s := range tt.errHas {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestCallCancelKills(t *testing.T) {
	w := startFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.Call(ctx, map[string]string{"op": "hang"}, &struct{}{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 30*time.Second)
	select {
	case <-w.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("worker still running after its call was cancelled")
	}
}

func TestStartFailures(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o755))
	t.Setenv("TMPDIR", tmp) // where Start writes the Python files
	silent := filepath.Join(dir, "silent")
	require.NoError(t, os.WriteFile(silent, []byte("#!/bin/sh\necho 'no torch here' >&2\nexit 1\n"), 0o755))
	tests := []struct {
		name   string
		python string
		errHas []string
	}{
		{name: "missing interpreter", python: filepath.Join(dir, "nope"), errHas: []string{"start python worker", "nope"}},
		{name: "exits before hello", python: silent, errHas: []string{"exit status 1", "no torch here"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), Config{Python: tt.python})
			require.Error(t, err)
			for _, s := range tt.errHas {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "Start left its files behind after failing")
}
